"""Background Mining Module (paper Sec. 3.3.1, eq. 1-3).

Background (sky, grass, walls...) looks alike across images and classes, so one learnable
prototype P_BG can find it anywhere; it is learned without BG labels via the BG mining loss,
which only needs the target masks.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.layers.blocks import conv_relu, refine_block, seg_head

BG_CHANNEL = 1  # channel of the 2-class BG logits that means "background"
INITS = ("zeros", "random")      # P_BG: released zeros, paper "randomly initialize" (standard normal)
NORMS = ("per_image", "pooled")  # eq. 3's N: per image (released, eq. 3 as written) or per batch


class BGMM(nn.Module):
    """P_BG (1 x 1 x D) and the shared BG segmentation net F."""

    def __init__(self, *, feat_dim: int, bg_dim: int, dropout: float = 0.5, init: str = "zeros") -> None:
        super().__init__()
        if init not in INITS:
            raise ValueError(f"bg_init must be one of {INITS}, got '{init}'")
        # released: zeros; paper Sec. 3.3.1: random (no distribution named: standard normal here)
        shape = (1, bg_dim, 1, 1)
        self.prototype = nn.Parameter(torch.zeros(shape) if init == "zeros" else torch.randn(shape))  # P_BG
        # F: released layout (down_bg, bg_res1, bg_cls): 1x1 reduce, residual 3x3 pair, head.
        self.reduce = conv_relu(feat_dim + bg_dim, feat_dim, dropout=dropout)
        self.refine = refine_block(feat_dim)
        self.head = seg_head(feat_dim)

    def expand(self, x: Tensor) -> Tensor:
        """\\hat P_BG: the prototype broadcast to x's batch and size, in x's dtype."""
        n, _, h, w = x.shape
        return self.prototype.to(x.dtype).expand(n, -1, h, w)  # [N,D,h,w]

    def forward(self, x: Tensor) -> Tensor:
        """eq. 1-2: y_BG = F(X ⊕ \\hat P_BG); x [N,C,h,w] -> 2-class logits [N,2,h,w] (ch 1 = BG)."""
        h = self.reduce(torch.cat([x, self.expand(x)], dim=1))  # [N,C,h,w]
        h = self.refine(h) + h
        return self.head(h)


def bg_probability(bg_logits: Tensor) -> Tensor:
    """y_BG in [0, 1]: [N,2,h,w] -> [N,1,h,w]."""
    return bg_logits.softmax(dim=1)[:, BG_CHANNEL:BG_CHANNEL + 1]


def bg_binary(bg_logits: Tensor) -> Tensor:
    """Y_BG: argmax map, 1 where BG wins; [N,2,h,w] -> [N,1,h,w] in the logits' dtype."""
    return (bg_logits.argmax(dim=1, keepdim=True) == BG_CHANNEL).to(bg_logits.dtype)


def bg_mining_loss(bg_logits: Tensor, labels: Tensor, *, alpha: float, groups: int = 1,
                   norm: str = "per_image") -> Tensor:
    """eq. 3: -(1/N) sum_target log(1 - y_BG) - alpha (1/Z) sum_all log y_BG.

    Released form: two 2-class cross-entropies, target pixels (label == 1, N of them) vs
    "not BG", and all Z pixels (255/padding included) vs "BG". bg_logits [G*B,2,H,W] at the
    label size, labels [G*B,H,W]; the loss is computed per group of B images (the query
    batch, then each shot's batch) and averaged over the G = K+1 groups. norm 'per_image':
    N counts one image's target pixels and the target term is averaged over the B images
    (released `weighted_BCE`); 'pooled': N counts the whole group's target pixels, so images
    weigh by their target area. An image or group without target pixels adds 0, not NaN.
    """
    if norm not in NORMS:
        raise ValueError(f"bg_loss_norm must be one of {NORMS}, got '{norm}'")
    logp = F.log_softmax(bg_logits.to(torch.promote_types(bg_logits.dtype, torch.float32)), dim=1)  # [GB,2,H,W]
    target = (labels == 1).to(logp.dtype).unflatten(0, (groups, -1))   # [G,B,H,W]
    not_bg = -logp[:, 1 - BG_CHANNEL].unflatten(0, (groups, -1))       # [G,B,H,W]
    is_bg = -logp[:, BG_CHANNEL].unflatten(0, (groups, -1))
    weighted = not_bg * target                                          # [G,B,H,W]
    if norm == "per_image":
        term_target = (weighted.sum(dim=(2, 3)) / target.sum(dim=(2, 3)).clamp(min=1)).mean(dim=1)  # [G]
    else:
        term_target = weighted.sum(dim=(1, 2, 3)) / target.sum(dim=(1, 2, 3)).clamp(min=1)
    term_all = is_bg.mean(dim=(1, 2, 3))
    return (term_target + alpha * term_all).mean()
