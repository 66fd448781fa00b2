"""FS-CS evaluation for train.py's validation and test.py (docs/fscs.md): every episode's
presence prediction and (N+1)-class segmentation scored by the FS-CS meter, counts summed over
the ranks, results written as results_way<N>_shot<K>.json/.md beside the checkpoint."""
from __future__ import annotations

import json
import logging
import math
import os
import statistics

import torch

from model.fscs.ifsl import fscs_predict
from util.data.benchmarks import fold_classes, get_benchmark
from util.engine import distributed
from util.engine.guard import write_atomic
from util.engine.provenance import provenance, refuse_silent_replace, test_protocol
from util.engine.precision import Precision
from util.engine.progress import progress
from util.errors import UserError
from util.evaluation.fscs import FSCSMeter, predict_at_original

log = logging.getLogger(__name__)
FSCS_HEADLINE = ("er", "miou", "fbiou")
FSCS_DISPLAY = {"er": "ER", "miou": "mIoU", "fbiou": "FB-IoU"}


def meter_for(cfg) -> FSCSMeter:
    """A meter over the fold's test classes of the config's benchmark."""
    return FSCSMeter(fold_classes(cfg, "test"), get_benchmark(cfg.dataset).num_classes, cfg.ignore_label)


@torch.no_grad()
def evaluate_fscs(net: torch.nn.Module, loader, meter: FSCSMeter, precision: Precision, *, ori_resize: bool = True,
                  desc: str = "eval") -> dict:
    """Scores every episode of `loader` (this rank's share); totals are summed over the ranks."""
    net.eval()
    for batch in progress(loader, desc):
        b = precision.to_device(batch)
        with precision.autocast():
            fg = net(b["query"], b["supports"], b["support_masks"]).float()
        presence, merged = fscs_predict(fg)
        if ori_resize:
            preds, targets = zip(*(predict_at_original(m, raw, meter.ignore) for m, raw in zip(merged, batch["raw_mask"])))
        else:
            preds, targets = merged.argmax(dim=1), b["query_mask"]
        meter.update(presence, batch["presence"], preds, targets, batch["support_classes"])
    totals = torch.cat([meter.inter, meter.union, torch.tensor([meter.hits, meter.episodes])])
    totals = distributed.all_reduce_sum(totals)
    n = meter.inter.numel()
    meter.inter, meter.union = totals[:n].clone(), totals[n:2 * n].clone()
    meter.hits, meter.episodes = int(totals[-2]), int(totals[-1])
    return meter.compute()


def validate_fscs(run) -> float:
    """train.py's validation of an FS-CS run: logs ER/mIoU/FB-IoU, returns the mIoU."""
    metrics = evaluate_fscs(run.net, run.val_loader, meter_for(run.cfg), run.eval_precision,
                            ori_resize=run.cfg.ori_resize, desc="validate")
    for k in FSCS_HEADLINE:
        run.writer.add_scalar(f"val/{k}", metrics[k], run.iteration)
    log.info("validation epoch %d (%d-way): %s", run.epoch, run.cfg.way,
             " ".join(f"{FSCS_DISPLAY[k]} {metrics[k]:.2f}" for k in FSCS_HEADLINE))
    return metrics["miou"]


def check_trained_for_fscs(trained: dict, weight: str, way: int) -> None:
    """A checkpoint trained on binary episodes never saw a support class missing from the query."""
    if trained and not trained.get("ifsl", False):
        raise UserError(f"{weight} was trained on binary few-shot episodes (ifsl false), not for {way}-way FS-CS: "
                        "its maps never learned that a class can be absent. Train with `ifsl true`, or test it "
                        "with `ifsl false`")


def test_fscs(cfg, net: torch.nn.Module, weight: str, precision: Precision, world, build_loader) -> str | None:
    """test.py for FS-CS: every seed's metrics, mean ± std; rank 0 writes the results (returns their stem)."""
    if cfg.vis or cfg.baselines:
        log.warning("vis and baselines are binary-episode tools: not produced for FS-CS (ifsl true)")
    stem = os.path.join(os.path.dirname(os.path.abspath(weight)), f"results_way{cfg.way}_shot{cfg.shot}")
    refuse_silent_replace(stem, cfg, precision.name)
    runs = []
    for i in range(cfg.seeds):
        loader = build_loader(cfg, "test", world.rank, world.size, test_seed=cfg.test_seed + i)
        metrics = evaluate_fscs(net, loader, meter_for(cfg), precision, ori_resize=cfg.ori_resize,
                                desc=f"test seed {i + 1}/{cfg.seeds}")
        runs.append(metrics)
        log.info("seed %d: %s", cfg.test_seed + i, " ".join(f"{FSCS_DISPLAY[k]} {metrics[k]:.2f}" for k in FSCS_HEADLINE))
    if not world.main:
        return None
    summary = {k: {"mean": statistics.fmean(r[k] for r in runs),
                   "std": statistics.pstdev([r[k] for r in runs]) if len(runs) > 1 else None} for k in FSCS_HEADLINE}
    record = {"config": {k: v for k, v in cfg.items() if not k.startswith("_")}, "weight": weight, "task": "fscs",
              "precision": precision.name, "protocol": test_protocol(cfg, precision.name), "provenance": provenance(),
              "metrics": runs[0], "seeds": runs, "summary": summary}
    write_atomic(stem + ".json", json.dumps(record, indent=1))
    write_atomic(stem + ".md", fscs_markdown(cfg, weight, runs, summary))
    log.info("FS-CS %d-way %d-shot fold %d: %s", cfg.way, cfg.shot, cfg.split,
             ", ".join(f"{FSCS_DISPLAY[k]} {_fmt(summary[k])}" for k in FSCS_HEADLINE))
    if (verdict := segments_nothing(summary["miou"]["mean"])) is not None:
        log.warning(verdict)
    return stem


def segments_nothing(miou: float) -> str | None:
    """FS-CS mIoU below 0.01 means no query pixel is ever given its class: the model predicts
    'nothing present' everywhere, whatever its ER (docs/fscs.md)."""
    if miou >= 0.01:
        return None
    return (f"FS-CS mIoU {miou:.2f}: the model segments no class in any query (it predicts background "
            "everywhere); it has not learned segmentation yet: train longer (docs/fscs.md)")


def _fmt(stat: dict) -> str:
    return f"{stat['mean']:.2f}" + ("" if stat["std"] is None or math.isnan(stat["std"]) else f" ± {stat['std']:.2f}")


def fscs_markdown(cfg, weight: str, runs: list[dict], summary: dict) -> str:
    bench = get_benchmark(cfg.dataset)
    head = (f"# FS-CS {cfg.dataset} fold {cfg.split}, {cfg.model}, {cfg.way}-way {cfg.shot}-shot\n\n"
            f"checkpoint `{weight}`, {runs[0]['episodes']} episodes x {len(runs)} seed(s)\n\n"
            "| metric | value |\n|---|---|\n")
    rows = [f"| {FSCS_DISPLAY[k]} | {_fmt(summary[k])} |" for k in FSCS_HEADLINE]
    per = ["", "| class | id | IoU |", "|---|---|---|"]
    per += [f"| {bench.class_name(c)} | {c} | {v:.2f} |" for c, v in runs[0]["iou"].items()]
    return head + "\n".join(rows + per) + "\n"
