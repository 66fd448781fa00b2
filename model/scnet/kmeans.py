"""Spherical k-means (cosine distance), batched over images (SCNet Sec. 3.2.2, eq. 4).

SCNet partitions the query's high-level feature map into n regions with k-means under the
cosine distance, 10 iterations (SCNet Sec. 4.2). Every step here is a tensor operation over
all images and pixels at once; the only Python loops run over the n centres (init) and the
iterations. The start is deterministic (no random numbers are drawn): the first centre is the
pixel most similar to the image's mean direction, each further one the pixel least similar to
its nearest centre so far (greedy farthest-point), so the result depends on the features only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

ITERATIONS = 10   # SCNet Sec. 4.2: "the k-means algorithm iterates 10 rounds"
NORM_EPS = 1e-7


def _unit(x: Tensor) -> Tensor:
    """Rows scaled to unit length (a zero row stays zero)."""
    return x / x.norm(dim=-1, keepdim=True).clamp(min=NORM_EPS)


def farthest_point_init(x: Tensor, k: int) -> Tensor:
    """Deterministic start: x [B,N,C] unit rows -> centres [B,k,C]."""
    rows = torch.arange(x.shape[0], device=x.device)
    mean = _unit(x.mean(dim=1))                                   # [B,C]
    first = torch.einsum("bnc,bc->bn", x, mean).argmax(dim=1)      # most typical pixel
    centres = [x[rows, first]]                                     # k x [B,C]
    nearest = torch.einsum("bnc,bc->bn", x, centres[0])            # [B,N] similarity to nearest centre
    for _ in range(1, k):
        pick = nearest.argmin(dim=1)                               # farthest from every centre so far
        centres.append(x[rows, pick])
        nearest = torch.maximum(nearest, torch.einsum("bnc,bc->bn", x, centres[-1]))
    return torch.stack(centres, dim=1)


def assign_clusters(x: Tensor, centres: Tensor) -> Tensor:
    """Nearest centre under the cosine distance (eq. 4's r_ik): x [B,N,C], centres [B,k,C] -> [B,N]."""
    return torch.einsum("bnc,bkc->bnk", x, centres).argmax(dim=-1)


@torch.no_grad()
def kmeans_cosine(feats: Tensor, k: int, iterations: int = ITERATIONS) -> tuple[Tensor, Tensor]:
    """Solve eq. 4 by Lloyd iterations: feats [B,N,C] -> (assignment [B,N] long, unit centres [B,k,C]).

    Each iteration assigns every pixel to its most similar centre and moves each centre to the
    normalised mean of its pixels (the minimiser of the summed cosine distance). A centre that
    loses all its pixels keeps its position; its cluster is then simply empty.
    """
    if k < 1:
        raise ValueError(f"k-means needs k >= 1 clusters, got {k}")
    with torch.autocast(device_type=feats.device.type, enabled=False):
        x = _unit(feats.float())                                   # [B,N,C]
        centres = farthest_point_init(x, k)                        # [B,k,C]
        for _ in range(iterations):
            onehot = F.one_hot(assign_clusters(x, centres), k).to(x.dtype)   # [B,N,k]
            sums = torch.einsum("bnk,bnc->bkc", onehot, x)                   # [B,k,C]
            filled = onehot.sum(dim=1)[..., None] > 0                        # [B,k,1]
            centres = torch.where(filled, _unit(sums), centres)
        return assign_clusters(x, centres), centres
