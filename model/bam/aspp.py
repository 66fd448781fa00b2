"""Atrous spatial pyramid pooling (Chen et al., DeepLab v3) as BAM's meta learner uses it.

Image-level pooling and four parallel branches (1x1, 3x3 at dilation 6, 12, 18), concatenated
to 5C channels. Every conv has a bias and Kaiming-normal init, as released; key names
(`layer6_0` ... `layer6_4`) follow the released module so checkpoints map one to one.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

DILATIONS = (6, 12, 18)


def _branch(c: int, kernel: int, dilation: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(c, c, kernel, padding=dilation if kernel == 3 else 0, dilation=dilation, bias=True)
    nn.init.kaiming_normal_(conv.weight)
    return nn.Sequential(conv, nn.ReLU())


class ASPP(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.layer6_0 = _branch(c, 1)  # image-level branch
        self.layer6_1 = _branch(c, 1)
        self.layer6_2, self.layer6_3, self.layer6_4 = (_branch(c, 3, d) for d in DILATIONS)

    def forward(self, x: Tensor) -> Tensor:
        """[B,C,h,w] -> [B,5C,h,w]."""
        pooled = self.layer6_0(x.mean(dim=(2, 3), keepdim=True)).expand(-1, -1, *x.shape[-2:])
        return torch.cat([pooled, self.layer6_1(x), self.layer6_2(x), self.layer6_3(x), self.layer6_4(x)], dim=1)
