"""Support Feature Matching (paper Sec. 3.4, eq. 5-6).

Activates the target in the (BG-filtered) query feature with the support prototype and the
prior mask. With DOEM on, a residual 3x3 pair and a head give the initial prediction y_ini
that DOEM needs (released `inital_beta_conv` / `inital_inner_cls`); without DOEM, the merge
conv alone is PFENet's `init_merge` and the FEM follows directly.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from model.layers.blocks import conv_relu, refine_block, seg_head


class FeatureMatching(nn.Module):
    def __init__(self, *, feat_dim: int, num_bins: int, with_initial_head: bool, prior_channels: int = 1) -> None:
        super().__init__()
        # prior_channels: C_p, plus QGNet's prior region map when `qgnet_prior` is on (docs/qgnet.md)
        self.merge = nn.ModuleList(conv_relu(2 * feat_dim + prior_channels, feat_dim) for _ in range(num_bins))
        self.refine = self.heads = None
        if with_initial_head:
            self.refine = nn.ModuleList(refine_block(feat_dim) for _ in range(num_bins))
            self.heads = nn.ModuleList(seg_head(feat_dim) for _ in range(num_bins))

    def forward(self, xq: Tensor, proto: Tensor, prior: Tensor, idx: int) -> tuple[Tensor, Tensor | None]:
        """xq [B,C,b,b] (X^q_BG, or X^q when BGEM is off), proto [B,C,1,1], prior [B,P,b,b] (C_p [+ region map]).

        Returns X^q_act [B,C,b,b] and y_ini logits [B,2,b,b] (None without the initial head).
        """
        x = torch.cat([xq, proto.expand(-1, -1, *xq.shape[-2:]), prior], dim=1)  # [B,2C+P,b,b]
        x = self.merge[idx](x)                      # eq. 5: X_act = F_1x1(X_BG ⊕ \hat P^s ⊕ C_p)
        if self.heads is None:
            return x, None
        x = self.refine[idx](x) + x
        return x, self.heads[idx](x)                # eq. 6: y_ini = F_3x3(X_act)
