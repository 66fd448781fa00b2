"""Global and local contrastive losses of the prior extractor ("Few-Shot Segmentation with Global
and Local Contrastive Learning", Sec. IV-A, eq. 1, 6, 7).

Both terms are InfoNCE over L2-normalised embeddings: row i of `query` (view 1) is pulled
towards row i of `keys` (view 2 of the same image, eq. 1, or of the same patch, eq. 6) and
pushed from every entry of a queue of earlier keys (MoCo's dynamic dictionary). The local term
embeds patches: `patch_embeddings` pools a dense feature map over each patch's pixels, so
"the same patch in two augmented views" is one patch id looked up in each view's patch map.
Pure functions; the queue lives in `model/qgnet/prior_extractor.py`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def info_nce(query: Tensor, keys: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """-log exp(q.k+/t) / (exp(q.k+/t) + sum_i exp(q.k_i/t)), averaged over the rows.

    query, keys [N,D] (row-aligned positive pairs), queue [M,D] negatives (M may be 0).
    Inputs are used as given: callers normalise (eq. 1 and 6 take unit vectors).
    """
    if query.shape != keys.shape:
        raise ValueError(f"query and keys must be row-aligned pairs, got {tuple(query.shape)} and {tuple(keys.shape)}")
    if query.shape[0] == 0:
        return query.new_zeros(())
    positive = (query * keys).sum(dim=1, keepdim=True)                 # [N,1] q.k+
    negative = query @ queue.t()                                       # [N,M] q.k_i
    logits = torch.cat([positive, negative], dim=1) / temperature      # the positive is entry 0
    return F.cross_entropy(logits, logits.new_zeros(logits.shape[0], dtype=torch.long))


def global_contrastive_loss(query: Tensor, keys: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """Eq. 1: image embeddings of view 1 [B,D] vs view 2 [B,D] (same image = positive), queue [K,D]."""
    return info_nce(F.normalize(query, dim=1), F.normalize(keys, dim=1), queue, temperature)


def local_contrastive_loss(query: Tensor, keys: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """Eq. 6: patch embeddings of view 1 [N,D] vs the same patches in view 2 [N,D], queue [M,D]."""
    return info_nce(F.normalize(query, dim=1), F.normalize(keys, dim=1), queue, temperature)


def patch_embeddings(features: Tensor, patch_maps: Tensor, patches: Tensor) -> Tensor:
    """Mean feature of each chosen patch: features [B,C,h,w], patch_maps [B,H,W] long patch ids
    (-1: no patch, e.g. padding), patches [N,2] rows (image index, patch id) -> [N,C].

    The patch map is reduced to the feature size by area: a feature cell weighs each patch by the
    share of its input pixels the patch covers, so small patches still get a (fractional) cell.
    A patch absent from its view gives the zero vector (callers pick patches present in both).
    """
    if patches.numel() == 0:
        return features.new_zeros(0, features.shape[1])
    image, ids = patches[:, 0], patches[:, 1]
    masks = (patch_maps[image] == ids[:, None, None]).to(features.dtype)             # [N,H,W]
    weights = F.adaptive_avg_pool2d(masks[:, None], features.shape[-2:])[:, 0]        # [N,h,w]
    pooled = torch.einsum("nhw,nchw->nc", weights, features[image])                    # [N,C]
    return pooled / weights.flatten(1).sum(dim=1, keepdim=True).clamp(min=1e-12)


def combined_loss(global_term: Tensor, local_term: Tensor, use_global: bool, use_local: bool) -> Tensor:
    """Eq. 7: L = L_local + L_global, with either term switched off for the paper's Table VI."""
    total = global_term.new_zeros(())
    if use_global:
        total = total + global_term
    if use_local:
        total = total + local_term
    return total
