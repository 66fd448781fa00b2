"""PSPNet (Zhao et al., "Pyramid Scene Parsing Network"): BAM's base learner.

Stage 1 of BAM trains it as an ordinary segmentation network on the fold's base classes plus
background (novel-class pixels are background in its labels); stage 2 reuses its encoder and
its head frozen. Module names follow the released code (`ppm.features.i`, `cls`), so a released
checkpoint maps onto it with a prefix rename only (model/checkpoints/bam.py).
"""
from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from model.backbones.encoder import Backbone
from model.layers.blocks import resize
from model.backbones.fold import run_sequential
from model.losses.objective import segmentation_ce

log = logging.getLogger(__name__)

PPM_BINS = (1, 2, 3, 6)


class PPM(nn.Module):
    """Pyramid pooling: the feature and its pooled 1/2/3/6-grid summaries, concatenated."""

    def __init__(self, in_dim: int, bins: tuple[int, ...] = PPM_BINS) -> None:
        super().__init__()
        dim = in_dim // len(bins)
        self.features = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(in_dim, dim, 1, bias=False), nn.BatchNorm2d(dim),
                          nn.ReLU(inplace=True)) for b in bins)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x] + [resize(f(x), x.shape[-2:]) for f in self.features], dim=1)  # [B,2C,h,w]


def pspnet_head(in_dim: int, classes: int) -> nn.Sequential:
    """3x3 conv + BN + ReLU + Dropout2d(0.1) + 1x1 classifier (keys `.0`, `.1`, `.4`)."""
    return nn.Sequential(nn.Conv2d(2 * in_dim, 512, 3, padding=1, bias=False), nn.BatchNorm2d(512),
                         nn.ReLU(inplace=True), nn.Dropout2d(p=0.1), nn.Conv2d(512, classes, 1))


class BaseLearner(nn.Module):
    """PPM + classifier on the layer4 feature: [B,Ch,h,w] -> logits [B,1+Nb,h,w]."""

    def __init__(self, in_dim: int, num_base_classes: int) -> None:
        super().__init__()
        self.ppm = PPM(in_dim)
        self.cls = pspnet_head(in_dim, 1 + num_base_classes)

    def forward(self, high: Tensor) -> Tensor:
        return self.cls(self.ppm(high))


class PSPNet(nn.Module):
    """Backbone (trained, unlike the few-shot methods') + base learner; stage 1 of BAM."""

    def __init__(self, backbone: Backbone, num_base_classes: int, *, zoom_factor: int = 8,
                 ignore_label: int = 255) -> None:
        super().__init__()
        self.backbone = backbone
        for p in backbone.parameters():
            p.requires_grad_(True)
        self.base_learner = BaseLearner(backbone.high_channels, num_base_classes)
        self.num_base_classes, self.zoom_factor, self.ignore_label = num_base_classes, zoom_factor, ignore_label

    def features(self, x: Tensor) -> Tensor:
        """layer0 -> layer4 of the backbone: [B,3,H,W] -> [B,Ch,h,w]."""
        b = self.backbone
        for layer in (b.layer0, b.layer1, b.layer2, b.layer3, b.layer4):
            x = run_sequential(layer, x, b.fold_bn)
        return x

    def forward(self, image: Tensor, label: Tensor | None = None):
        """Eval: logits [B,1+Nb,H',W'] at (H-1)/8*zoom+1. Training: (logits, {"main", "total"})."""
        h, w = image.shape[-2:]
        logits = self.base_learner(self.features(image))
        logits = resize(logits, (int((h - 1) / 8 * self.zoom_factor + 1), int((w - 1) / 8 * self.zoom_factor + 1)))
        if not self.training:
            return logits
        if label is None:
            raise ValueError("training forward needs label [B,H,W] (base-class indices, 255 ignored); "
                             "call net.eval() for inference")
        loss = segmentation_ce(logits, label.long(), self.ignore_label)
        return logits, {"main": loss, "total": loss}
