"""Stage-1 data of BAM: every image of a list with its label remapped to the fold's base classes.

Base class c becomes its 1-based position among the fold's base classes, every other class
(the novel ones) becomes background 0, ignore stays ignore: the base learner never sees a
novel-class label (the released code does the same). Training items are a pure function of
(seed, epoch, index), like the episodes (docs/design.md §3.4).
"""
from __future__ import annotations

import logging

import numpy as np
from torch.utils.data import DataLoader, Dataset

from util.data.benchmarks import get_benchmark
from util.data.dataset import read_image
from util.data.index import parse_list
from util.data.loader import EpochSampler
from util.data.transform import test_transform, train_transform
from util.engine.runtime import worker_init_fn
from util.errors import UserError

log = logging.getLogger(__name__)


def base_label(label: np.ndarray, base_classes: list[int], ignore: int = 255) -> np.ndarray:
    """uint8 class map -> base-class indices 1..Nb, novel classes 0, 255 -> ignore."""
    lut = np.zeros(256, dtype=np.uint8)
    lut[np.asarray(base_classes)] = np.arange(1, len(base_classes) + 1)
    lut[255] = ignore
    return lut[label]


class BaseClassDataset(Dataset):
    """Images of train_list (mode 'train') or val_list ('val') with base-class labels."""

    def __init__(self, cfg, mode: str) -> None:
        if mode not in ("train", "val"):
            raise ValueError(f"mode must be train or val, got '{mode}'")
        self.bench = bench = get_benchmark(cfg.dataset)
        if bench.ensure_data is not None:
            bench.ensure_data(cfg)
        self.base_classes = bench.base_classes(cfg.split, cfg.coco_fold_style)
        self.train, self.ignore, self.seed, self.epoch = mode == "train", cfg.ignore_label, cfg.manual_seed, 0
        list_path = cfg.train_list if self.train else cfg.val_list
        self.items = parse_list(list_path, cfg.data_root)
        if not self.items:
            raise UserError(f"{list_path} lists no image: check the list")
        self.transform = train_transform(cfg) if self.train else test_transform(cfg)
        log.info("stage-1 %s: %d images of %s, base classes %s", mode, len(self.items), list_path, self.base_classes)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        img_path, lbl_path = self.items[i]
        image, label = read_image(img_path), self.bench.read_label(lbl_path)
        if image.shape[:2] != label.shape:
            raise UserError(f"image '{img_path}' and label '{lbl_path}' differ in size: check the list pairs")
        rng = np.random.default_rng([self.seed % 2**32, self.epoch, i]) if self.train else None
        image, label = self.transform(image, base_label(label, self.base_classes, self.ignore), rng)
        return {"image": image, "label": label.long()}


def base_loader(cfg, mode: str) -> DataLoader:
    """Shuffled full batches (train, seed + epoch order) or the first val_num images of the
    validation list in order (0: all of them)."""
    ds = BaseClassDataset(cfg, mode)
    train = mode == "train"
    limit = (cfg.max_iters_per_epoch * cfg.batch_size if cfg.max_iters_per_epoch else 0) if train else cfg.val_num
    sampler = EpochSampler(len(ds), cfg.manual_seed, shuffle=train, limit=limit, even=train)
    return DataLoader(ds, batch_size=cfg.batch_size if train else cfg.batch_size_val, sampler=sampler,
                      num_workers=cfg.num_workers, drop_last=train, worker_init_fn=worker_init_fn)
