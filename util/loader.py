"""Data loaders whose order depends only on (seed, epoch), never on the worker count."""
from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, Sampler

from util.dataset import build_dataset, collate_episodes
from util.runtime import worker_init_fn


class EpochSampler(Sampler[int]):
    """Shuffles with seed + epoch (reseeded each epoch) and takes this rank's share.

    `limit` caps the number of indices per epoch (max_iters_per_epoch x batch) for short runs.
    """

    def __init__(self, n: int, seed: int, shuffle: bool, rank: int = 0, world: int = 1, limit: int = 0):
        self.n, self.seed, self.shuffle, self.rank, self.world = n, seed, shuffle, rank, world
        self.limit, self.epoch = limit, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self):
        order = self._order()
        if self.limit:
            order = order[: self.limit]
        return iter(order[self.rank:: self.world])

    def __len__(self) -> int:
        total = min(self.n, self.limit) if self.limit else self.n
        return math.ceil(max(total - self.rank, 0) / self.world)


def build_loader(cfg, mode: str, rank: int = 0, world: int = 1, test_seed: int | None = None) -> DataLoader:
    """Training loader (shuffled, full batches) or the fixed-episode evaluation loader."""
    train = mode == "train"
    if not train and test_seed is not None and test_seed != cfg.test_seed:
        cfg = type(cfg)(cfg)
        dict.__setitem__(cfg, "test_seed", test_seed)
    dataset = build_dataset(cfg, mode)
    batch = max(cfg.batch_size // world, 1) if train else cfg.batch_size_val
    limit = cfg.max_iters_per_epoch * cfg.batch_size if train and cfg.max_iters_per_epoch else 0
    sampler = EpochSampler(len(dataset), cfg.manual_seed, shuffle=train, rank=rank, world=world, limit=limit)
    return DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=cfg.num_workers,
                      collate_fn=collate_episodes, drop_last=train, worker_init_fn=worker_init_fn,
                      pin_memory=False)
