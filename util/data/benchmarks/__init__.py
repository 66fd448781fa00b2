"""Benchmark registry: one `Benchmark` per file of this package, looked up by the `dataset` key.

A benchmark says what a run needs to know about its data and nothing else: class names,
which classes each fold holds out (or that it has no folds), how its labels are stored,
how to read them, the command that prepares it and its published test protocol. Built-in
benchmarks are found by name (module `util.data.benchmarks.<name>` holding `BENCHMARK`);
others are added with `register()` (docs/design.md §2.1).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from model.registry import Registry
from util.data.index import read_label
from util.errors import UserError

CLASS_MAP = "class_map"  # one 8-bit PNG per image: 0 background, 1..C classes, 255 ignore
BINARY_MASKS = "binary_masks"  # one foreground mask per image; its class comes from the path
NUM_FOLDS = 4


@dataclass(frozen=True)
class Protocol:
    """The published test protocol: episodes per seed, seeds, test image size (longer side);
    `balanced`: episode e tests class e mod C (queries drawn within it), as the cross-domain
    benchmarks do, instead of queries walking the list; `min_class_pixels`: the pixels a class
    needs in an image for the image to be a query or support of it (PFENet's 2 x 32 x 32 on
    PASCAL-5i and COCO-20i; 0, any pixel, where the published loader takes every image of a
    class). A cross-domain test takes all of these from its target, whatever the training
    config says (util/data/cross_domain.py)."""

    episodes: int
    seeds: int
    image_size: int
    balanced: bool = False
    min_class_pixels: int = 2 * 32 * 32


@dataclass(frozen=True)
class Benchmark:
    """What the data side needs to know about one benchmark (class ids are 1-based).

    `folds(fold, style)` returns the novel (held-out) classes of a fold; None means the
    benchmark has no folds: every class is tested (and trained, where it has a training list).
    `read_label(path)` returns a uint8 class map (0 background, 255 ignore) of any label file.
    `ensure_data(cfg)`, when set, creates missing data before use (the toy generator).
    """

    name: str
    title: str
    class_names: tuple[str, ...]
    folds: Callable[[int, str], Sequence[int]] | None
    prepare: str
    protocol: Protocol
    label_format: str = CLASS_MAP
    fold_styles: tuple[str, ...] = ()
    read_label: Callable[[str], np.ndarray] = read_label
    ensure_data: Callable | None = field(default=None, compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def novel_classes(self, split: int, style: str = "") -> list[int]:
        """Classes held out in fold `split`."""
        if self.folds is None:
            return list(range(1, self.num_classes + 1))
        if split not in range(NUM_FOLDS):
            raise ValueError(f"split must be 0..{NUM_FOLDS - 1}, got {split}")
        if self.fold_styles and style not in self.fold_styles:
            raise ValueError(f"{self.name} fold style must be one of {', '.join(self.fold_styles)}, got '{style}'")
        return list(self.folds(split, style))

    def base_classes(self, split: int, style: str = "") -> list[int]:
        """Training classes of fold `split`: all classes but the novel ones (all, without folds)."""
        if self.folds is None:
            return list(range(1, self.num_classes + 1))
        novel = set(self.novel_classes(split, style))
        return [c for c in range(1, self.num_classes + 1) if c not in novel]

    def class_name(self, cls: int) -> str:
        """Real name of a 1-based class id."""
        return self.class_names[cls - 1]

    def fold_classes(self, cfg, mode: str) -> list[int]:
        """Class list of a mode: 'train' -> base classes, 'val'/'test' -> novel classes."""
        if mode == "train":
            return self.base_classes(cfg.split, cfg.coco_fold_style)
        source = cfg.get("_source")  # set by a cross-domain test (util/data/cross_domain.py)
        if not source or self.folds is None:
            return self.novel_classes(cfg.split, cfg.coco_fold_style)
        from util.data.class_names import cross_domain_classes
        return cross_domain_classes(self, get_benchmark(source), cfg.split, cfg.coco_fold_style)


@dataclass(frozen=True)
class FolderMasks:
    """Label reader for BINARY_MASKS benchmarks laid out as `<class name>/<file>` (FSS-1000
    style): the mask's foreground (>= 128, or 1 in a 0/1 mask) becomes the folder's class id,
    so such a benchmark runs through the same class index and episodes as a class-map one."""

    class_names: tuple[str, ...]

    def __call__(self, path: str) -> np.ndarray:
        mask = read_label(path)
        folder = os.path.basename(os.path.dirname(path))
        if folder not in self.class_names:
            raise UserError(f"mask '{path}' is in folder '{folder}', which is no class of this benchmark: "
                            "binary masks must sit in a folder named after their class")
        foreground = mask >= 128 if mask.max() > 1 else mask == 1
        return np.where(foreground, self.class_names.index(folder) + 1, 0).astype(np.uint8)


BENCHMARKS = Registry("benchmark", __name__, "BENCHMARK", "dataset")


def get_benchmark(name: str) -> Benchmark:
    """The benchmark the `dataset` key names (UserError listing the known ones otherwise)."""
    return BENCHMARKS.get(name)


def fold_classes(cfg, mode: str) -> list[int]:
    """Classes of `mode` ('train': base, 'val'/'test': novel) for this config's benchmark and fold."""
    return get_benchmark(cfg.dataset).fold_classes(cfg, mode)
