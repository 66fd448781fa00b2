"""Testing a checkpoint on another benchmark than the one it was trained on (docs/cross_domain.md).

`target_config` turns a run's config into the config of its test on `target`: the target's
benchmark, data and episode count, with the trained benchmark kept as `_source`. A target
with folds (COCO-20i -> PASCAL-5i) tests every class of the target that the source fold did
not train on, matched by name through the one COCO <-> PASCAL map below (so COCO fold i
tests the PASCAL classes among its novel classes); a target without folds (the cross-domain
suites) is tested whole, as published.
"""
from __future__ import annotations

import logging
from typing import Sequence

from util.errors import UserError

log = logging.getLogger(__name__)

# PASCAL VOC class name -> the COCO name of the same class (the other 14 are spelled alike)
PASCAL_TO_COCO = {"aeroplane": "airplane", "diningtable": "dining table", "motorbike": "motorcycle",
                  "pottedplant": "potted plant", "sofa": "couch", "tvmonitor": "tv"}
# where the targets are read from by default (the folders `python -m util.prepare` is shown with)
DEFAULT_DATA = {"pascal": ("data/VOCdevkit2012/VOC2012", "lists/pascal/val.txt"),
                "coco": ("data/coco", "lists/coco/val.txt")}


def common_name(name: str) -> str:
    """One spelling per class over COCO and PASCAL (COCO's)."""
    return PASCAL_TO_COCO.get(name, name)


def unseen_classes(target, classes: Sequence[int], source, split: int, style: str) -> list[int]:
    """`classes` of `target` whose class the `source` benchmark did not train on in fold `split`."""
    seen = {common_name(source.class_name(c)) for c in source.base_classes(split, style)}
    return [c for c in classes if common_name(target.class_name(c)) not in seen]


def evaluated_classes(bench, cfg, novel: list[int]) -> list[int]:
    """The evaluated classes: the fold's novel ones, or in a cross-domain test (`cfg._source`
    set) on a target with folds, every target class the source fold did not train on."""
    from util.data.benchmarks import get_benchmark
    source = cfg.get("_source")
    if not source or bench.folds is None:
        return novel
    every = list(range(1, bench.num_classes + 1))
    kept = unseen_classes(bench, every, get_benchmark(source), cfg.split, cfg.coco_fold_style)
    if not kept:
        raise UserError(f"every class of {bench.name} was a training class of {source} fold {cfg.split}: "
                        "no class is left to test; pick another fold or target")
    return kept


def target_config(cfg):
    """The config of the test on `cfg.target` (cfg itself without a target)."""
    from util.data.benchmarks import get_benchmark
    if not cfg.target or cfg.target == cfg.dataset:
        return cfg
    bench = get_benchmark(cfg.target)
    root, lst = DEFAULT_DATA.get(bench.name, (f"data/{bench.name}", f"lists/{bench.name}/test.txt"))
    out = cfg.replace(dataset=bench.name, data_root=cfg.target_root or root, val_list=cfg.target_list or lst,
                      test_num=cfg.target_episodes or bench.protocol.episodes)
    dict.__setitem__(out, "_source", cfg.dataset)
    log.info("cross-domain test: %s model on %s (%s, %s)", cfg.dataset, bench.title, out.data_root, out.val_list)
    return out


def results_name(cfg) -> str:
    """results_shot<K> (the trained benchmark) or results_shot<K>_<target>."""
    target = cfg.target if cfg.target and cfg.target != cfg.dataset else ""
    return f"results_shot{cfg.shot}" + (f"_{target}" if target else "")
