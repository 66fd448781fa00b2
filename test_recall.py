"""Recall of the guided and prior region maps against the query mask (QGNet's Table VII, eq. 16).

    python test_recall.py --config config/pascal/pascal_split0_resnet50_qgnet.yaml [weight FILE] [key value ...]

Loads the checkpoint as test.py does (without `weight`: exp/<dataset>/<exp>/model/best.pth, else
last.pth), runs the same fixed test episodes (every seed of `seeds`, pooled) and writes
recall_shot<K>.json / .md next to the checkpoint: Recall_g,gt (the guided region map, PFENet's prior
mask from the support) and Recall_p,gt (the query's prior region map) in percent at thresholds
0.1-0.9, at the resolution test.py scores at. Needs a model with the prior region map
(`model qgnet`, or `qgnet_prior true` on pfenet / ntrenet).
"""
from __future__ import annotations

if __name__ == "__main__":  # --help and argument mistakes answer before torch loads (well under a second)
    from util.engine.runtime import answer_early

    answer_early(__doc__)

import logging
import os

import torch

from test import find_weight, load_trained, note_protocol, write_record
from util.config import Config, load_config
from util.data.cross_domain import results_name, target_config
from util.data.loader import build_loader
from util.engine.precision import Precision
from util.engine.progress import progress
from util.engine.provenance import refuse_silent_replace
from util.engine.runtime import config_args, resolve_device, run_cli, seed_everything, setup_logging
from util.errors import UserError
from util.evaluation.recall import THRESHOLDS, RegionRecall, at_scoring_size

log = logging.getLogger("test_recall")
MAPS = (("prior", "guided", "Recall_g,gt (guided region map)"),
        ("region", "prior", "Recall_p,gt (prior region map)"))  # (predict_maps key, JSON key, row name)


def check_has_region_map(cfg: Config) -> None:
    """Recall needs both region maps: the prior one exists only with `qgnet_prior`."""
    if cfg.ifsl:
        raise UserError("test_recall.py scores one-way episodes; this config has `ifsl true`: set `ifsl false`")
    if not cfg.get("qgnet_prior"):
        raise UserError(f"`model {cfg.model}` has no prior region map to score (`qgnet_prior` is off): use a "
                        "`model qgnet` config, or add `qgnet_prior true` for a checkpoint trained with it")


@torch.no_grad()
def run_recall(cfg: Config, net: torch.nn.Module, precision: Precision) -> dict[str, RegionRecall]:
    """Pooled recall counts of both region maps over every seed's fixed test episodes."""
    net.eval()
    out = {name: RegionRecall(THRESHOLDS, cfg.ignore_label) for _, name, _ in MAPS}
    for i in range(cfg.seeds):
        loader = build_loader(cfg, "test", test_seed=cfg.test_seed + i)
        for batch in progress(loader, f"recall seed {i + 1}/{cfg.seeds}"):
            b = precision.to_device(batch)
            with precision.autocast():
                maps = net.predict_maps(b["query"], b["supports"], b["support_masks"])
            for key, name, _ in MAPS:
                for j, region in enumerate(maps[key][:, 0].float()):
                    if cfg.ori_resize:
                        out[name].update(*at_scoring_size(region, batch["raw_mask"][j], cfg.ignore_label))
                    else:
                        out[name].update(region, b["query_mask"][j])
    return out


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f}"


def markdown(cfg: Config, weight: str, rec: dict[str, RegionRecall]) -> str:
    first = next(iter(rec.values()))
    head = (f"# Region-map recall, {cfg.dataset} fold {cfg.split}, {cfg.backbone}, {cfg.shot}-shot\n\n"
            f"checkpoint `{weight}`, {first.episodes} episodes, {first.gt_pixels} foreground pixels; "
            "Recall = |{V > threshold} ∩ GT| / |GT| in %, pixel counts pooled over the episodes\n\n"
            "| threshold | " + " | ".join(f"{t:g}" for t in THRESHOLDS) + " |\n|---|" + "---|" * len(THRESHOLDS))
    rows = [f"| {label} | " + " | ".join(fmt(v) for v in rec[name].recall()) + " |" for _, name, label in MAPS]
    return head + "\n" + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = config_args(argv, __doc__)
    cfg = load_config(args.config, args.opts)
    check_has_region_map(cfg)
    weight = find_weight(cfg)
    device = resolve_device(cfg.device)
    precision = Precision.from_config(cfg, device)
    stem = os.path.join(os.path.dirname(os.path.abspath(weight)), results_name(cfg).replace("results_", "recall_", 1))
    refuse_silent_replace(stem, cfg, precision.name)  # another protocol's recall is replaced only with `overwrite true`
    setup_logging(stem + ".log", notes=cfg.get("_notes", ()), first=precision.log_lines())
    seed_everything(cfg.manual_seed)
    target = target_config(cfg)  # cfg itself unless `target` names another benchmark
    note_protocol(target)
    net, _ = load_trained(cfg, weight, device, precision)
    if getattr(net, "prior_region", None) is None:
        raise UserError(f"`model {cfg.model}` builds no prior region map even with `qgnet_prior true`: region-map "
                        "recall needs model qgnet, or pfenet / ntrenet with `qgnet_prior true`")
    rec = run_recall(target, net, precision)
    if not next(iter(rec.values())).gt_pixels:
        log.warning("no query of these episodes has a foreground pixel: recall is undefined")
    for _, name, label in MAPS:
        log.info("%s: %s", label, " ".join(fmt(v) for v in rec[name].recall()))
    fields = {"precision": precision.name, "resolution": "original (ori_resize)" if cfg.ori_resize else "network input",
              **{name: r.state() for name, r in rec.items()}}
    write_record(stem, cfg, weight, fields, markdown(cfg, weight, rec))
    log.info("recall written to %s.json and .md", stem)
    return 0


if __name__ == "__main__":
    run_cli(main)
