"""Episodic few-shot dataset (docs/design.md §3.4): one query and K supports of one class per item.

Training items are a pure function of (seed, epoch, index) and test episodes are drawn once
from test_seed, so no result depends on the worker count, batch size or world size.
"""
from __future__ import annotations

import bisect
import logging
from typing import Callable

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from util.errors import UserError
from util.io.imagefile import imread
from util.data.benchmarks import Benchmark, get_benchmark
from util.data.index import ClassIndex, build_class_index
from util.data.transform import Compose, test_transform, train_transform

log = logging.getLogger(__name__)

Episode = tuple[int, int, tuple[int, ...]]  # (query position, class id, support positions)


def read_image(path: str) -> np.ndarray:
    """cv2 image -> float32 RGB [H, W, 3]; a missing or corrupt file is a user error."""
    image = imread(path, cv2.IMREAD_COLOR, "image")
    if image is None:
        raise UserError(f"image '{path}' is missing or not readable: check data_root and the list")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32)


def remap(label: np.ndarray, cls: int, ignore: int = 255) -> np.ndarray:
    """Chosen class -> 1, every other class -> 0, 255 -> ignore."""
    out = (label == cls).astype(np.uint8)
    out[label == 255] = ignore
    return out


def check_class_sizes(index: ClassIndex, classes: list[int], shot: int, benchmark: Benchmark, list_path: str) -> None:
    """Each class needs K supports besides its query; PFENet would loop forever instead."""
    for c in classes:
        n = len(index.by_class.get(c, []))
        if n < shot + 1:
            raise UserError(f"class {c} ({benchmark.class_name(c)}) has {n} images with enough pixels in "
                            f"{list_path}, but a {shot}-shot episode needs {shot + 1}: lower 'shot' or "
                            "'min_class_pixels', or check the list")


def draw_episode(index: ClassIndex, q: int, shot: int, rng: np.random.Generator) -> Episode:
    """Class uniform among the query's classes (any size), K distinct supports != query."""
    present = index.present[q]
    cls = present[int(rng.integers(len(present)))]
    return q, cls, pick_supports(index.by_class[cls], q, shot, rng)


def pick_supports(members: list[int], exclude: int, shot: int, rng: np.random.Generator) -> tuple[int, ...]:
    """`shot` distinct positions of `members` (ascending), never `exclude` (the query), without copying."""
    k = bisect.bisect_left(members, exclude)
    skip = int(k < len(members) and members[k] == exclude)
    picks = rng.choice(len(members) - skip, size=shot, replace=False)
    return tuple(members[int(j) + int(bool(skip) and j >= k)] for j in picks)


def draw_test_episodes(index: ClassIndex, n: int, shot: int, seed: int) -> list[Episode]:
    """Queries walk the list in order (as PFENet's unshuffled loader), classes/supports seeded."""
    rng = np.random.default_rng(seed)
    return [draw_episode(index, e % len(index.items), shot, rng) for e in range(n)]


def draw_balanced_episodes(index: ClassIndex, classes: list[int], n: int, shot: int, seed: int) -> list[Episode]:
    """Episode e tests class classes[e mod C]: query and K other supports drawn among its images."""
    rng = np.random.default_rng(seed)
    out = []
    for e in range(n):
        cls = classes[e % len(classes)]
        members = index.by_class[cls]
        picks = rng.choice(len(members), size=shot + 1, replace=False)
        out.append((members[int(picks[0])], cls, tuple(members[int(j)] for j in picks[1:])))
    return out


