"""Hypercorrelation ("Hypercorrelation Squeeze for Few-Shot Segmentation", Sec. 3.1; used by
ASNet): cosine correlations between every intermediate query and support feature of a ResNet,
stacked per backbone stage.

Features are the outputs of the bottlenecks of stages 2-4 before their final ReLU (13 maps for
ResNet-50, 30 for ResNet-101). Support maps at least `pool_from` wide are average-pooled (3x3,
stride 2) first, which keeps the 4D tensors of large inputs small. Correlations are clamped at
0, and grouped per stage, deepest first: [B, L_stage, Hq, Wq, Hs, Ws] each.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EPS = 1e-5


def _bottleneck_pre_relu(block: nn.Module, x: Tensor) -> Tensor:
    """A torchvision Bottleneck's output before its last ReLU."""
    out = block.relu(block.bn1(block.conv1(x)))
    out = block.relu(block.bn2(block.conv2(out)))
    out = block.bn3(block.conv3(out))
    return out + (block.downsample(x) if block.downsample is not None else x)


def stage_features(resnet: nn.Module, image: Tensor, pool_from: int | None = None) -> list[list[Tensor]]:
    """Bottleneck outputs of stages 2, 3, 4 (before ReLU), one list per stage; maps at least
    `pool_from` wide are 3x3/2 average-pooled (None: never)."""
    x = resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(image))))
    stages = []
    for idx, stage in enumerate((resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)):
        feats = []
        for block in stage:
            out = _bottleneck_pre_relu(block, x)
            if pool_from is not None and out.shape[-1] >= pool_from:
                feats.append(F.avg_pool2d(out, kernel_size=3, stride=2, padding=1))
            else:
                feats.append(out)
            x = F.relu(out)
        if idx > 0:
            stages.append(feats)
    return stages


def correlation(query: Tensor, support: Tensor) -> Tensor:
    """Cosine correlation of [B,C,Hq,Wq] and [B,C,Hs,Ws], clamped at 0 -> [B,Hq,Wq,Hs,Ws]."""
    b, _, hq, wq = query.shape
    hs, ws = support.shape[-2:]
    q = query.flatten(2)
    s = support.flatten(2)
    q = q / (q.norm(dim=1, keepdim=True) + EPS)
    s = s / (s.norm(dim=1, keepdim=True) + EPS)
    return torch.bmm(q.transpose(1, 2), s).view(b, hq, wq, hs, ws).clamp(min=0)


def hypercorrelation(query_stages: list[list[Tensor]], support_stages: list[list[Tensor]], way: int = 1
                     ) -> list[Tensor]:
    """Per stage, deepest first: [B*N, L, Hq, Wq, Hs, Ws]. Supports are [B*N, ...] (way-major per
    episode), the query [B, ...] is repeated for its N ways."""
    out = []
    for q_feats, s_feats in zip(reversed(query_stages), reversed(support_stages)):
        corrs = [correlation(q.repeat_interleave(way, dim=0), s) for q, s in zip(q_feats, s_feats)]
        out.append(torch.stack(corrs, dim=1))
    return out


def resize_query_dims(x: Tensor, size: tuple[int, int]) -> Tensor:
    """[B, C, Hq, Wq, Hs, Ws] -> query dims resized bilinearly (align_corners) to `size`: how the
    squeezed correlation of a deeper stage meets the next stage's query size."""
    b, c, hq, wq, hs, ws = x.shape
    flat = x.permute(0, 4, 5, 1, 2, 3).reshape(b * hs * ws, c, hq, wq)
    flat = F.interpolate(flat, size, mode="bilinear", align_corners=True)
    return flat.reshape(b, hs, ws, c, *size).permute(0, 3, 4, 5, 1, 2)
