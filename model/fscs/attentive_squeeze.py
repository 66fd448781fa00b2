"""Attentive squeeze layer of ASNet ("Integrative Few-Shot Learning for Classification and
Segmentation", Sec. 4): a global self-attention over the support dimensions of a 4D
correlation, computed for every query position, followed by a feed-forward block.

Input and output are [B, C, Hq, Wq, Hs, Ws]. The query dimensions are only carried along; the
support dimensions are squeezed by the strided (1, k, k) convolutions that embed the queries
(and, with `pool_kv`, the keys and values). A support mask, when given, masks the keys
outside the support object. `local` replaces the global attention by the strided query
embedding alone (the paper's Table 2c (a)). Layer names follow the released model, so its
checkpoints load strictly.
"""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

MASKED = -1e9  # attention logit of masked keys


def _conv(cin: int, cout: int, kernel: int, stride: int, padding: int, bias: bool) -> nn.Conv3d:
    """A convolution over the support dimensions only (the query positions are its depth)."""
    return nn.Conv3d(cin, cout, (1, kernel, kernel), (1, stride, stride), (0, padding, padding), bias=bias)


class Attention(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int, *, heads: int = 8,
                 groups: int = 4, pool_kv: bool = False, local: bool = False):
        super().__init__()
        hidden = cout // 2
        if hidden % heads:
            raise ValueError(f"attentive squeeze: half of {cout} output channels must divide into {heads} heads")
        self.heads, self.local = heads, local
        keeps_size = cin == cout and math.floor((2 * padding - kernel) / stride) == -1
        self.short_cut = nn.Identity() if keeps_size else nn.Sequential(
            _conv(cin, cout, kernel, stride, padding, False), nn.GroupNorm(groups, cout), nn.ReLU(inplace=True))
        self.qhead = _conv(cin, hidden, kernel, stride, padding, True)
        if not local:
            kv = (kernel, stride, padding) if pool_kv else (1, 1, 0)
            self.khead = _conv(cin, hidden, *kv, True)
            self.vhead = _conv(cin, hidden, *kv, True)
        self.agg = nn.Sequential(nn.GroupNorm(groups, hidden), nn.ReLU(inplace=True),
                                 nn.Conv3d(hidden, cout, 1, bias=False), nn.GroupNorm(groups, cout),
                                 nn.ReLU(inplace=True))
        self.out_norm = nn.GroupNorm(groups, cout)

    def forward(self, x: Tensor, support_mask: Tensor | None) -> Tensor:
        """x [B, C, T, Hs, Ws] (T = query positions), support_mask [B, H, W] or None."""
        q = self.qhead(x)
        out = q if self.local else self._attend(q, x, support_mask)
        return self.out_norm(self.agg(out) + self.short_cut(x))

    def _attend(self, q: Tensor, x: Tensor, support_mask: Tensor | None) -> Tensor:
        k, v = self.khead(x), self.vhead(x)
        b, c, t, hq, wq = q.shape
        g = self.heads

        def heads(z: Tensor) -> Tensor:  # [B, C, T, H, W] -> [B, G, T, HW, C/G]
            return z.reshape(b, g, c // g, t, -1).permute(0, 1, 3, 4, 2)

        logits = heads(q) @ heads(k).transpose(-1, -2)                      # [B, G, T, Lq, Lk]
        if support_mask is not None:
            m = F.interpolate(support_mask.float()[:, None], k.shape[-2:], mode="bilinear", align_corners=True)
            logits = logits.masked_fill(m.flatten(1)[:, None, None, None, :] == 0, MASKED)
        out = logits.softmax(dim=-1) @ heads(v)                              # [B, G, T, Lq, C/G]
        return out.permute(0, 1, 4, 2, 3).reshape(b, c, t, hq, wq)


class FeedForward(nn.Module):
    def __init__(self, channels: int, groups: int = 4, ratio: int = 2):
        super().__init__()
        hidden = channels // ratio
        self.ff = nn.Sequential(nn.Conv3d(channels, hidden, 1, bias=False), nn.GroupNorm(groups, hidden),
                                nn.ReLU(inplace=True), nn.Conv3d(hidden, channels, 1, bias=False))
        self.out_norm = nn.GroupNorm(groups, channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.out_norm(self.ff(x) + x)


class AttentiveSqueezeLayer(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int, *, pool_kv: bool = False,
                 local: bool = False):
        super().__init__()
        self.attn = Attention(cin, cout, kernel, stride, padding, pool_kv=pool_kv, local=local)
        self.ff = FeedForward(cout)

    def forward(self, x: Tensor, support_mask: Tensor | None) -> Tensor:
        b, c, hq, wq, hs, ws = x.shape
        out = self.ff(self.attn(x.reshape(b, c, hq * wq, hs, ws), support_mask))
        return out.reshape(b, out.shape[1], hq, wq, *out.shape[-2:])


def squeeze_block(cin: int, channels: tuple[int, ...], kernels: tuple[int, ...], strides: tuple[int, ...], *,
                  pool_kv: bool = False, local: bool = False) -> nn.ModuleList:
    """Attentive squeeze layers in sequence (padding k // 2 for kernels above 2, else 0)."""
    layers, prev = [], cin
    for cout, k, s in zip(channels, kernels, strides):
        layers.append(AttentiveSqueezeLayer(prev, cout, k, s, k // 2 if k > 2 else 0, pool_kv=pool_kv, local=local))
        prev = cout
    return nn.ModuleList(layers)


def run_block(block: nn.ModuleList, x: Tensor, support_mask: Tensor | None) -> Tensor:
    for layer in block:
        x = layer(x, support_mask)
    return x

