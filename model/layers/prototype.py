"""Masked average pooling (MAP): the prototype of a feature map over a (soft) mask.

Used for the support prototype P^s (Sec. 3.4), the DO prototype of eq. 8 and the PCL
prototypes (Sec. 3.5.2). The 5e-4 in the denominator is PFENet's `Weighted_GAP`: an empty
mask gives a zero prototype instead of NaN.
"""
from __future__ import annotations

from torch import Tensor

AREA_EPS = 5e-4


def masked_average_pooling(feat: Tensor, mask: Tensor, eps: float = AREA_EPS) -> Tensor:
    """P = sum(X * M) / (sum(M) + eps) over space.

    feat [N, C, h, w], mask [N, 1, h, w] (values in [0, 1]) -> [N, C, 1, 1].
    """
    area = mask.sum(dim=(2, 3), keepdim=True) + eps        # [N, 1, 1, 1]
    return (feat * mask).sum(dim=(2, 3), keepdim=True) / area  # [N, C, 1, 1]
