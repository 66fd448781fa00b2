"""PFENet's Feature Enrichment Module: the segmentation network `Seg` of eq. 9.

Several pooled scales ("bins") of the merged query feature are refined top-down (each bin
also sees the previous, larger one), each with its own auxiliary head, then fused at the
feature size into the final logits. Bins > 1 are square sizes (PASCAL 60/30/15/8 at 473
input); bins <= 1.0 are fractions of the feature size (COCO 1.0/0.5/0.25/0.125).
With `cap_bins` a bin larger than the feature map runs at the feature size instead of on a
pooled-up copy (at 241 x 241 the 60-bin's convs would otherwise run on 60 x 60 from 31 x 31):
fewer FLOPs, different numbers (docs/speed.md).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.layers.blocks import conv_relu, refine_block, resize, seg_head


class FEM(nn.Module):
    def __init__(self, *, feat_dim: int, bins: Sequence[float], cap_bins: bool = False) -> None:
        super().__init__()
        if not bins or any(b <= 0 for b in bins):
            raise ValueError(f"FEM bins must be a non-empty list of positive numbers, got {list(bins)}")
        self.bins, self.cap_bins = tuple(bins), cap_bins
        n = len(self.bins)
        self.merge_prev = nn.ModuleList(conv_relu(2 * feat_dim, feat_dim) for _ in range(n - 1))
        self.refine = nn.ModuleList(refine_block(feat_dim) for _ in range(n))
        self.heads = nn.ModuleList(seg_head(feat_dim) for _ in range(n))
        self.fuse = conv_relu(n * feat_dim, feat_dim)
        self.fuse_refine = refine_block(feat_dim)
        self.head = seg_head(feat_dim)

    @property
    def num_bins(self) -> int:
        return len(self.bins)

    def bin_size(self, idx: int, size: Sequence[int]) -> tuple[int, int]:
        """Spatial size of bin `idx` for a feature map of `size` (h, w)."""
        b = self.bins[idx]
        if b <= 1.0:
            return max(1, int(size[0] * b)), max(1, int(size[1] * b))
        if self.cap_bins:
            return min(int(b), int(size[0])), min(int(b), int(size[1]))
        return int(b), int(b)

    def pool(self, x: Tensor, idx: int) -> Tensor:
        """Adaptive average pooling of x [B,C,h,w] to bin `idx`."""
        return F.adaptive_avg_pool2d(x, self.bin_size(idx, x.shape[-2:]))

    def step(self, x: Tensor, prev: Tensor | None, idx: int, size: Sequence[int]) -> tuple[Tensor, Tensor]:
        """One bin: x [B,C,b,b] (output of FM or DOEM), prev [B,C,h,w] = previous bin at feature size.

        Returns this bin's feature at `size` [B,C,h,w] and its auxiliary logits [B,2,b,b].
        """
        if idx > 0:  # inter-bin path: merge with the previous (larger) bin, residually
            x = self.merge_prev[idx - 1](torch.cat([x, resize(prev, x.shape[-2:])], dim=1)) + x
        x = self.refine[idx](x) + x
        return resize(x, size), self.heads[idx](x)

    def fuse_bins(self, feats: list[Tensor]) -> Tensor:
        """Concat of all bins at feature size [B,nC,h,w] -> final logits [B,2,h,w]."""
        x = self.fuse(torch.cat(feats, dim=1))
        x = self.fuse_refine(x) + x
        return self.head(x)
