"""FS-CS metrics (docs/fscs.md): classification 0/1 exact ratio (ER) and segmentation mIoU over
the N+1 classes of each episode, with the accounting of the iFSL evaluator.

Per episode, the intersection and union of each of the N+1 episode classes (0 background,
n = way n) are counted with `ignore` pixels excluded, then added to the totals of the real
classes they stand for (0 stays background, way n -> its support class). mIoU is the mean over
the fold's classes of total intersection / max(total union, 1): a class never predicted nor
present scores 0 and still counts, as in the iFSL evaluator. ER is the share of episodes whose
N presence predictions are all right. FB-IoU is the mean of the background IoU and the IoU of
the pooled foreground classes. Values are percentages (0-100).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from util.evaluation.evaluator import pad_to_square


def exact_hits(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[B] bool: episode b has every one of its N presence predictions right (pred/target [B, N])."""
    if pred.shape != target.shape:
        raise ValueError(f"presence prediction {tuple(pred.shape)} and tags {tuple(target.shape)} differ in shape")
    return (pred.bool() == target.bool()).all(dim=-1)


def episode_areas(pred: torch.Tensor, target: torch.Tensor, way: int, ignore: int = 255
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Intersection and union [N+1] of the episode classes 0..N of one [H, W] prediction and
    label; pixels labelled `ignore` count nowhere."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    valid = target != ignore
    p, t = pred[valid].long(), target[valid].long()
    n = way + 1
    inter = torch.bincount(p[p == t], minlength=n)[:n]
    area_p = torch.bincount(p.clamp(0, n), minlength=n + 1)[:n]  # out-of-range predictions: no class
    area_t = torch.bincount(t, minlength=n)[:n]
    return inter, area_p + area_t - inter


def predict_at_original(scores: torch.Tensor, raw_mask: torch.Tensor, ignore: int = 255
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(prediction, label) [L, L] under the ori_resize protocol: scores [N+1, S, S] resized
    bilinearly onto the raw label padded to its square (the binary evaluator's geometry)."""
    target = pad_to_square(raw_mask.to(scores.device).long(), ignore)
    side = target.shape[-1]
    up = F.interpolate(scores[None].float(), size=(side, side), mode="bilinear", align_corners=True)
    return up.argmax(dim=1)[0], target


class FSCSMeter:
    """Totals over episodes: intersection/union per real class (index 0 = background), ER hits
    and episode count. `class_ids` are the fold's classes the mIoU averages."""

    def __init__(self, class_ids: Sequence[int], num_classes: int, ignore_label: int = 255):
        self.class_ids = torch.tensor(list(class_ids), dtype=torch.long)
        self.num_classes, self.ignore = num_classes, ignore_label
        self.inter = torch.zeros(num_classes + 1, dtype=torch.int64)
        self.union = torch.zeros(num_classes + 1, dtype=torch.int64)
        self.hits = 0
        self.episodes = 0

    def update(self, pred_presence: torch.Tensor, presence: torch.Tensor, pred_masks: Sequence[torch.Tensor],
               masks: Sequence[torch.Tensor], support_classes: torch.Tensor) -> None:
        """pred_presence/presence [B, N]; pred_masks/masks: B maps [H, W] over 0..N (+ ignore);
        support_classes [B, N]: real class id of each way."""
        way = support_classes.shape[1]
        self.hits += int(exact_hits(pred_presence.cpu(), presence.cpu()).sum())
        self.episodes += int(presence.shape[0])
        for pred, target, ways in zip(pred_masks, masks, support_classes.cpu()):
            inter, union = episode_areas(pred.cpu(), target.cpu(), way, self.ignore)
            ids = torch.cat([ways.new_zeros(1), ways])  # episode class -> real class
            self.inter.index_add_(0, ids, inter)
            self.union.index_add_(0, ids, union)

    def merge(self, other: "FSCSMeter") -> None:
        """Add another meter's totals (another batch or rank)."""
        self.inter += other.inter
        self.union += other.union
        self.hits += other.hits
        self.episodes += other.episodes

    def compute(self) -> dict:
        """{'er', 'miou', 'fbiou', 'iou' (per class id), 'episodes'} in percent."""
        inter, union = self.inter[self.class_ids].double(), self.union[self.class_ids].double()
        iou = inter / union.clamp(min=1)
        fg = float(inter.sum() / union.sum().clamp(min=1))
        bg = float(self.inter[0]) / max(float(self.union[0]), 1.0)
        return {"er": 100.0 * self.hits / self.episodes if self.episodes else 0.0,
                "miou": 100.0 * float(iou.mean()), "fbiou": 50.0 * (fg + bg),
                "iou": {int(c): 100.0 * float(v) for c, v in zip(self.class_ids, iou)},
                "episodes": self.episodes}
