"""HSNet, the hypercorrelation squeeze network ("Hypercorrelation Squeeze for Few-Shot
Segmentation", ICCV 2021), as the iFSL paper ("Integrative Few-Shot Learning for Classification
and Segmentation") runs it for FS-CS (docs/fscs.md).

Frozen torchvision ResNet -> support features multiplied by the support mask -> hypercorrelation
of stages 4, 3, 2 (model/fscs/hypercorrelation.py) -> squeezing blocks of center-pivot 4D convolutions
(model/fscs/conv4d.py) that reduce each stage's support dimensions -> mixing 4 -> 3 -> 2 (the deeper
result resized to the next query size, added, convolved again) -> the mean over the support
positions -> the 2D decoder -> per-way maps, which the iFSL head turns into presence and an
(N+1)-class segmentation, as for ASNet. Trained with masks (L_S); K shots averaged as in
model/fscs/learner.py. Parameter names are the release's (`backbone.`, `learner.`), so its
checkpoints load strictly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.fscs.conv4d import CenterPivotConv4d
from model.fscs.learner import FrozenResNetLearner, decode, decoder_layers, load_pretrained
from model.fscs.hypercorrelation import hypercorrelation, resize_query_dims, stage_features
from model.method import Method

GROUPS = 4  # GroupNorm groups of every 4D block


def squeeze_block(cin: int, channels: tuple[int, ...], kernels: tuple[int, ...], support_strides: tuple[int, ...]
                  ) -> nn.Sequential:
    """(center-pivot 4D conv, GroupNorm, ReLU) per layer; the strides act on the support dimensions."""
    layers: list[nn.Module] = []
    for cout, k, s in zip(channels, kernels, support_strides):
        layers += [CenterPivotConv4d(cin, cout, (k,) * 4, (1, 1, s, s)), nn.GroupNorm(GROUPS, cout),
                   nn.ReLU(inplace=True)]
        cin = cout
    return nn.Sequential(*layers)


class SqueezeLearner(nn.Module):
    """Squeeze each stage's 4D correlation, mix 4 -> 3 -> 2, pool the support positions, decode
    into 2-channel logits at twice the stage-2 query size (the paper's Fig. 2)."""

    def __init__(self, stage_depths: tuple[int, int, int]):
        super().__init__()
        d4, d3, d2 = stage_depths
        widths = (16, 64, 128)
        self.encoder_layer4 = squeeze_block(d4, widths, (3, 3, 3), (2, 2, 2))
        self.encoder_layer3 = squeeze_block(d3, widths, (5, 3, 3), (4, 2, 2))
        self.encoder_layer2 = squeeze_block(d2, widths, (5, 5, 3), (4, 4, 2))
        self.encoder_layer4to3 = squeeze_block(128, (128,) * 3, (3,) * 3, (1,) * 3)
        self.encoder_layer3to2 = squeeze_block(128, (128,) * 3, (3,) * 3, (1,) * 3)
        self.decoder1, self.decoder2 = decoder_layers()

    def forward(self, corrs: list[Tensor]) -> Tensor:
        """corrs: stages 4, 3, 2 [B', L, Hq, Wq, Hs, Ws] -> logits [B', 2, 2 Hq2, 2 Wq2]."""
        s4, s3, s2 = (block(c) for block, c in
                      zip((self.encoder_layer4, self.encoder_layer3, self.encoder_layer2), corrs))
        mix = self.encoder_layer4to3(resize_query_dims(s4, s3.shape[2:4]) + s3)
        mix = self.encoder_layer3to2(resize_query_dims(mix, s2.shape[2:4]) + s2)
        return decode(self.decoder1, self.decoder2, mix.mean(dim=(-2, -1)))


class HSNet(FrozenResNetLearner):
    """HSNet on a frozen ResNet (model/fscs/learner.py: inputs, K shots, losses); `maps` runs the
    squeeze learner on one shot per way. Supports keep their size (the correlation is pooled
    over the support positions, so any size works)."""

    def __init__(self, backbone: str = "resnet50", *, ignore_label: int = 255):
        super().__init__("hsnet", backbone, ignore_label=ignore_label)
        self.learner = SqueezeLearner((self.depths[3], self.depths[2], self.depths[1]))

    def maps(self, query: Tensor, supports: Tensor, support_masks: Tensor | None) -> Tensor:
        """One shot per way: supports [B,N,3,H,W], masks [B,N,H,W] -> logits [B,N,2,h,w]."""
        if support_masks is None:
            raise ValueError("HSNet needs support masks: it correlates the masked support features")
        b, n = supports.shape[:2]
        mask = (support_masks.flatten(0, 1) == 1).float()[:, None]
        with torch.no_grad():
            support_stages = [[f * F.interpolate(mask, f.shape[-2:], mode="bilinear", align_corners=True)
                               for f in stage] for stage in stage_features(self.backbone, supports.flatten(0, 1))]
            corrs = hypercorrelation(stage_features(self.backbone, query), support_stages, way=n)
        return self.learner(corrs).unflatten(0, (b, n))


def build(cfg, num_train_classes: int) -> HSNet:
    """HSNet with the config's backbone (masks only: `weak true` is refused by the config)."""
    return load_pretrained(HSNet(cfg.backbone, ignore_label=cfg.ignore_label), cfg)


# FS-CS only (its maps are the iFSL head's per-way maps); its 4D convolutions are 2D ones, so
# channels_last is left to the config
METHOD = Method("hsnet", build, network="hsnet", fixed={"ifsl": True})
