"""Background Eliminating Module (paper Sec. 3.3.2, eq. 4).

A 1x1 conv on the query feature concatenated with the expanded BG prototype learns to
suppress BG responses before matching; one conv per FEM bin, as released (`init_merge1`).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from model.layers.blocks import conv_relu


class BGEM(nn.Module):
    def __init__(self, *, feat_dim: int, bg_dim: int, num_bins: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(conv_relu(feat_dim + bg_dim, feat_dim) for _ in range(num_bins))

    def forward(self, xq: Tensor, bg_proto: Tensor, idx: int) -> Tensor:
        """eq. 4: X^q_BG = F_1x1(X^q ⊕ \\hat P_BG); xq [B,C,b,b], bg_proto [B,D,b,b] -> [B,C,b,b]."""
        return self.convs[idx](torch.cat([xq, bg_proto], dim=1))
