"""Generalized few-shot segmentation test of a BAM checkpoint (base and novel classes at once).

    python test_gfss.py --config config/pascal/pascal_split0_resnet50_bam.yaml [weight FILE] [key value ...]

Without `weight`, uses exp/<dataset>/<exp>/model/best.pth (else last.pth), like test.py.
Novel pixels: final foreground probability > gfss_tau; the rest: the base learner's classes.
Writes gfss_shot<K>.json / .md next to the checkpoint: mIoU of the base classes, the
novel classes, all classes (the release's total) and the mean of base and novel.
"""
from __future__ import annotations

if __name__ == "__main__":  # --help and argument mistakes answer before torch loads (well under a second)
    from util.engine.runtime import answer_early

    answer_early(__doc__)

import json
import logging
import os

import torch

from model import build_model, load_weights
from test import find_weight
from util.config import Config, load_config
from util.data.gfss import gfss_loader
from util.engine.checkpoint import refuse_other_fold
from util.engine.guard import write_atomic
from util.engine.precision import Precision
from util.engine.progress import progress
from util.engine.provenance import provenance, refuse_silent_replace, test_protocol
from util.engine.runtime import config_args, resolve_device, run_cli, seed_everything, setup_logging
from util.errors import UserError
from util.evaluation.gfss import GFSSScores

log = logging.getLogger("test_gfss")
HEADS = (("miou_base", "base mIoU"), ("miou_novel", "novel mIoU"), ("miou_total", "all-class mIoU"),
         ("miou_mean", "mean of base and novel"))


@torch.no_grad()
def run_gfss(cfg: Config, net, precision: Precision) -> dict:
    """Scores of the generalized FSS protocol for `net` (a BAM in eval mode)."""
    loader = gfss_loader(cfg)
    ds = loader.dataset
    scores = GFSSScores(len(ds.base), len(ds.novel), cfg.ignore_label)
    for ep in progress(loader, "GFSS test"):
        b = precision.to_device({k: ep[k][None] for k in ("query", "supports", "support_masks")})
        with precision.autocast():
            out = net.predict_all(b["query"], b["supports"], b["support_masks"])
        scores.update(out["final"][0], out["base"][0], ep["target"], ep["slot"], cfg.gfss_tau)
    return scores.compute()


def gfss_protocol(cfg: Config, precision: str) -> dict:
    """What GFSS figures were measured on: test.py's protocol but one pass (no `seeds`), plus the
    novel-pixel threshold tau; a test under another one never replaces gfss_shot<K>.json unseen."""
    proto = {k: v for k, v in test_protocol(cfg, precision).items() if k != "seeds"}
    return proto | {"gfss_tau": cfg.gfss_tau}


def markdown(cfg: Config, weight: str, res: dict) -> str:
    rows = "\n".join(f"| {name} | {res[k]:.2f} |" for k, name in HEADS)
    return (f"# GFSS {cfg.dataset} fold {cfg.split}, {cfg.backbone}, {cfg.shot}-shot\n\n"
            f"checkpoint `{weight}`, {cfg.test_num} episodes, tau {cfg.gfss_tau}\n\n| metric | value |\n|---|---|\n"
            f"{rows}\n")


def main(argv: list[str] | None = None) -> int:
    args = config_args(argv, __doc__)
    cfg = load_config(args.config, args.opts)
    if cfg.model != "bam":
        raise UserError(f"the generalized FSS test needs a base learner: `model bam` (this config: {cfg.model})")
    weight = find_weight(cfg)
    device = resolve_device(cfg.device)
    precision = Precision.from_config(cfg, device)
    stem = os.path.join(os.path.dirname(os.path.abspath(weight)), f"gfss_shot{cfg.shot}")
    refuse_silent_replace(stem, cfg, precision.name, gfss_protocol(cfg, precision.name))
    setup_logging(stem + ".log", notes=cfg.get("_notes", ()), first=precision.log_lines())
    seed_everything(cfg.manual_seed)
    net = build_model(cfg.replace(base_weight="none"))  # the BAM checkpoint holds the base learner
    refuse_other_fold(load_weights(net, weight), cfg, weight)
    net.to(device, memory_format=precision.memory_format).eval()
    res = run_gfss(cfg, net, precision)
    log.info("GFSS %s fold %d: %s", cfg.dataset, cfg.split, ", ".join(f"{n} {res[k]:.2f}" for k, n in HEADS))
    record = {"config": {k: v for k, v in cfg.items() if not k.startswith("_")}, "weight": weight,
              "precision": precision.name, "protocol": gfss_protocol(cfg, precision.name),
              "provenance": provenance(), "gfss": res}
    write_atomic(stem + ".json", json.dumps(record, indent=1))
    write_atomic(stem + ".md", markdown(cfg, weight, res))
    log.info("results written to %s.json and .md", stem)
    return 0


if __name__ == "__main__":
    run_cli(main)
