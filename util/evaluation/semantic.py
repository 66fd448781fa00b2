"""Multi-class segmentation counts: BAM's stage-1 validation (base classes) and the
generalized FSS test (base and novel classes together).

Per class c: intersection = pixels predicted c and labelled c, union = predicted c or labelled
c, ignore pixels excluded; summed over images (ratio of sums, as the released code), so
batches add up exactly.
"""
from __future__ import annotations

from typing import Sequence

import torch


class ClassCounts:
    """Intersection and union per class 0..num_classes-1, accumulated as int64."""

    def __init__(self, num_classes: int, ignore: int = 255) -> None:
        self.num_classes, self.ignore = num_classes, ignore
        self.inter = torch.zeros(num_classes, dtype=torch.int64)
        self.union = torch.zeros(num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """pred, target: integer maps of one shape (target may hold `ignore`)."""
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        valid = target != self.ignore
        p, t = pred[valid].long().cpu(), target[valid].long().cpu()
        n = self.num_classes
        self.inter += torch.bincount(p[p == t], minlength=n)[:n]
        area_p = torch.bincount(p, minlength=n)[:n]
        area_t = torch.bincount(t, minlength=n)[:n]
        self.union += area_p + area_t - torch.bincount(p[p == t], minlength=n)[:n]

    def iou(self) -> list[float | None]:
        """IoU per class in percent; None for a class neither predicted nor labelled."""
        return [None if int(u) == 0 else 100.0 * int(i) / int(u) for i, u in zip(self.inter, self.union)]

    def mean_iou(self, classes: Sequence[int]) -> float:
        """Mean IoU (percent) over `classes`; a class never seen counts 0, as released."""
        ious = self.iou()
        return sum(ious[c] or 0.0 for c in classes) / max(len(classes), 1)
