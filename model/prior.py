"""PFENet's training-free prior mask C_p (paper Sec. 3.4, following [31]).

For every query pixel: the highest cosine similarity to any masked support pixel of the
high-level (layer4) features, min-max normalised per image, averaged over the K shots.
"""
from __future__ import annotations

import torch
from torch import Tensor

COSINE_EPS = 1e-7


def prior_mask(query_high: Tensor, support_high: Tensor, support_mask: Tensor,
               eps: float = COSINE_EPS) -> Tensor:
    """C_p: query_high [B,C,h,w], support_high [B,K,C,hs,ws], support_mask [B,K,hs,ws] -> [B,1,h,w]."""
    b, _, h, w = query_high.shape
    s = (support_high * support_mask.unsqueeze(2)).flatten(3)           # [B,K,C,S]
    q = query_high.flatten(2)                                           # [B,C,Q]
    dot = torch.einsum("bkcs,bcq->bksq", s, q)                          # [B,K,S,Q]
    norms = s.norm(dim=2).unsqueeze(-1) * q.norm(dim=1)[:, None, None]  # [B,K,S,Q]
    sim = (dot / (norms + eps)).amax(dim=2)                             # [B,K,Q] best support pixel
    lo, hi = sim.amin(dim=2, keepdim=True), sim.amax(dim=2, keepdim=True)
    sim = (sim - lo) / (hi - lo + eps)                                  # min-max per image and shot
    return sim.mean(dim=1).view(b, 1, h, w)                             # K-shot mean