class EpisodeDataset(Dataset):
    """Episodes of a fold: mode 'train' (base classes) or 'val'/'test' (novel classes)."""

    def __init__(self, cfg, mode: str, *, num_episodes: int | None = None, seed: int | None = None,
                 transform: Compose | None = None, workers: int | None = None):
        if mode not in ("train", "val", "test"):
            raise ValueError(f"mode must be train, val or test, got '{mode}'")
        self.benchmark = bench = get_benchmark(cfg.dataset)
        if bench.ensure_data is not None:
            bench.ensure_data(cfg)
        self.mode, self.shot, self.ignore = mode, cfg.shot, cfg.ignore_label
        self.train = mode == "train"
        self.classes = bench.fold_classes(cfg, mode)
        list_path = cfg.train_list if self.train else cfg.val_list
        self.index = build_class_index(list_path, cfg.data_root, self.classes,
                                       num_classes=bench.num_classes, min_pixels=cfg.min_class_pixels,
                                       workers=workers, reader=bench.read_label)
        check_class_sizes(self.index, self.classes, cfg.shot, bench, list_path)
        self.transform = transform or (train_transform(cfg) if self.train else test_transform(cfg))
        self.seed, self.epoch = cfg.manual_seed, 0
        self.episodes: list[Episode] = []
        if not self.train:
            n = num_episodes or (cfg.val_num if mode == "val" and cfg.val_num else cfg.test_num)
            seed = cfg.test_seed if seed is None else seed
            self.episodes = (draw_balanced_episodes(self.index, self.classes, n, cfg.shot, seed)
                             if bench.protocol.balanced else draw_test_episodes(self.index, n, cfg.shot, seed))
        log.info("%s episodes: %d images of %s, classes %s, %d-shot", mode, len(self.index.items),
                 list_path, self.classes, cfg.shot)

    def set_epoch(self, epoch: int) -> None:
        """Training draws depend on (seed, epoch, index); call before each epoch's iterator."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index.items) if self.train else len(self.episodes)

    def _load(self, pos: int, cls: int, rng: np.random.Generator | None):
        return self._load_as(pos, lambda label: remap(label, cls, self.ignore), rng)

    def _load_as(self, pos: int, relabel: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator | None):
        """(image, label, relabelled raw label, image path) of list item `pos`, transformed."""
        img_path, lbl_path = self.index.items[pos]
        image, label = read_image(img_path), self.benchmark.read_label(lbl_path)
        if image.shape[:2] != label.shape:
            raise UserError(f"image '{img_path}' is {image.shape[1]}x{image.shape[0]} but label '{lbl_path}' "
                            f"is {label.shape[1]}x{label.shape[0]}: they must match; check the list pairs")
        label = relabel(label)
        image_t, label_t = self.transform(image, label, rng)
        return image_t, label_t, label, img_path

    def __getitem__(self, i: int) -> dict:
        if self.train:
            rng = np.random.default_rng([self.seed % 2**32, self.epoch, i])
            q, cls, sup = draw_episode(self.index, i, self.shot, rng)
        else:
            rng = None
            q, cls, sup = self.episodes[i]
        query, query_mask, raw, query_path = self._load(q, cls, rng)
        loaded = [self._load(s, cls, rng) for s in sup]
        item = {
            "query": query, "query_mask": query_mask,
            "supports": torch.stack([x[0] for x in loaded]), "support_masks": torch.stack([x[1] for x in loaded]),
            "class_idx": torch.tensor(self.classes.index(cls), dtype=torch.long), "class_id": cls,
            "query_path": query_path, "support_paths": [x[3] for x in loaded],
        }
        if not self.train:
            item["raw_mask"] = torch.from_numpy(raw.astype(np.int64))
        return item


def build_dataset(cfg, mode: str, **kwargs) -> EpisodeDataset:
    """The episodic dataset of `mode` ('train', 'val' or 'test') for this config."""
    return EpisodeDataset(cfg, mode, **kwargs)


LISTS = ("query_path", "support_paths", "raw_mask")


def collate_episodes(batch: list[dict]) -> dict:
    """Stack tensors over the batch; paths and raw masks (sizes differ) stay lists."""
    out = {k: [b[k] for b in batch] for k in LISTS if k in batch[0]}
    out["class_id"] = torch.tensor([b["class_id"] for b in batch], dtype=torch.long)
    for k in ("query", "query_mask", "supports", "support_masks", "class_idx"):
        out[k] = torch.stack([b[k] for b in batch])
    return out

