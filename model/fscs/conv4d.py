"""Center-pivot 4D convolution ("Hypercorrelation Squeeze for Few-Shot Segmentation", Sec. 3.3):
a 4D kernel over (query h, query w, support h, support w) restricted to the two 2D planes that
pass through its center, which costs two 2D convolutions instead of one 4D convolution.

For an input x [B, C, Hq, Wq, Hs, Ws] and odd kernels (padding k // 2), the output at query
position p and support position s (both on the stride grids) is

    sum_{d in query kernel} W_q[d] x(p + d, s) + sum_{e in support kernel} W_s[e] x(p, s + e)

plus both biases: `conv1` (W_q) slides over the query dimensions at the pivot support
positions, `conv2` (W_s) over the support dimensions at the pivot query positions. Layer
names are those of the HSNet and iFSL releases, so their checkpoints load strictly.
"""
from __future__ import annotations

from torch import Tensor, nn


class CenterPivotConv4d(nn.Module):
    """[B, Cin, Hq, Wq, Hs, Ws] -> [B, Cout, Hq', Wq', Hs', Ws'] (kernel and stride: 4 values, query
    dimensions first; padding is k // 2 everywhere)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int, int, int],
                 stride: tuple[int, int, int, int], bias: bool = True):
        super().__init__()
        if len(kernel_size) != 4 or len(stride) != 4 or any(k % 2 == 0 for k in kernel_size):
            raise ValueError(f"center-pivot 4D convolution needs 4 odd kernel sizes and 4 strides, got "
                             f"{tuple(kernel_size)}, {tuple(stride)}")
        pad = tuple(k // 2 for k in kernel_size)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size[:2], stride[:2], pad[:2], bias=bias)
        self.conv2 = nn.Conv2d(in_channels, out_channels, kernel_size[2:], stride[2:], pad[2:], bias=bias)
        self.query_stride, self.support_stride = tuple(stride[:2]), tuple(stride[2:])

    def forward(self, x: Tensor) -> Tensor:
        (qh, qw), (sh, sw) = self.query_stride, self.support_stride
        over_query = _conv_2d_planes(self.conv1, x[..., ::sh, ::sw], (2, 3))
        over_support = _conv_2d_planes(self.conv2, x[:, :, ::qh, ::qw], (4, 5))
        return over_query + over_support


def _conv_2d_planes(conv: nn.Conv2d, x: Tensor, dims: tuple[int, int]) -> Tensor:
    """Apply a 2D convolution to the two dimensions `dims` ((2, 3) or (4, 5)) of a 6D tensor,
    batching over the other two."""
    other = (4, 5) if dims == (2, 3) else (2, 3)
    b, c = x.shape[:2]
    o1, o2 = (x.shape[d] for d in other)
    flat = x.permute(0, *other, 1, *dims).reshape(b * o1 * o2, c, *(x.shape[d] for d in dims))
    out = conv(flat)
    out = out.reshape(b, o1, o2, *out.shape[1:])  # [B, other, C', dims]
    return out.permute(0, 3, 4, 5, 1, 2) if dims == (2, 3) else out.permute(0, 3, 1, 2, 4, 5)
