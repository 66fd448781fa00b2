"""Frozen encoder shared by query and supports (docs/design.md §4.1).

Mid-level feature = cat(layer3, layer2) (what the matching works on), high-level feature =
layer4 (prior mask only; supports enter layer4 as layer3 * mask, as PFENet does).
BatchNorm: `reference` follows the module's train/eval mode like the released code (batch
statistics while training, query batch and each shot's batch in separate calls so the
statistics match); `frozen` keeps BN in eval mode always, which lets query and supports go
through the encoder in one batched call.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torchvision
from torch import Tensor, nn

from model.layers.blocks import resize
from model.backbones.fold import run_sequential
from model.backbones.resnet import rename_initmodel_key, resnet_layers
from model.errors import UserError
from model.checkpoints.safe_load import load_file, refuse_nonfinite

log = logging.getLogger(__name__)

VGG_SPLITS = ((0, 7), (7, 14), (14, 24), (24, 34), (34, 43))  # torchvision features[a:b]
WEIGHT_FILES = {"resnet50": "resnet50_v2.pth", "resnet101": "resnet101_v2.pth", "vgg": "vgg16_bn.pth",
                "resnet50_torchvision": "resnet50_torchvision.pth"}
WHERE_TO_GET = {
    "resnet50": "the PSPNet deep-stem ImageNet ResNet-50 that PFENet links as 'initmodel' in its README",
    "resnet101": "the PSPNet deep-stem ImageNet ResNet-101 that PFENet links as 'initmodel' in its README",
    "vgg": "torchvision's ImageNet vgg16_bn state_dict, e.g. torch.save(torchvision.models.vgg16_bn("
           "weights='IMAGENET1K_V1').state_dict(), 'initmodel/vgg16_bn.pth')",
    "resnet50_torchvision": "torchvision's ImageNet resnet50 state_dict, e.g. torch.save(torchvision.models."
                            "resnet50(weights='IMAGENET1K_V1').state_dict(), 'initmodel/resnet50_torchvision.pth')",
}
BN_MODES = ("reference", "frozen")


@dataclass
class Features:
    """Encoder outputs for one episode batch (h, w = layer3 size: ceil(H / 8) on ResNet, ceil(H / 16) on VGG)."""
    query_mid: Tensor       # [B, Cm, h, w]
    query_high: Tensor      # [B, Ch, h, w]
    support_mid: Tensor     # [B, K, Cm, h, w]
    support_high: Tensor    # [B, K, Ch, h, w]  layer4(layer3 * mask)
    support_mask: Tensor    # [B, K, h, w]      foreground mask resized to h x w


def mid_channels(arch: str) -> int:
    """Channels of the mid-level feature (layer2 + layer3 concatenated)."""
    return 768 if arch == "vgg" else 1536


class Backbone(nn.Module):
    """layer0..layer4 of a frozen ResNet or VGG-16-BN."""

    def __init__(self, layers: list[nn.Module], *, arch: str, bn_mode: str = "reference") -> None:
        super().__init__()
        if bn_mode not in BN_MODES:
            raise ValueError(f"bn_mode must be one of {BN_MODES}, got '{bn_mode}'")
        self.layer0, self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.arch, self.bn_mode = arch, bn_mode
        self.mid_channels = mid_channels(arch)
        self.high_channels = 512 if arch == "vgg" else 2048
        self.fold_bn = True
        for p in self.parameters():
            p.requires_grad_(False)

    def set_bn_folding(self, on: bool) -> None:
        """Fold eval-mode BN into the convs (default) or run BN as its own pass (reference check)."""
        self.fold_bn = on
        for m in self.modules():
            if hasattr(m, "fold_bn"):
                m.fold_bn = on

    def _run(self, layer: nn.Sequential, x: Tensor) -> Tensor:
        return run_sequential(layer, x, self.fold_bn)

    def train(self, mode: bool = True) -> "Backbone":
        # 'frozen': BN stays in eval mode (running statistics) even while the heads train.
        return super().train(mode and self.bn_mode == "reference")

    def _layer3(self, x: Tensor) -> tuple[Tensor, Tensor]:
        l2 = self._run(self.layer2, self._run(self.layer1, self._run(self.layer0, x)))
        l3 = self._run(self.layer3, l2)
        # VGG's layer2 is one pooling step larger than layer3: bring it to layer3's size.
        return l3, torch.cat([l3, resize(l2, l3.shape[-2:])], 1)  # [N,1024|512,h,w], [N,Cm,h,w]

    def encode(self, images: Tensor) -> Tensor:
        """layer4 feature [N,Ch,h,w] of images [N,3,H,W]; differentiable when the weights train
        (the prior extractor's pre-training), folded BN in eval mode like `forward`."""
        l3, _ = self._layer3(images)
        return self._run(self.layer4, l3)

    @torch.no_grad()
    def forward(self, query: Tensor, supports: Tensor, support_fg: Tensor) -> Features:
        """query [B,3,H,W], supports [B,K,3,H,W], support_fg [B,K,H,W] float 0/1."""
        b, k = supports.shape[:2]
        images = torch.cat([query, supports.transpose(0, 1).flatten(0, 1)])  # [(1+K)B,3,H,W]
        # One call when BN uses running statistics (frozen, or eval: per-image, so exact);
        # BN on batch statistics sees the query batch, then each shot's batch (as released).
        groups = 1 + k if self.training else 1
        l3, mid = (_cat(t) for t in zip(*[self._layer3(x) for x in images.chunk(groups)]))
        mask = resize(support_fg, l3.shape[-2:])                               # [B,K,h,w]
        gate = torch.cat([torch.ones_like(l3[:b, :1]), mask.transpose(0, 1).flatten(0, 1)[:, None]])
        high = _cat([self._run(self.layer4, x) for x in (l3 * gate).chunk(groups)])  # [(1+K)B,Ch,h,w]
        mid, high = (t.unflatten(0, (1 + k, b)).transpose(0, 1) for t in (mid, high))  # [B,1+K,C,h,w]
        return Features(mid[:, 0], high[:, 0], mid[:, 1:], high[:, 1:], mask)


def _cat(tensors) -> Tensor:
    """torch.cat without the copy when there is one tensor (frozen BN: one batched call)."""
    return tensors[0] if len(tensors) == 1 else torch.cat(list(tensors))


def vgg_layers() -> list[nn.Module]:
    """torchvision vgg16_bn features split at 0-6, 7-13, 14-23, 24-33, 34-42 (PFENet).

    Built with the `features` recipe of torchvision's vgg16_bn (config "D" + BN) without its
    102M-parameter classifier, which the model never uses; initialised as vgg16_bn does. The
    max-pools round up (`ceil_mode`), as the VGG of the PFENet and BAM releases builds them:
    torchvision's round down, and at odd sizes (473 px -> 237/119/60/30 here, 236/118/59/29
    there) every feature map, hence every published VGG result, would differ. Same weights.
    """
    vgg = torchvision.models.vgg
    features = vgg.make_layers(vgg.cfgs["D"], batch_norm=True)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.MaxPool2d):
            m.ceil_mode = True
    return [nn.Sequential(*list(features)[a:b]) for a, b in VGG_SPLITS]  # re-indexed from 0, as PFENet


