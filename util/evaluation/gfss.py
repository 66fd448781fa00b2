"""Generalized FSS prediction and scores (BAM's released test_GFSS, merge 'final').

A pixel is the episode's novel class where the final foreground probability exceeds tau;
elsewhere it takes the base learner's arg-max (a base class or background). Scores are per-class
IoUs accumulated over episodes (ratio of sums): mIoU over the base classes, over the novel
classes, over all of them (the release's total), and the mean of the base and novel mIoUs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from util.evaluation.evaluator import pad_to_square
from util.evaluation.semantic import ClassCounts


def gfss_prediction(final: torch.Tensor, base: torch.Tensor, slot: int, tau: float, side: int) -> torch.Tensor:
    """final [2,S,S], base [1+Nb,S,S] logits -> class map [side, side] (novel pixels = slot)."""
    up = lambda x: F.interpolate(x[None].float(), size=(side, side), mode="bilinear", align_corners=True)[0]
    novel = up(final).softmax(dim=0)[1] > tau
    return torch.where(novel, torch.full_like(novel, slot, dtype=torch.long), up(base).argmax(dim=0))


class GFSSScores:
    """Counts over background, Nb base classes and Nn novel slots."""

    def __init__(self, num_base: int, num_novel: int, ignore: int = 255) -> None:
        self.num_base, self.num_novel, self.ignore = num_base, num_novel, ignore
        self.counts = ClassCounts(1 + num_base + num_novel, ignore)

    def update(self, final: torch.Tensor, base: torch.Tensor, target: torch.Tensor, slot: int, tau: float) -> None:
        """One episode: logits at the test size, target [H,W] at the label's original size."""
        square = pad_to_square(target.long(), self.ignore)
        self.counts.update(gfss_prediction(final, base, slot, tau, square.shape[-1]).cpu(), square)

    def compute(self) -> dict:
        nb, nn = self.num_base, self.num_novel
        base = self.counts.mean_iou(range(1, 1 + nb))
        novel = self.counts.mean_iou(range(1 + nb, 1 + nb + nn))
        return {"miou_base": base, "miou_novel": novel, "miou_total": self.counts.mean_iou(range(1, 1 + nb + nn)),
                "miou_mean": (base + novel) / 2, "iou": self.counts.iou()}
