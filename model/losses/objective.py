"""Training objective (paper Sec. 3.6, eq. 11-12), returned as a dict of named terms.

L = main + w_ini * L_ini + w_fem * L_fem + w_bg * L_BG + w_pcl * L_PCL, with the target
terms as 2-class cross-entropies that ignore label 255: main = final prediction y^q;
ini = mean over bins of the y_ini heads (eq. 12's BCE(y_ini)); fem = mean over bins of the
FEM auxiliary heads (PFENet's aux loss). Released weights: 0.6, 0.4, 1.0, 0.01.

With SCNet's query branch (model/scnet/self_contrastive.py), `scnet` is the same main + ini + fem composition
on that branch's outputs against 1 - M^q, and SCNet eq. 9 mixes the two segmentation losses:
L = (1 - λ) (main + w_ini L_ini + w_fem L_fem) + λ scnet + w_bg L_BG + w_pcl L_PCL
(λ = `scnet`, 0 without the branch; λ = 0 gives the loss without the branch exactly).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from model.layers.blocks import resize

TERMS = ("main", "ini", "fem", "bg", "pcl", "scnet")


@dataclass(frozen=True)
class LossWeights:
    ini: float = 0.6
    fem: float = 0.4
    bg: float = 1.0
    pcl: float = 0.01
    scnet: float = 0.0   # SCNet eq. 9's λ (0: no query branch)


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


def segmentation_terms(logits: Tensor, fem_heads: list[Tensor], ini_heads: list[Tensor], target: Tensor,
                       ignore_label: int) -> dict[str, Tensor]:
    """main / fem / ini CEs of one pass of the head (logits [B,2,H,W], target [B,H,W] long)."""
    zero = logits.new_zeros(())
    return {"main": segmentation_ce(logits, target, ignore_label),
            "fem": heads_ce(fem_heads, target, ignore_label),
            "ini": heads_ce(ini_heads, target, ignore_label) if ini_heads else zero}


def segmentation_loss(terms: dict[str, Tensor], weights: LossWeights) -> Tensor:
    """main + w_ini L_ini + w_fem L_fem: NTRENet eq. 12 (+ PFENet's fem); SCNet eq. 9's L1 or L2."""
    return terms["main"] + weights.ini * terms["ini"] + weights.fem * terms["fem"]


def weighted_total(terms: dict[str, Tensor], weights: LossWeights) -> dict[str, Tensor]:
    """eq. 11 with eq. 12's two target terms split into main/ini (and PFENet's fem), and SCNet eq. 9:
    the support branch's segmentation loss weighted 1 - λ, the query branch's (`scnet`) λ."""
    lam = weights.scnet
    seg = (1 - lam) * segmentation_loss(terms, weights) + lam * terms["scnet"]
    total = seg + weights.bg * terms["bg"] + weights.pcl * terms["pcl"]
    return {**{k: terms[k] for k in TERMS}, "total": total}