def _rename_vgg_key(key: str) -> str | None:
    if not key.startswith("features."):
        return None  # classifier.* is unused
    idx, rest = key[len("features."):].split(".", 1)
    for n, (a, b) in enumerate(VGG_SPLITS):
        if a <= int(idx) < b:
            return f"layer{n}.{int(idx) - a}.{rest}"
    return f"unmapped.features.{idx}.{rest}"


def load_backbone_weights(backbone: Backbone, path: str) -> None:
    """Strictly load an ImageNet file (initmodel layout) into `backbone`."""
    if not os.path.isfile(path):
        raise UserError(f"backbone weights not found: {path}. Expected {WEIGHT_FILES[backbone.arch]}: "
                        f"{WHERE_TO_GET[backbone.arch]}. Put it there, point 'initmodel_dir' at its "
                        "folder, or set 'pretrained false' for a random backbone.")
    state = load_file(path, "backbone weights")
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    rename = _rename_vgg_key if backbone.arch == "vgg" else rename_initmodel_key
    mapped = {}
    for key, value in state.items():
        new = rename(key[len("module."):] if key.startswith("module.") else key)
        if new is not None:
            mapped[new] = value
    refuse_nonfinite(mapped, path)
    own = backbone.state_dict()
    missing = sorted(set(own) - set(mapped))
    unexpected = sorted(set(mapped) - set(own))
    shapes = [f"{k}: file {tuple(mapped[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(mapped)) if mapped[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise UserError(f"{path} does not fit the {backbone.arch} backbone "
                        f"(expected {WEIGHT_FILES[backbone.arch]}: {WHERE_TO_GET[backbone.arch]}):"
                        + _listing("missing", missing) + _listing("unexpected", unexpected)
                        + _listing("wrong shape", shapes))
    backbone.load_state_dict(mapped, strict=True)
    log.info("loaded %s backbone weights from %s", backbone.arch, path)


def _listing(what: str, items: list[str], limit: int = 8) -> str:
    if not items:
        return ""
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"\n  {what} ({len(items)}): " + ", ".join(items[:limit]) + more


def build_backbone(arch: str, *, pretrained: bool, initmodel_dir: str, bn_mode: str) -> Backbone:
    """ResNet-50/101 (deep or torchvision stem, output stride 8) or VGG-16-BN; frozen; optionally
    ImageNet weights."""
    if arch not in WEIGHT_FILES:
        raise ValueError(f"unknown backbone '{arch}': use one of {', '.join(WEIGHT_FILES)}")
    layers = vgg_layers() if arch == "vgg" else resnet_layers(arch)
    backbone = Backbone(layers, arch=arch, bn_mode=bn_mode)
    if pretrained:
        load_backbone_weights(backbone, os.path.join(initmodel_dir, WEIGHT_FILES[arch]))
    else:
        log.info("%s backbone randomly initialised (pretrained false; replaced if a checkpoint is loaded)", arch)
    return backbone
