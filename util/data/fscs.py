"""Integrative few-shot classification and segmentation (FS-CS) episodes (docs/fscs.md).

An N-way K-shot FS-CS episode has K supports for each of N distinct classes and one query that
may contain any subset of them, the empty subset included. As in the iFSL release, the query's
own class (one of its classes, uniformly) joins the support classes with probability 1/2 and
every other class of the fold shares the other half, so some episodes ask for classes the query
does not show. The query label is a map over N+1 classes: 0 background (and every class that
is not a support class), n for way n (1-based), `ignore` kept. Training episodes are 1-way;
test episodes are drawn once from a seed, so they are the same for any worker count.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from util.data.benchmarks import Benchmark
from util.data.dataset import EpisodeDataset, pick_supports
from util.data.index import ClassIndex
from util.errors import UserError

log = logging.getLogger(__name__)

# (query position, its class, support classes in way order, supports per way)
FSCSEpisode = tuple[int, int, tuple[int, ...], tuple[tuple[int, ...], ...]]
MAX_WAY = 5


def check_way(way: int, classes: list[int], benchmark: Benchmark, mode: str) -> None:
    """An N-way episode needs N distinct classes in the fold's `mode` class list."""
    if way < 1:
        raise UserError(f"way must be >= 1, got {way}")
    if way > len(classes):
        raise UserError(f"{way}-way episodes need {way} classes, but {benchmark.name} {mode} has "
                        f"{len(classes)} ({', '.join(benchmark.class_name(c) for c in classes)}): "
                        f"set way to at most {len(classes)}")


def support_class_probabilities(classes: list[int], query_class: int) -> np.ndarray:
    """iFSL's draw: the query's class with probability 1/2, the others share the other 1/2."""
    if len(classes) == 1:
        return np.ones(1)
    p = np.full(len(classes), 0.5 / (len(classes) - 1))
    p[classes.index(query_class)] = 0.5
    return p


def draw_fscs_episode(index: ClassIndex, classes: list[int], q: int, way: int, shot: int,
                      rng: np.random.Generator) -> FSCSEpisode:
    """Query q, its class uniform among its classes; N distinct support classes (iFSL's draw)."""
    present = [c for c in index.present[q] if c in index.by_class]
    query_class = present[int(rng.integers(len(present)))]
    p = support_class_probabilities(classes, query_class)
    ways = tuple(int(c) for c in rng.choice(classes, size=way, replace=False, p=p))
    supports = tuple(pick_supports(index.by_class[c], q, shot, rng) for c in ways)
    return q, query_class, ways, supports


def draw_fscs_test_episodes(index: ClassIndex, classes: list[int], n: int, way: int, shot: int,
                            seed: int) -> list[FSCSEpisode]:
    """Queries walk the list in order; classes and supports come from one seeded generator."""
    rng = np.random.default_rng(seed)
    queries = [i for i, present in enumerate(index.present) if any(c in index.by_class for c in present)]
    return [draw_fscs_episode(index, classes, queries[e % len(queries)], way, shot, rng) for e in range(n)]


def episode_label(label: np.ndarray, ways: tuple[int, ...], ignore: int = 255, *,
                  boundary_as_background: bool = False) -> np.ndarray:
    """Class map -> FS-CS query label: way n's class -> n (1-based), other classes -> 0; the
    label's 255 pixels stay `ignore`, or become background 0 with `boundary_as_background`,
    which is how the iFSL release scores them (its dataset turns 255 into a 0/1 flag beside a
    background label, and its meter compares the flag with 255, which never matches)."""
    out = np.zeros_like(label, dtype=np.uint8)
    for n, c in enumerate(ways, 1):
        out[label == c] = n
    out[label == 255] = 0 if boundary_as_background else ignore
    return out


def presence(label: np.ndarray | torch.Tensor, way: int) -> torch.Tensor:
    """Class tags [N] (bool) of an FS-CS label: which ways show at least one pixel."""
    return torch.tensor([bool((label == n).any()) for n in range(1, way + 1)], dtype=torch.bool)


class FSCSDataset(EpisodeDataset):
    """FS-CS episodes of a fold. Items: query [3,H,W], query_mask [H,W] over N+1 classes,
    supports [N,K,3,H,W], support_masks [N,K,H,W] (0/1/ignore per way), presence [N],
    support_classes [N]; test items add raw_mask (the N+1 map at the original size)."""

    def __init__(self, cfg, mode: str, *, way: int | None = None, num_episodes: int | None = None,
                 seed: int | None = None, **kwargs):
        super().__init__(cfg, mode, num_episodes=num_episodes, seed=seed, **kwargs)
        self.way = 1 if self.train else (cfg.way if way is None else way)
        # scoring of the label's 255 pixels (docs/fscs.md, Metrics); training keeps them ignored
        self.boundary_as_background = not self.train and cfg.fscs_boundary == "background"
        check_way(self.way, self.classes, self.benchmark, mode)
        if not self.train:  # as many as the binary protocol draws, from the same seed
            seed = cfg.test_seed if seed is None else seed
            self.fscs_episodes = draw_fscs_test_episodes(self.index, self.classes, len(self.episodes),
                                                         self.way, self.shot, seed)
        log.info("FS-CS %s: %d-way %d-shot", mode, self.way, self.shot)

    def __len__(self) -> int:
        return len(self.index.items) if self.train else len(self.fscs_episodes)

    def __getitem__(self, i: int) -> dict:
        if self.train:
            rng = np.random.default_rng([self.seed % 2**32, self.epoch, i])
            q, query_class, ways, sup = draw_fscs_episode(self.index, self.classes, i, self.way, self.shot, rng)
        else:
            rng = None
            q, query_class, ways, sup = self.fscs_episodes[i]
        query, query_mask, raw, query_path = self._load_as(
            q, lambda label: episode_label(label, ways, self.ignore, boundary_as_background=self.boundary_as_background),
            rng)
        loaded = [[self._load(s, c, rng) for s in shots] for c, shots in zip(ways, sup)]
        item = {
            "query": query, "query_mask": query_mask,
            "supports": torch.stack([torch.stack([x[0] for x in w]) for w in loaded]),
            "support_masks": torch.stack([torch.stack([x[1] for x in w]) for w in loaded]),
            # tags of what the model sees: the training crop may cut a class out of the query
            "presence": presence(query_mask if self.train else raw, len(ways)),
            "support_classes": torch.tensor(ways, dtype=torch.long),
            "class_idx": torch.tensor([self.classes.index(c) for c in ways], dtype=torch.long),
            "class_id": query_class, "query_path": query_path,
            "support_paths": [x[3] for w in loaded for x in w],
        }
        if not self.train:
            item["raw_mask"] = torch.from_numpy(raw.astype(np.int64))
        return item


def collate_fscs(batch: list[dict]) -> dict:
    """Stack tensors over the batch; paths and raw masks (sizes differ) stay lists."""
    out = {k: [b[k] for b in batch] for k in ("query_path", "support_paths", "raw_mask") if k in batch[0]}
    out["class_id"] = torch.tensor([b["class_id"] for b in batch], dtype=torch.long)
    for k in ("query", "query_mask", "supports", "support_masks", "presence", "support_classes", "class_idx"):
        out[k] = torch.stack([b[k] for b in batch])
    return out
