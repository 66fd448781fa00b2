"""Generalized few-shot segmentation episodes (BAM, Sec. 4 and its released test protocol).

Every query is segmented into background, each base class and the episode's novel class at
once. Queries walk the validation list in order; the episode's novel class is one of the
query's own novel classes when it shows no base class, otherwise any novel class of the fold
(so many episodes ask for a class that is absent, which scores false positives). Labels:
base class -> 1..Nb (its position among the base classes), the episode's novel class -> its
slot Nb + 1 + (position among the novel classes), other novel classes -> background. Episodes
are drawn once from test_seed, like the standard ones (docs/design.md §3.4).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from util.data.benchmarks import get_benchmark
from util.data.dataset import check_class_sizes, read_image, remap
from util.data.index import build_class_index
from util.data.transform import test_transform

GEpisode = tuple[int, int, tuple[int, ...]]  # (query position, novel class id, support positions)


def gfss_label(label: np.ndarray, base: list[int], novel: list[int], chosen: int, ignore: int = 255) -> np.ndarray:
    """uint8 class map -> 0 background, 1..Nb base classes, Nb+1+novel.index(chosen) for the chosen class."""
    lut = np.zeros(256, dtype=np.int64)
    lut[np.asarray(base)] = np.arange(1, len(base) + 1)
    lut[chosen] = 1 + len(base) + novel.index(chosen)
    lut[255] = ignore
    return lut[label]


def choose_class(present: list[int], base: set[int], novel: list[int], rng: np.random.Generator) -> int:
    """One of the query's novel classes if it shows no base class, else any novel class."""
    own = [c for c in present if c in novel]
    pool = own if own and not any(c in base for c in present) else novel
    return pool[int(rng.integers(len(pool)))]


class GFSSDataset(Dataset):
    def __init__(self, cfg, num_episodes: int | None = None, seed: int | None = None) -> None:
        self.bench = bench = get_benchmark(cfg.dataset)
        if bench.ensure_data is not None:
            bench.ensure_data(cfg)
        self.base = bench.base_classes(cfg.split, cfg.coco_fold_style)
        self.novel = bench.novel_classes(cfg.split, cfg.coco_fold_style)
        self.ignore = cfg.ignore_label
        self.index = build_class_index(cfg.val_list, cfg.data_root, range(1, bench.num_classes + 1),
                                       num_classes=bench.num_classes, min_pixels=cfg.min_class_pixels,
                                       reader=bench.read_label)
        check_class_sizes(self.index, self.novel, cfg.shot, bench, cfg.val_list)
        self.transform = test_transform(cfg)
        rng = np.random.default_rng(cfg.test_seed if seed is None else seed)
        base_set, n = set(self.base), num_episodes or cfg.test_num
        self.episodes: list[GEpisode] = []
        for e in range(n):
            q = e % len(self.index.items)
            cls = choose_class(self.index.present[q], base_set, self.novel, rng)
            members = [p for p in self.index.by_class[cls] if p != q]
            picks = rng.choice(len(members), size=cfg.shot, replace=False)
            self.episodes.append((q, cls, tuple(members[int(j)] for j in picks)))

    def __len__(self) -> int:
        return len(self.episodes)

    def _read(self, pos: int):
        img_path, lbl_path = self.index.items[pos]
        return read_image(img_path), self.bench.read_label(lbl_path)

    def __getitem__(self, i: int) -> dict:
        q, cls, sup = self.episodes[i]
        image, label = self._read(q)
        target = gfss_label(label, self.base, self.novel, cls, self.ignore)
        query, _ = self.transform(image, label)
        shots = [self.transform(img, remap(lbl, cls, self.ignore)) for img, lbl in map(self._read, sup)]
        return {"query": query, "supports": torch.stack([s[0] for s in shots]),
                "support_masks": torch.stack([s[1] for s in shots]),
                "target": torch.from_numpy(target), "slot": 1 + len(self.base) + self.novel.index(cls)}


def _single(items: list[dict]) -> dict:
    return items[0]


def gfss_loader(cfg) -> DataLoader:
    """One episode per batch (targets keep their original sizes), in order."""
    return DataLoader(GFSSDataset(cfg), batch_size=1, shuffle=False, num_workers=cfg.num_workers,
                      collate_fn=_single)
