"""BatchNorm folded into the preceding convolution when BN uses its running statistics.

In eval mode (and always with `backbone_bn: frozen`) BN is an affine map per channel, so
conv -> BN equals one conv with scaled weights and a bias, which saves BN's pass over each
activation map (on the 2-core CPU of docs/speed.md this measured no gain: its
convolutions dominate). The folded weights are computed per call (a few million
multiplies against the convolution's billions), so nothing is cached and nothing goes stale
when weights are loaded. Outputs equal the unfolded path up to float rounding (tested).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: Tensor, fold: bool = True) -> Tensor:
    """bn(conv(x)), as one convolution when BN is in eval mode and `fold` is on."""
    if bn.training or not fold:
        return bn(conv(x))
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)            # [O]
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    weight = conv.weight * scale.reshape(-1, 1, 1, 1)
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def run_sequential(seq: nn.Sequential, x: Tensor, fold: bool = True) -> Tensor:
    """seq(x), with every Conv2d -> BatchNorm2d pair through `conv_bn`; other children as usual."""
    children = list(seq)
    i = 0
    while i < len(children):
        m = children[i]
        nxt = children[i + 1] if i + 1 < len(children) else None
        if isinstance(m, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
            x, i = conv_bn(m, nxt, x, fold), i + 2
        else:
            x, i = m(x), i + 1
    return x
