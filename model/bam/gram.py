"""BAM's scene-difference estimate (Lang et al., "Learning What Not to Segment", Sec. 3.3).

The Gram matrix of a low-level feature summarises its style (which channels fire together);
the Frobenius norm of the difference of the query's and the support's normalised Gram
matrices says how different the two scenes are. The ensemble (model/bam/ensemble.py) uses it to
decide how far to trust the meta learner against the base learner.
"""
from __future__ import annotations

import torch
from torch import Tensor

GRAM_EPS = 1e-7


def gram_matrix(feat: Tensor, eps: float = GRAM_EPS) -> Tensor:
    """G = F F^T / (|F| |F|^T): feat [B,C,h,w] -> [B,C,C], channel-wise cosine similarities."""
    f = feat.flatten(2)                                        # [B,C,N]
    norm = f.norm(dim=2, keepdim=True)                         # [B,C,1]
    return torch.bmm(f, f.transpose(1, 2)) / (torch.bmm(norm, norm.transpose(1, 2)) + eps)


def adjustment_factor(query_low: Tensor, support_low: Tensor) -> Tensor:
    """psi = |G_q - G_s|_F / |1_{CxC}|_F: query [B,C,h,w], support [B,C,h,w] -> [B,1,1,1].

    The normaliser is the norm of an all-ones C x C matrix, i.e. C, as in the released code.
    """
    diff = gram_matrix(query_low) - gram_matrix(support_low)  # [B,C,C]
    return (diff.norm(dim=(1, 2)) / float(query_low.shape[1])).view(-1, 1, 1, 1)


LOW_LAYERS = ("layer2", "layer3")  # the layers psi can be computed on (released: layer2)


def low_level(mid_channels: int, low_layer: str) -> slice:
    """Channels of `low_layer` in the backbone's mid-level feature cat(layer3, layer2), where
    layer3 holds the first 2/3 of the channels."""
    if low_layer not in LOW_LAYERS:
        raise ValueError(f"low_layer must be one of {LOW_LAYERS}, got '{low_layer}'")
    split = mid_channels * 2 // 3
    return slice(split, None) if low_layer == "layer2" else slice(0, split)
