"""Data loaders whose order depends only on (seed, epoch), never on the worker count."""
from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, Sampler

from util.data.dataset import build_dataset, collate_episodes
from util.data.fscs import FSCSDataset, collate_fscs
from util.errors import UserError
from util.engine.runtime import worker_init_fn


class EpochSampler(Sampler[int]):
    """Shuffles with seed + epoch (reseeded each epoch) and takes this rank's share.

    Every rank draws the same permutation and takes every world-th index from its rank on, so
    step t of a distributed run sees the episodes of step t of a single-process run with the
    same total batch. `limit` caps the number of indices per epoch (max_iters_per_epoch x
    batch) for short runs. `even` (training) drops the last total % world indices so every
    rank runs the same number of steps (DDP would hang on a rank with one step more);
    evaluation keeps every episode (ranks may differ by one; counts are summed at the end).
    """

    def __init__(self, n: int, seed: int, shuffle: bool, rank: int = 0, world: int = 1, limit: int = 0,
                 even: bool = False):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside a world of {world}")
        self.n, self.seed, self.shuffle, self.rank, self.world = n, seed, shuffle, rank, world
        self.limit, self.epoch, self.even, self.skip = limit, 0, even, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """`skip`: indices of this rank's share already consumed (resuming mid-epoch)."""
        self.epoch, self.skip = epoch, skip

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def _total(self) -> int:
        total = min(self.n, self.limit) if self.limit else self.n
        return total - total % self.world if self.even else total

    def __iter__(self):
        order = self._order()[: self._total()]
        return iter(order[self.rank:: self.world][self.skip:])

    def __len__(self) -> int:
        return max(math.ceil(max(self._total() - self.rank, 0) / self.world) - self.skip, 0)


def build_loader(cfg, mode: str, rank: int = 0, world: int = 1, test_seed: int | None = None) -> DataLoader:
    """Training loader (shuffled, full batches of batch_size / world per rank) or this rank's
    share of the fixed-episode evaluation loader."""
    train = mode == "train"
    if train and cfg.batch_size % world:
        raise UserError(f"batch_size {cfg.batch_size} is the total over {world} processes and must divide "
                        f"evenly: use a multiple of {world}, or another process count")
    if not train and test_seed is not None and test_seed != cfg.test_seed:
        cfg = cfg.replace(test_seed=test_seed)
    fscs = cfg.get("ifsl", False)  # FS-CS episodes (docs/fscs.md)
    dataset = FSCSDataset(cfg, mode) if fscs else build_dataset(cfg, mode)
    batch = max(cfg.batch_size // world, 1) if train else cfg.batch_size_val
    limit = cfg.max_iters_per_epoch * cfg.batch_size if train and cfg.max_iters_per_epoch else 0
    sampler = EpochSampler(len(dataset), cfg.manual_seed, shuffle=train, rank=rank, world=world, limit=limit,
                           even=train)
    return DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=cfg.num_workers,
                      collate_fn=collate_fscs if fscs else collate_episodes, drop_last=train, worker_init_fn=worker_init_fn,
                      pin_memory=False)
