"""Recall of a region map against the query's ground truth ("Few-Shot Segmentation with Global
and Local Contrastive Learning", eq. 16 and Table VII).

The object region at threshold alpha is R = {V > alpha}, V the map's normalised values in [0, 1];
Recall = |R ∩ R_GT| / |R_GT|, R_GT the ground-truth foreground. The paper does not say whether
the recall over a test set is a mean of per-image ratios or a ratio of pooled pixel counts;
pooled counts are used here (the sums of |R ∩ R_GT| and of |R_GT| over all episodes, as every
metric of util/evaluation/evaluator.py is a ratio of sums): they combine exactly across batches
and processes, and a query without foreground adds nothing instead of an undefined 0/0.
Ignore pixels (255) are never foreground, so they count in neither sum.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # imported where used: the report reads THRESHOLDS without loading torch
    import torch

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # Table VII's columns


def recall_counts(values: torch.Tensor, target: torch.Tensor, thresholds: Sequence[float] = THRESHOLDS,
                  ignore: int = 255) -> tuple[torch.Tensor, int]:
    """(|{V > alpha} ∩ R_GT| per threshold as int64 [T], |R_GT|) of one or more maps.

    values: [..., H, W] region map; target: same shape, labels 0 / 1 / `ignore`.
    """
    import torch

    if values.shape != target.shape:
        raise ValueError(f"map {tuple(values.shape)} and label {tuple(target.shape)} differ in shape")
    bad = (target != 0) & (target != 1) & (target != ignore)
    if bool(bad.any()):
        raise ValueError(f"labels must be 0/1/{ignore}; found {sorted(set(target[bad].unique().tolist()))[:5]}")
    fg = values[target == 1].float()                                                    # V on R_GT
    alphas = torch.tensor(list(thresholds), dtype=fg.dtype, device=fg.device)
    hits = (fg[None, :] > alphas[:, None]).sum(dim=1).to(torch.int64).cpu()           # [T]
    return hits, int(fg.numel())


def at_scoring_size(region: torch.Tensor, raw_mask: torch.Tensor, ignore: int = 255) -> tuple[torch.Tensor, torch.Tensor]:
    """A map [S, S] at the network's input size and the query's raw label [H, W] brought to the
    test protocol's ori_resize geometry: the map resized bilinearly (align_corners, as the logits
    are) onto the L x L square, L = max(H, W), the label padded with `ignore` to it."""
    import torch.nn.functional as F

    from util.evaluation.evaluator import pad_to_square

    target = pad_to_square(raw_mask.to(region.device).long(), ignore)
    side = target.shape[-1]
    up = F.interpolate(region[None, None].float(), size=(side, side), mode="bilinear", align_corners=True)
    return up[0, 0], target


class RegionRecall:
    """Pooled eq. 16 counts of one region map over test episodes, per threshold."""

    def __init__(self, thresholds: Sequence[float] = THRESHOLDS, ignore_label: int = 255) -> None:
        self.thresholds = tuple(float(t) for t in thresholds)
        self.ignore_label = int(ignore_label)
        import torch

        self.hits = torch.zeros(len(self.thresholds), dtype=torch.int64)
        self.gt_pixels = 0
        self.episodes = 0

    def update(self, values: torch.Tensor, target: torch.Tensor) -> None:
        """Add one episode: its map and label at the same size."""
        hits, gt = recall_counts(values, target, self.thresholds, self.ignore_label)
        self.hits += hits
        self.gt_pixels += gt
        self.episodes += 1

    def recall(self) -> list[float | None]:
        """Recall in percent per threshold; None before any foreground pixel was seen."""
        if not self.gt_pixels:
            return [None] * len(self.thresholds)
        return [100.0 * int(h) / self.gt_pixels for h in self.hits]

    def state(self) -> dict:
        """JSON-serialisable counts and recall."""
        return {"thresholds": list(self.thresholds), "hits": self.hits.tolist(), "gt_pixels": self.gt_pixels,
                "episodes": self.episodes, "recall": self.recall()}
