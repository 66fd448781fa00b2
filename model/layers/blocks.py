"""Conv blocks shared by the heads.

Their layouts (index of each conv inside the Sequential) mirror the released PFENet and
NTRENet models, so official checkpoints map onto them key for key (see convert.py).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def conv_relu(in_ch: int, out_ch: int, *, dropout: float = 0.0) -> nn.Sequential:
    """1x1 conv (no bias) + ReLU [+ Dropout2d]; keys `.0.weight`."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.ReLU(inplace=True)]
    if dropout > 0:
        layers.append(nn.Dropout2d(p=dropout))
    return nn.Sequential(*layers)


def refine_block(ch: int) -> nn.Sequential:
    """Two 3x3 conv + ReLU, used residually (`x + block(x)`); keys `.0`, `.2`."""
    return nn.Sequential(
        nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.ReLU(inplace=True),
        nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.ReLU(inplace=True),
    )


def seg_head(ch: int, classes: int = 2) -> nn.Sequential:
    """3x3 conv, ReLU, Dropout2d(0.1), 1x1 classifier; keys `.0`, `.3`."""
    return nn.Sequential(
        nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.ReLU(inplace=True),
        nn.Dropout2d(p=0.1), nn.Conv2d(ch, classes, 1),
    )


def resize(x: Tensor, size: tuple[int, int] | list[int] | object) -> Tensor:
    """Bilinear resize with align_corners=True (the PFENet convention); no-op at equal size."""
    size = tuple(int(s) for s in size)  # type: ignore[union-attr]
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)
