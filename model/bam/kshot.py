"""BAM's K-shot fusion (Lang et al., "Learning What Not to Segment", Sec. 3.5): each shot's
scene difference psi tells how much that support resembles the query; a small net on the
sorted psi values gives softmax weights, which then weight psi itself, the priors and the
prototypes (the release's `kshot_rw`)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from model.bam.gram import adjustment_factor


class ShotWeights(nn.Module):
    """Sorted psi [B,K,1,1] -> 1x1 conv net -> softmax weights in shot order (ones for K = 1)."""

    def __init__(self, shot: int, hidden: int) -> None:
        super().__init__()
        self.shot = shot
        if shot == 1:
            self.net = None
        elif hidden == 0:
            self.net = nn.Conv2d(shot, shot, 1, bias=False)
            nn.init.constant_(self.net.weight, 1.0 / shot)
        else:
            self.net = nn.Sequential(nn.Conv2d(shot, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, shot, 1))

    def forward(self, psi: Tensor) -> Tensor:
        if self.net is None:
            return torch.ones_like(psi)
        ordered, order = psi.sort(dim=1)
        rank = order.argsort(dim=1)
        return self.net(ordered).gather(1, rank).softmax(dim=1)


def scene_difference(query_low: Tensor, support_low: Tensor, weights_net: ShotWeights) -> tuple[Tensor, Tensor]:
    """query_low [B,C,h,w], support_low [B,K,C,h,w] -> (psi [B,1,1,1], shot weights [B,K,1,1])."""
    psi_k = torch.cat([adjustment_factor(query_low, support_low[:, i]) for i in range(support_low.shape[1])], dim=1)
    weights = weights_net(psi_k)
    return (weights * psi_k).sum(dim=1, keepdim=True), weights
