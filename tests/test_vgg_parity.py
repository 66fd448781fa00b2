"""VGG-16-BN against the VGG path of the PFENet and BAM releases, re-derived here from their
formulas (not from this project's code): `make_layers` of config "D" with BatchNorm and
max-pools that round up (`ceil_mode=True`), the features split at 0-6 / 7-13 / 14-23 / 24-33 /
34-42, layer2 resized bilinearly (align_corners) to layer3's size and concatenated after
layer3, supports entering layer4 as layer3 x the mask resized bilinearly to layer3's size.
Checked at 473 px, the size of every VGG config, where rounding down gives other maps."""
import math

import pytest
import torch
import torch.nn.functional as F

from model.backbones.encoder import build_backbone

CFG_D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
SPLITS = (7, 14, 24, 34, 43)  # first module index after layer0..layer4 in the releases' features


def release_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A vgg16_bn `features.*` state dict (module index: conv i, BN i+1, ReLU i+2, pool i) with
    random weights and non-trivial BN statistics, the layout of initmodel/vgg16_bn.pth."""
    g = torch.Generator().manual_seed(seed)
    state, idx, cin = {}, 0, 3
    for v in CFG_D:
        if v == "M":
            idx += 1
            continue
        std = math.sqrt(2.0 / (9 * v))
        state[f"features.{idx}.weight"] = torch.randn(v, cin, 3, 3, generator=g) * std
        state[f"features.{idx}.bias"] = torch.randn(v, generator=g) * 0.05
        bn = f"features.{idx + 1}"
        state[f"{bn}.weight"] = 0.5 + torch.rand(v, generator=g)
        state[f"{bn}.bias"] = torch.rand(v, generator=g) * 0.4 - 0.2
        state[f"{bn}.running_mean"] = torch.rand(v, generator=g) * 0.4 - 0.2
        state[f"{bn}.running_var"] = 0.5 + 1.5 * torch.rand(v, generator=g)
        state[f"{bn}.num_batches_tracked"] = torch.tensor(0)
        idx, cin = idx + 3, v
    return state


def release_layers(x: torch.Tensor, state: dict) -> list[torch.Tensor]:
    """Outputs of layer0..layer4 of the releases' VGG-16-BN in eval mode."""
    outs, idx = [], 0
    for v in CFG_D:
        if v == "M":
            x = F.max_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)
            idx += 1
        else:
            p, bn = f"features.{idx}", f"features.{idx + 1}"
            x = F.conv2d(x, state[f"{p}.weight"], state[f"{p}.bias"], padding=1)
            x = F.batch_norm(x, state[f"{bn}.running_mean"], state[f"{bn}.running_var"], state[f"{bn}.weight"],
                             state[f"{bn}.bias"], training=False, eps=1e-5)
            x = F.relu(x)
            idx += 3
        if idx in SPLITS:
            outs.append(x)
    return outs


def release_features(image, mask, state):
    """PFENet's (and BAM's) VGG features of one image as query and as its own support:
    mid = cat(layer3, layer2 resized), high = layer4; as a support, layer4 runs on layer3 x mask."""
    _, _, l2, l3, l4 = release_layers(image, state)
    mid = torch.cat([l3, F.interpolate(l2, size=l3.shape[-2:], mode="bilinear", align_corners=True)], 1)
    m = F.interpolate(mask[:, None], size=l3.shape[-2:], mode="bilinear", align_corners=True)
    return mid, l4, release_layers_from(l3 * m, state)


def release_layers_from(l3: torch.Tensor, state: dict) -> torch.Tensor:
    """layer4 (modules 34-42: three conv-BN-ReLU, no pool) on a layer3 output."""
    x = l3
    for idx in (34, 37, 40):
        p, bn = f"features.{idx}", f"features.{idx + 1}"
        x = F.conv2d(x, state[f"{p}.weight"], state[f"{p}.bias"], padding=1)
        x = F.relu(F.batch_norm(x, state[f"{bn}.running_mean"], state[f"{bn}.running_var"], state[f"{bn}.weight"],
                                state[f"{bn}.bias"], training=False, eps=1e-5))
    return x


def _close(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    """(this project's features, the release formulas' features) of one 473 px episode."""
    folder = tmp_path_factory.mktemp("initmodel")
    state = release_state()
    torch.save(state, folder / "vgg16_bn.pth")
    backbone = build_backbone("vgg", pretrained=True, initmodel_dir=str(folder), bn_mode="frozen").eval()
    image = torch.randn(1, 3, 473, 473, generator=torch.Generator().manual_seed(3))
    mask = torch.zeros(1, 473, 473)
    mask[:, 101:333, 57:290] = 1
    with torch.no_grad():
        return backbone(image, image[:, None], mask[:, None]), release_features(image, mask, state)


def test_vgg_features_equal_the_releases_at_473(parity):
    ours, (mid, high, support_high) = parity
    side = 473
    for _ in range(4):  # four pools before layer3's output, each rounding up (down: 29, not 30)
        side = -(-side // 2)
    assert ours.query_mid.shape == mid.shape == (1, 768, side, side)
    pairs = (("query_mid", ours.query_mid, mid), ("query_high", ours.query_high, high),
             ("support_mid", ours.support_mid[:, 0], mid), ("support_high", ours.support_high[:, 0], support_high))
    for name, a, b in pairs:
        assert a.shape == b.shape, name
        assert _close(a, b) < 1e-4, name  # float rounding only (BN folded into the convolutions here)
