"""Training objective (paper Sec. 3.6, eq. 11-12), returned as a dict of named terms.

L = main + w_ini * L_ini + w_fem * L_fem + w_bg * L_BG + w_pcl * L_PCL, with the target
terms as 2-class cross-entropies that ignore label 255: main = final prediction y^q;
ini = mean over bins of the y_ini heads (eq. 12's BCE(y_ini)); fem = mean over bins of the
FEM auxiliary heads (PFENet's aux loss). Released weights: 0.6, 0.4, 1.0, 0.01.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from model.blocks import resize

TERMS = ("main", "ini", "fem", "bg", "pcl")


@dataclass(frozen=True)
class LossWeights:
    ini: float = 0.6
    fem: float = 0.4
    bg: float = 1.0
    pcl: float = 0.01


def resize_labels(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """[B,H,W] labels -> [B,h,w] long, nearest neighbour (only when zoom_factor != 8)."""
    if tuple(labels.shape[-2:]) != tuple(size):
        labels = F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0]
    return labels.long()


def segmentation_ce(logits: Tensor, target: Tensor, ignore_label: int) -> Tensor:
    """Mean 2-class CE over non-ignored pixels (0 when every pixel is ignored, not NaN)."""
    loss = F.cross_entropy(logits, target, ignore_index=ignore_label, reduction="sum")
    return loss / (target != ignore_label).sum().clamp(min=1)


def heads_ce(heads: list[Tensor], target: Tensor, ignore_label: int) -> Tensor:
    """Mean over bins of the CE of per-bin heads [B,2,b,b] (non-empty), each resized once."""
    logits = torch.cat([resize(h, target.shape[-2:]) for h in heads])  # [nB,2,H,W]
    # every bin has the same labels and count, so the pooled mean equals the mean over bins
    return segmentation_ce(logits, target.repeat(len(heads), 1, 1), ignore_label)


def weighted_total(terms: dict[str, Tensor], weights: LossWeights) -> dict[str, Tensor]:
    """eq. 11 with eq. 12's two target terms split into main/ini (and PFENet's fem)."""
    total = (terms["main"] + weights.ini * terms["ini"] + weights.fem * terms["fem"]
             + weights.bg * terms["bg"] + weights.pcl * terms["pcl"])
    return {**{k: terms[k] for k in TERMS}, "total": total}
