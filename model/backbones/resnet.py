"""ResNet-50/101 with the PSPNet deep stem, dilated to output stride 8.

This is the layout of the ImageNet files `resnet50_v2.pth` / `resnet101_v2.pth` that PFENet
and NTRENet start from: a stem of three 3x3 convs (64-64-128) instead of one 7x7, and
layer3/layer4 with stride 1 and dilation 2/4 in every block's 3x3 conv (as PFENet patches
them), so layer3 and layer4 keep the 1/8 resolution of layer2.

`resnet50_torchvision` is the same dilated network on torchvision's stem (one 7x7/2 conv of 64
channels, BN, ReLU, maxpool), which the iFSL release's PFENet uses; its ImageNet file is
torchvision's ResNet-50 state dict.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from model.backbones.fold import conv_bn, run_sequential

BLOCKS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet50_torchvision": (3, 4, 6, 3)}
TORCHVISION_STEM = ("resnet50_torchvision",)

# initmodel file key prefix -> our layer0 index (stem convs/BNs inside nn.Sequential)
STEM_RENAMES = {"conv1.": "layer0.0.", "bn1.": "layer0.1.", "conv2.": "layer0.3.",
                "bn2.": "layer0.4.", "conv3.": "layer0.6.", "bn3.": "layer0.7."}


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride, dilation) -> 1x1, x4 expansion, projection shortcut if needed."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, *, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        self.fold_bn = True  # eval-mode BN folded into the convs (model/backbones/fold.py); not a parameter
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        fold = self.fold_bn
        out = self.relu(conv_bn(self.conv1, self.bn1, x, fold))
        out = self.relu(conv_bn(self.conv2, self.bn2, out, fold))
        out = conv_bn(self.conv3, self.bn3, out, fold)
        shortcut = x if self.downsample is None else run_sequential(self.downsample, x, fold)
        if torch.is_grad_enabled() and (out.requires_grad or shortcut.requires_grad):
            return self.relu(out + shortcut)
        return out.add_(shortcut).relu_()  # frozen encoder under no_grad: no extra activation map


def _stage(in_ch: int, planes: int, blocks: int, *, stride: int, dilation: int) -> nn.Sequential:
    layers = [Bottleneck(in_ch, planes, stride=stride, dilation=dilation)]
    layers += [Bottleneck(planes * 4, planes, dilation=dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _stem() -> nn.Sequential:
    """Deep stem: conv3x3/2 64, conv3x3 64, conv3x3 128 (BN + ReLU each), maxpool 3x3/2."""
    def cbr(i: int, o: int, s: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, stride=s, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]
    return nn.Sequential(*cbr(3, 64, 2), *cbr(64, 64, 1), *cbr(64, 128, 1),
                         nn.MaxPool2d(3, stride=2, padding=1))


def _torchvision_stem() -> nn.Sequential:
    """torchvision's stem: conv7x7/2 64, BN, ReLU, maxpool 3x3/2 (indices 0-3 as the iFSL release)."""
    return nn.Sequential(nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
                         nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))


def resnet_layers(depth: str) -> list[nn.Sequential]:
    """[layer0 (stem), layer1, layer2 (/8), layer3 (dilation 2), layer4 (dilation 4)]."""
    if depth not in BLOCKS:
        raise ValueError(f"unknown ResNet '{depth}': use one of {', '.join(BLOCKS)}")
    n1, n2, n3, n4 = BLOCKS[depth]
    stem, width = (_torchvision_stem(), 64) if depth in TORCHVISION_STEM else (_stem(), 128)
    layers = [stem, _stage(width, 64, n1, stride=1, dilation=1), _stage(256, 128, n2, stride=2, dilation=1),
              _stage(512, 256, n3, stride=1, dilation=2), _stage(1024, 512, n4, stride=1, dilation=4)]
    for m in nn.ModuleList(layers).modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return layers


def rename_initmodel_key(key: str) -> str | None:
    """Key of `resnet*_v2.pth` (or of torchvision's ResNet file, whose stem is `conv1.`, `bn1.`)
    -> our backbone key; None for the unused classifier `fc.*`."""
    if key.startswith("fc."):
        return None
    for old, new in STEM_RENAMES.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key
