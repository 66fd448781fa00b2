"""PFENet's training-free prior mask C_p (paper Sec. 3.4, following [31]).

For every query pixel: the highest cosine similarity to any masked support pixel of the
high-level (layer4) features, min-max normalised per image, averaged over the K shots.

Background support pixels enter the released formula as zero vectors whose similarity is 0,
so `foreground_only` compares the query with the foreground support pixels alone and takes
the maximum with 0 where the support has background: the same prior up to float rounding
for a fraction of the FLOPs (the full form costs 2 C S Q per shot, 212 GFLOP of a 473 x 473
batch-4 evaluation).
"""
from __future__ import annotations

import itertools

import torch
from torch import Tensor

COSINE_EPS = 1e-7


def prior_mask(query_high: Tensor, support_high: Tensor, support_mask: Tensor,
               eps: float = COSINE_EPS, foreground_only: bool = False) -> Tensor:
    """C_p: query_high [B,C,h,w], support_high [B,K,C,hs,ws], support_mask [B,K,hs,ws] -> [B,1,h,w]."""
    b, _, h, w = query_high.shape
    q = query_high.flatten(2)                                           # [B,C,Q]
    if foreground_only:
        sim = _best_foreground_similarity(q, support_high.flatten(3), support_mask.flatten(2), eps)
    else:
        s = (support_high * support_mask.unsqueeze(2)).flatten(3)       # [B,K,C,S]
        dot = torch.einsum("bkcs,bcq->bksq", s, q)                      # [B,K,S,Q]
        norms = s.norm(dim=2).unsqueeze(-1) * q.norm(dim=1)[:, None, None]  # [B,K,S,Q]
        sim = (dot / (norms + eps)).amax(dim=2)                         # [B,K,Q] best support pixel
    lo, hi = sim.amin(dim=2, keepdim=True), sim.amax(dim=2, keepdim=True)
    sim = (sim - lo) / (hi - lo + eps)                                  # min-max per image and shot
    return sim.mean(dim=1).view(b, 1, h, w)                             # K-shot mean


def _best_foreground_similarity(q: Tensor, s: Tensor, mask: Tensor, eps: float) -> Tensor:
    """q [B,C,Q], s [B,K,C,S], mask [B,K,S] -> [B,K,Q]: best cosine over pixels with mask > 0,
    and 0 (a masked-out pixel's similarity) wherever the shot has any background."""
    qn = q.norm(dim=1)                                                  # [B,Q]
    out = q.new_zeros(s.shape[0], s.shape[1], q.shape[-1])
    for i, j in itertools.product(range(s.shape[0]), range(s.shape[1])):
        keep = mask[i, j] > 0
        if not bool(keep.any()):
            continue  # no foreground: every similarity is 0
        fg = s[i, j][:, keep] * mask[i, j][keep]                       # [C,n]
        sim = (fg.t() @ q[i]) / (fg.norm(dim=0)[:, None] * qn[i] + eps)   # [n,Q]
        best = sim.amax(dim=0)
        out[i, j] = best.clamp(min=0) if bool((~keep).any()) else best
    return out
