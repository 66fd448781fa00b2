"""Testing a checkpoint on another benchmark than the one it was trained on (docs/cross_domain.md).

`target_config` turns a run's config into the config of its test on `target`: the target's
benchmark, data and published protocol (episodes, seeds, test size, the class-pixel rule that
decides which images are queries and supports), whatever the training config says, with the
trained benchmark kept as `_source`. A target
with folds (COCO-20i -> PASCAL-5i) tests every class of the target that the source fold did
not train on, matched by name (util/data/class_names.py); a target without folds (the
cross-domain suites) is tested whole, as published.
"""
from __future__ import annotations

import logging
import os

from util.data.benchmarks import get_benchmark
from util.errors import UserError

log = logging.getLogger(__name__)

# where the targets are read from by default (the folders `python -m util.prepare` is shown with)
DEFAULT_DATA = {"pascal": ("data/VOCdevkit2012/VOC2012", "lists/pascal/val.txt"),
                "coco": ("data/coco", "lists/coco/val.txt")}


def target_protocol(cfg) -> dict:
    """The protocol values of the test on `cfg["target"]`: the target's published episodes, seeds,
    test size and class-pixel rule, episodes and size overridable by `target_episodes` /
    `target_size`. Takes a config or a results file's saved config (a plain mapping)."""
    proto = get_benchmark(cfg["target"]).protocol
    return {"test_num": cfg["target_episodes"] or proto.episodes, "seeds": proto.seeds,
            "val_size": cfg["target_size"] or proto.image_size, "min_class_pixels": proto.min_class_pixels}


def target_config(cfg):
    """The config of the test on `cfg.target` (cfg itself without a target)."""
    if not cfg.target or cfg.target == cfg.dataset:
        return cfg
    bench = get_benchmark(cfg.target)
    root, lst = DEFAULT_DATA.get(bench.name, (f"data/{bench.name}", f"lists/{bench.name}/test.txt"))
    out = cfg.replace(dataset=bench.name, data_root=cfg.target_root or root, val_list=cfg.target_list or lst,
                      **target_protocol(cfg))
    dict.__setitem__(out, "_source", cfg.dataset)
    log.info("cross-domain test: %s model on %s (%s, %s): %d episodes x %d seed(s), %d px, classes of >= %d "
             "pixels", cfg.dataset, bench.title, out.data_root, out.val_list, out.test_num, out.seeds,
             out.val_size, max(out.min_class_pixels, 1))
    return out


def check_target_data(cfg, out) -> None:
    """Before a cross-domain test (`out` = target_config(cfg)): a missing target folder or list
    named by the key the user sets for it (`target_root`, `target_list`), with the command that
    prepares it and the page that explains it. A target generated on first use is left to that."""
    bench = get_benchmark(out.dataset)
    if out is cfg or bench.ensure_data is not None:
        return
    for key, path, is_there in (("target_root", out.data_root, os.path.isdir),
                                ("target_list", out.val_list, os.path.isfile)):
        if not is_there(path):
            how = f"`{key}`, set by you" if cfg.get(key) else f"the default of `{key}`"
            raise UserError(f"{cfg.target} data not found: {path} ({how}) does not exist: prepare it with "
                            f"`{bench.prepare}`, or set {key} to where it is (docs/cross_domain.md)")


def results_name(cfg) -> str:
    """results_shot<K> (the trained benchmark) or results_shot<K>_<target>; a BAM model tested on
    another output than its final one (`bam_output meta` / `base`) adds it, so it keeps the
    final prediction's results."""
    target = cfg.target if cfg.target and cfg.target != cfg.dataset else ""
    output = cfg.get("bam_output", "final") if cfg.get("model") == "bam" else "final"
    return (f"results_shot{cfg.shot}" + (f"_{target}" if target else "")
            + (f"_{output}" if output != "final" else ""))
