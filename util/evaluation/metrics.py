"""Pure per-episode counting for binary (background / foreground) segmentation.

Everything the evaluator reports (class IoU, FB-IoU, precision) is a ratio of sums of the
four foreground confusion counts, so these counts are the only thing accumulated: they are
exact integers, add up across batches and ranks, and make every metric derivable later.
Pixels whose label is `ignore` (255) are excluded from all four counts.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # imported where used: the report reads HEADLINE/DISPLAY without loading torch
    import torch

TP, FP, FN, TN = range(4)
# The metric vocabulary: the headline numbers train.py logs, test.py summarises over seeds and
# the report tabulates, under these names everywhere (Evaluator.compute() keys, results files).
HEADLINE = ("miou", "fbiou", "precision")
DISPLAY = {"miou": "mIoU", "fbiou": "FB-IoU", "precision": "precision"}


class IoUCounts(NamedTuple):
    """Per-class counts; the last dimension of `intersection`/`union` is (bg, fg)."""

    intersection: torch.Tensor  # [..., 2]
    union: torch.Tensor  # [..., 2]
    tp: torch.Tensor  # [...]  foreground true positives
    fp: torch.Tensor  # [...]  foreground false positives


def confusion_counts(pred: torch.Tensor, target: torch.Tensor, ignore: int = 255) -> torch.Tensor:
    """Foreground (tp, fp, fn, tn) over the last two dims, ignore pixels excluded.

    pred: [..., H, W] with 1 = foreground (any other value is background);
    target: same shape, values 0 / 1 / `ignore`. Returns int64 [..., 4].
    """
    import torch

    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    valid = target != ignore
    p = (pred == 1) & valid
    t = target == 1
    dims = (-2, -1)
    tp = (p & t).sum(dims)
    fp = (p & ~t).sum(dims)
    fn = (~p & t).sum(dims)
    tn = (valid & ~p & ~t).sum(dims)
    return torch.stack([tp, fp, fn, tn], dim=-1).to(torch.int64)


def counts_to_iou_counts(counts: torch.Tensor) -> IoUCounts:
    """Intersection/union of bg and fg from confusion counts [..., 4].

    fg: I = tp, U = tp + fp + fn; bg (the roles of prediction and label swap): I = tn,
    U = tn + fp + fn. This is what PFENet's per-class histogram gives for classes 0 and 1.
    """
    import torch

    tp, fp, fn, tn = counts.unbind(-1)
    inter = torch.stack([tn, tp], dim=-1)
    union = torch.stack([tn + fp + fn, tp + fp + fn], dim=-1)
    return IoUCounts(inter, union, tp, fp)


def intersection_union(pred: torch.Tensor, target: torch.Tensor, ignore: int = 255) -> IoUCounts:
    """Per-class (bg, fg) intersection and union plus fg tp/fp of binary maps."""
    return counts_to_iou_counts(confusion_counts(pred, target, ignore))


def ratio(num: float, den: float) -> float:
    """num / den, 0 when den is 0 (PFENet divides by den + 1e-10, which gives the same)."""
    return float(num) / float(den) if den else 0.0


def iou_fg(counts: torch.Tensor) -> float:
    """Foreground IoU of summed confusion counts [4]: tp / (tp + fp + fn)."""
    return ratio(counts[TP], counts[TP] + counts[FP] + counts[FN])


def iou_bg(counts: torch.Tensor) -> float:
    """Background IoU of summed confusion counts [4]: tn / (tn + fp + fn)."""
    return ratio(counts[TN], counts[TN] + counts[FP] + counts[FN])


def precision_fg(counts: torch.Tensor) -> float:
    """Foreground precision of summed confusion counts [4]: tp / (tp + fp) (Table 3)."""
    return ratio(counts[TP], counts[TP] + counts[FP])
