"""The one evaluator of the project (docs/design.md §5), used by train.py's validation and test.py.

Protocol (PFENet test.py with `ori_resize`, docs/design.md §3.5): the network sees the query resized
so its longer side is val_size, placed top-left on a val_size square. Its logits [2, S, S]
are resized bilinearly (align_corners=True, as PFENet) to an L x L square, L = the raw
label's longer side; the raw label is padded bottom/right with 255 to that square; the
argmax is scored against it. The padding is 255, so only real label pixels count.
Without `ori_resize` the argmax is scored at the network's size against the label as
transformed by the test `Resize` (passed as `masks`).

State is one int64 tensor [C, 5] (per class: fg tp, fp, fn, tn, episodes), so batches,
episodes and distributed ranks all combine by addition, and every metric is a ratio of sums.
Reported values are percentages (0-100), as in the paper.
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from util.evaluation import metrics
from util.data.benchmarks import fold_classes, get_benchmark

log = logging.getLogger(__name__)
EPISODES = 4  # column of the episode count in the counts tensor


def pad_to_square(label: torch.Tensor, ignore: int = 255) -> torch.Tensor:
    """Pad a [H, W] label bottom/right with `ignore` to [L, L], L = max(H, W).

    The test image was placed top-left on its padded square, so the label's square has the
    same geometry and the network output can be resized onto it.
    """
    h, w = label.shape
    side = max(h, w)
    out = torch.full((side, side), ignore, dtype=label.dtype, device=label.device)
    out[:h, :w] = label
    return out


def score_at_original(logits: torch.Tensor, raw_mask: torch.Tensor, ignore: int = 255) -> torch.Tensor:
    """Confusion counts [4] of one episode under the ori_resize protocol.

    logits: [2, S, S] at the test input size; raw_mask: [H, W] remapped to 0/1/ignore.
    """
    target = pad_to_square(raw_mask.to(logits.device).long(), ignore)
    side = target.shape[-1]
    up = F.interpolate(logits[None].float(), size=(side, side), mode="bilinear", align_corners=True)
    pred = up.argmax(dim=1)[0]  # [L, L]
    return metrics.confusion_counts(pred, target, ignore)


class Evaluator:
    """Accumulates per-class foreground confusion counts over test episodes.

    class_ids: the fold's novel classes (1-based real ids); `class_idx` given to update()
    indexes this list, as the datasets return it.
    """

    def __init__(self, class_ids: Sequence[int], dataset: str, ignore_label: int = 255,
                 ori_resize: bool = True) -> None:
        if not class_ids:
            raise ValueError("Evaluator needs at least one class id")
        self.class_ids = [int(c) for c in class_ids]
        self.dataset = dataset
        bench = get_benchmark(dataset)
        self.names = [bench.class_name(c) for c in self.class_ids]
        self.ignore_label = int(ignore_label)
        self.ori_resize = bool(ori_resize)
        self._counts = torch.zeros(len(self.class_ids), 5, dtype=torch.int64)

    @classmethod
    def from_config(cls, cfg: Any) -> "Evaluator":
        """Evaluator over the novel classes of cfg's fold, with cfg's protocol."""
        return cls(fold_classes(cfg, "val"), cfg.dataset, cfg.ignore_label, cfg.ori_resize)

    def reset(self) -> None:
        """Forget all episodes (e.g. before each validation pass)."""
        self._counts.zero_()

    @torch.no_grad()
    def update(self, logits: torch.Tensor, raw_masks: Sequence[torch.Tensor] | None,
               class_idx: torch.Tensor, masks: torch.Tensor | None = None) -> None:
        """Add a batch of episodes.

        logits: [B, 2, S, S] network output at the test input size.
        raw_masks: B label tensors [Hi, Wi] at original resolution, values 0/1/255
            (needed with ori_resize; may be None otherwise).
        class_idx: [B] long, index of each episode's class in `class_ids`.
        masks: [B, S, S] transformed labels (needed only without ori_resize).
        """
        if logits.dim() != 4 or logits.shape[1] != 2:
            raise ValueError(f"logits must be [B, 2, H, W], got {tuple(logits.shape)}")
        idx = torch.as_tensor(class_idx).reshape(-1).long().cpu()
        if idx.numel() != logits.shape[0]:
            raise ValueError(f"class_idx has {idx.numel()} entries for a batch of {logits.shape[0]}")
        if idx.numel() and (idx.min() < 0 or idx.max() >= len(self.class_ids)):
            raise ValueError(f"class_idx {idx.tolist()} out of range for {len(self.class_ids)} classes")
        per_episode = self._episode_counts(logits, raw_masks, masks).cpu()  # [B, 4]
        ones = torch.ones(len(idx), 1, dtype=torch.int64)
        self._counts.index_add_(0, idx, torch.cat([per_episode, ones], dim=1))

    def _episode_counts(self, logits: torch.Tensor, raw_masks: Sequence[torch.Tensor] | None,
                        masks: torch.Tensor | None) -> torch.Tensor:
        """Confusion counts [B, 4], one row per episode."""
        if self.ori_resize:
            if raw_masks is None or len(raw_masks) != logits.shape[0]:
                raise ValueError("ori_resize scoring needs one raw mask per episode")
            for m in raw_masks:
                self._check_labels(m)
            rows = [score_at_original(lg, m, self.ignore_label) for lg, m in zip(logits, raw_masks)]
            return torch.stack(rows)
        if masks is None or masks.shape != (logits.shape[0], *logits.shape[2:]):
            raise ValueError(f"without ori_resize, masks [B, H, W] matching logits {tuple(logits.shape)} "
                             "are needed")
        self._check_labels(masks)
        pred = logits.argmax(dim=1)  # [B, S, S]
        return metrics.confusion_counts(pred, masks.to(pred.device).long(), self.ignore_label)

    def _check_labels(self, label: torch.Tensor) -> None:
        """Labels must already be remapped to 0/1/ignore: anything else is a pipeline bug."""
        bad = (label != 0) & (label != 1) & (label != self.ignore_label)
        if bool(bad.any()):
            vals = sorted(set(label[bad].unique().tolist()))[:5]
            raise ValueError(f"labels must be 0/1/{self.ignore_label} after remapping; found {vals}")

    # --- combining ------------------------------------------------------------------
    def counts(self) -> torch.Tensor:
        """A copy of the accumulated int64 counts [C, 5] (tp, fp, fn, tn, episodes):
        all-reduce (sum) this across ranks, then `set_counts` the result."""
        return self._counts.clone()

    def add_counts(self, counts: torch.Tensor) -> None:
        """Add counts from another evaluator over the same classes (another rank/batch)."""
        counts = torch.as_tensor(counts)
        if counts.shape != self._counts.shape:
            raise ValueError(f"counts of shape {tuple(counts.shape)} do not match {tuple(self._counts.shape)}")
        if counts.is_floating_point():
            counts = counts.round()
        self._counts += counts.cpu().to(torch.int64)

    def set_counts(self, counts: torch.Tensor) -> None:
        """Replace the counts (e.g. with the all-reduced sum over ranks)."""
        self._counts.zero_()
        self.add_counts(counts)

    def merge(self, other: "Evaluator") -> None:
        """Add another evaluator's episodes; it must evaluate the same classes the same way."""
        if (other.class_ids, other.dataset, other.ori_resize) != (self.class_ids, self.dataset, self.ori_resize):
            raise ValueError("cannot merge evaluators over different classes, datasets or protocols")
        self.add_counts(other._counts)

    def state(self) -> dict:
        """JSON-serialisable state: enough to rebuild the evaluator and recompute metrics."""
        return {"dataset": self.dataset, "class_ids": list(self.class_ids),
                "ignore_label": self.ignore_label, "ori_resize": self.ori_resize,
                "counts": self._counts.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> "Evaluator":
        """Inverse of state()."""
        ev = cls(state["class_ids"], state["dataset"], state["ignore_label"], state["ori_resize"])
        ev.set_counts(torch.tensor(state["counts"], dtype=torch.int64))
        return ev

    # --- metrics --------------------------------------------------------------------
    def compute(self) -> dict:
        """Metrics in percent (see the module docstring and docs/evaluation.md)."""
        per_class = [self._class_entry(i) for i in range(len(self.class_ids))]
        sampled = [e["iou"] for e in per_class if e["episodes"] > 0]
        missing = [f"{e['id']} {e['name']}" for e in per_class if e["episodes"] == 0]
        if missing:
            log.warning("no episode of class(es) %s: excluded from the class mIoU", ", ".join(missing))
        total = self._counts.sum(dim=0)
        episodes = int(total[EPISODES])
        fg, bg = 100 * metrics.iou_fg(total), 100 * metrics.iou_bg(total)
        return {
            "miou": sum(sampled) / len(sampled) if sampled else None,
            "fbiou": (fg + bg) / 2 if episodes else None,
            "precision": 100 * metrics.precision_fg(total) if episodes else None,
            "fg_iou": fg if episodes else None,
            "bg_iou": bg if episodes else None,
            "episodes": episodes,
            "per_class": per_class,
        }

    def _class_entry(self, i: int) -> dict:
        row = self._counts[i]
        eps = int(row[EPISODES])
        iou = 100 * metrics.iou_fg(row) if eps else None
        return {"id": self.class_ids[i], "name": self.names[i], "iou": iou, "episodes": eps}
