"""BAM's learner ensemble (Lang et al., "Learning What Not to Segment", Sec. 3.3-3.4, eq. 9-11).

The meta learner's background/foreground probabilities are first adjusted by the scene
difference psi (a learned 1x1 mix of each map with psi, initialised to the identity), then the
background is mixed with the base learner's foreground: every pixel the base learner
assigns to a base class is evidence for "not the novel target". Both mixes are learned
2 -> 1 convolutions without bias, as released (`gram_merge`, `cls_merge`).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def _identity_mix() -> nn.Conv2d:
    """1x1 conv 2 -> 1, weights (1, 0): the output starts as the first input channel."""
    conv = nn.Conv2d(2, 1, kernel_size=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 0.0]).view(1, 2, 1, 1))
    return conv


def base_foreground(base_probs: Tensor, exclude: Tensor | None = None) -> Tensor:
    """Sum of the base classes' probabilities: base_probs [B,1+Nb,h,w] -> [B,1,h,w].

    `exclude` [B] (training on base classes): the channel 1 + exclude[b] (the episode's own
    class) is left out, so the target itself is not suppressed.
    """
    fg = base_probs[:, 1:]
    if exclude is None:
        return fg.sum(dim=1, keepdim=True)
    keep = torch.ones_like(fg[:, :, :1, :1])                   # [B,Nb,1,1]
    keep[torch.arange(fg.shape[0], device=fg.device), exclude] = 0
    return (fg * keep).sum(dim=1, keepdim=True)


class Ensemble(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gram_merge = _identity_mix()   # eq. 9: meta map and psi
        self.cls_merge = _identity_mix()    # eq. 10: adjusted meta background and base foreground

    def forward(self, meta_logits: Tensor, base_logits: Tensor, psi: Tensor, exclude: Tensor | None = None) -> Tensor:
        """meta_logits [B,2,h,w], base_logits [B,1+Nb,h,w], psi [B,1,1,1] -> final scores [B,2,h,w]."""
        meta = meta_logits.softmax(dim=1)
        base = base_foreground(base_logits.softmax(dim=1), exclude)           # [B,1,h,w]
        psi_map = psi.expand_as(base)
        bg = self.gram_merge(torch.cat([meta[:, :1], psi_map], dim=1))
        fg = self.gram_merge(torch.cat([meta[:, 1:], psi_map], dim=1))
        bg = self.cls_merge(torch.cat([bg, base], dim=1))                    # eq. 11
        return torch.cat([bg, fg], dim=1)


class FrozenStage1:
    """Mixin for the stage-2 networks: the stage-1 encoder (`backbone`) and base learner stay
    in eval mode (frozen BN, no dropout) while the rest trains, as BAM releases it."""

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.train(False)
        self.base_learner.train(False)
        return self
