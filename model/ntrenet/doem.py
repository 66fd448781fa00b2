"""Distracting Objects Eliminating Module (paper Sec. 3.5.1, eq. 7-9).

What is neither background nor the initial target is a distracting object (DO); its
prototype, concatenated with the activated query feature, lets the following FEM suppress it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from model.ntrenet.bgmm import bg_binary
from model.layers.blocks import conv_relu
from model.layers.prototype import masked_average_pooling

POOLING = ("global", "masked")


def do_mask(bg_logits: Tensor, ini_logits: Tensor) -> Tensor:
    """eq. 7: Y_DO = 1 - (Y_BG ∪ Y_ini) from argmax maps; [B,2,b,b] x2 -> [B,1,b,b]."""
    y_ini = (ini_logits.argmax(dim=1, keepdim=True) == 1).to(ini_logits.dtype)
    return (1 - bg_binary(bg_logits)) * (1 - y_ini)


def do_prototype(xq: Tensor, y_do: Tensor, pooling: str) -> Tensor:
    """eq. 8, xq [B,C,b,b], y_do [B,1,b,b] -> [B,C,1,1].

    'masked': sum(X Y_DO) / sum(Y_DO) as in the paper; 'global': mean over all pixels of
    X Y_DO, as the released code does (the prototype shrinks with the DO area).
    """
    if pooling == "masked":
        return masked_average_pooling(xq, y_do)
    return (xq * y_do).mean(dim=(2, 3), keepdim=True)


class DOEM(nn.Module):
    def __init__(self, *, feat_dim: int, num_bins: int, pooling: str = "global") -> None:
        super().__init__()
        if pooling not in POOLING:
            raise ValueError(f"do_pooling must be one of {POOLING}, got '{pooling}'")
        self.pooling = pooling
        self.convs = nn.ModuleList(conv_relu(2 * feat_dim, feat_dim) for _ in range(num_bins))

    def forward(self, x_act: Tensor, xq: Tensor, bg_logits: Tensor, ini_logits: Tensor,
                idx: int) -> tuple[Tensor, Tensor]:
        """x_act, xq [B,C,b,b]; bg_logits, ini_logits [B,2,b,b] -> (DO-filtered [B,C,b,b], Y_DO [B,1,b,b])."""
        y_do = do_mask(bg_logits, ini_logits)                 # eq. 7
        p_do = do_prototype(xq, y_do, self.pooling)           # eq. 8, [B,C,1,1]
        x = torch.cat([x_act, p_do.expand_as(x_act)], dim=1)  # eq. 9 input: X_act ⊕ \hat P_DO
        return self.convs[idx](x), y_do
