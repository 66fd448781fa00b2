"""The prior extractor's training data: the training list's images without their labels.

Each item is two augmented views of one image (util/data/views.py) and each view's patch map
(SLIC or Felzenszwalb patches of the whole image). Patches are computed once per image, on a copy
whose longer side is at most PATCH_SIDE pixels (patches are coarse: ~100 per image), and kept
by the loader worker (int16, at most 128 KiB an image); workers persist across epochs so the
cache does too, and the epoch reaches them inside the sample index. Only the first column of
the list is used: no label file is opened, so the prior extractor is trained on unlabeled
images, as the paper's self-supervised pre-training requires. Draws depend on (seed, epoch,
index) only.
"""
from __future__ import annotations

from typing import Callable, Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from util.data.dataset import read_image
from util.data.felzenszwalb import felzenszwalb
from util.data.index import parse_list
from util.data.loader import EpochSampler
from util.data.slic import slic
from util.data.views import augmented_view
from util.engine.runtime import worker_init_fn
from util.errors import UserError

PATCH_SIDE = 256


def patch_generator(cfg) -> Callable[[np.ndarray], np.ndarray]:
    """The config's patch method (`prior_patches`) as image -> patch ids."""
    if cfg.prior_patches == "slic":
        return lambda image: slic(image, cfg.prior_segments, cfg.prior_compactness)
    return lambda image: felzenszwalb(image, cfg.prior_felzenszwalb_scale)


class UnlabeledImages(Dataset):
    """Two views of every image of `train_list` (labels never read); item `epoch * len + i`."""

    def __init__(self, cfg):
        self.images = [image for image, _ in parse_list(cfg.train_list, cfg.data_root)]
        self.size, self.scale_min, self.seed = cfg.prior_crop, cfg.prior_crop_scale_min, cfg.manual_seed
        self.patches = patch_generator(cfg)
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.images)

    def patch_map(self, i: int, image: np.ndarray) -> np.ndarray:
        """Patch ids of image i at its full size (computed at most PATCH_SIDE wide, then cached)."""
        if i not in self._cache:
            h, w = image.shape[:2]
            f = min(1.0, PATCH_SIDE / max(h, w))
            small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
            self._cache[i] = self.patches(small).astype(np.int16)
        ids = self._cache[i]
        return cv2.resize(ids, image.shape[1::-1], interpolation=cv2.INTER_NEAREST) if ids.shape != image.shape[:2] else ids

    def __getitem__(self, item: int) -> dict:
        epoch, i = divmod(item, len(self.images))
        image = read_image(self.images[i])
        patches = self.patch_map(i, image)
        rng = np.random.default_rng([self.seed % 2**32, epoch, i])
        (v1, p1), (v2, p2) = (augmented_view(image, patches, self.size, rng, self.scale_min) for _ in range(2))
        return {"view1": v1, "view2": v2, "patches1": p1, "patches2": p2}


class EpochIndices(Sampler[int]):
    """An EpochSampler's indices as `epoch * n + i`: persistent workers learn the epoch from the index."""

    def __init__(self, sampler: EpochSampler, n: int):
        self.sampler, self.n = sampler, n

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        return (self.sampler.epoch * self.n + i for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def build_unlabeled_loader(cfg) -> DataLoader:
    """Shuffled full batches of `prior_batch_size` views, `prior_max_iters_per_epoch` steps at most."""
    data = UnlabeledImages(cfg)
    if len(data) < cfg.prior_batch_size:
        raise UserError(f"the training list {cfg.train_list} has {len(data)} images, fewer than one batch of "
                        f"prior_batch_size {cfg.prior_batch_size}: lower prior_batch_size")
    limit = cfg.prior_max_iters_per_epoch * cfg.prior_batch_size
    sampler = EpochIndices(EpochSampler(len(data), cfg.manual_seed, shuffle=True, limit=limit), len(data))
    return DataLoader(data, batch_size=cfg.prior_batch_size, sampler=sampler, drop_last=True,
                      num_workers=cfg.num_workers, worker_init_fn=worker_init_fn,
                      persistent_workers=cfg.num_workers > 0, collate_fn=_stack)


def _stack(batch: list[dict]) -> dict:
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}
