"""Test a checkpoint with the fixed-seed episodic protocol.

    python test.py --config config/pascal/pascal_split0_resnet50.yaml [weight FILE] [key value ...]

Without `weight`, uses exp/<dataset>/<exp>/model/best.pth (else last.pth). Writes
results_shot<K>.json / .md next to the checkpoint (`target NAME`: tests on another benchmark and
writes results_shot<K>_NAME.json / .md); `seeds N` repeats with N seeds, `vis N`
saves N Fig. 5-style panels, `baselines true` also scores the trivial predictors.
Under `torchrun --nproc_per_node N test.py ...` the episodes are split over the processes and
their counts summed: the same numbers as one process, to the last digit; rank 0 writes.
"""
from __future__ import annotations

if __name__ == "__main__":  # --help and argument mistakes answer before torch loads (well under a second)
    from util.engine.runtime import answer_early

    answer_early(__doc__)

import json
import logging
import os
import statistics

import cv2
import torch

from model import build_model, load_weights
from util.config import Config, load_config
from util.data.benchmarks import get_benchmark
from util.data.cross_domain import check_target_data, results_name, target_config
from util.data.loader import build_loader
from util.engine import distributed
from util.engine.checkpoint import refuse_other_fold
from util.engine.distributed import World
from util.engine.fscs import check_trained_for_fscs, test_fscs
from util.engine.guard import write_atomic
from util.engine.loop import BASELINES, below_trivial, evaluate
from util.engine.precision import Precision
from util.engine.provenance import provenance, refuse_silent_replace, test_protocol
from util.engine.runtime import config_args, experiment_dir, run_cli, seed_everything, setup_logging
from util.errors import UserError
from util.evaluation.evaluator import Evaluator
from util.evaluation.metrics import DISPLAY, HEADLINE
from util.config.recipes import protocol_of

log = logging.getLogger("test")


def find_weight(cfg: Config) -> str:
    if cfg.weight:
        return cfg.weight
    folder = os.path.join(experiment_dir(cfg), "model")
    for name in ("best.pth", "last.pth"):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise UserError(f"no checkpoint in {folder}: train this experiment first, or pass `weight FILE`")


def summarise(runs: list[dict]) -> dict:
    """Mean and standard deviation over seeds of the headline numbers (None if unscored; the
    standard deviation is None for one seed: there is no spread to report)."""
    out = {}
    for k in HEADLINE:
        vals = [r[k] for r in runs if r[k] is not None]
        out[k] = {"mean": statistics.fmean(vals) if vals else None,
                  "std": statistics.pstdev(vals) if len(vals) > 1 else None}
    return out


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def fmt_spread(stat: dict) -> str:
    """`mean ± std` over seeds, the mean alone for one seed."""
    return fmt(stat["mean"]) + ("" if stat["std"] is None else f" ± {stat['std']:.2f}")


def markdown(cfg: Config, weight: str, runs: list[dict], summary: dict, base: dict, precision: str = "fp32") -> str:
    tested = f"{cfg.dataset} -> {cfg.target}" if cfg.target and cfg.target != cfg.dataset else cfg.dataset
    head = (f"# {tested} fold {cfg.split}, {cfg.backbone}, {cfg.shot}-shot\n\n"
            f"checkpoint `{weight}`, {runs[0]['episodes']} episodes x {len(runs)} seed(s), {precision}\n\n"
            "| metric | value |\n|---|---|\n")
    rows = [f"| {k} | {fmt_spread(v)} |" for k, v in summary.items()]
    rows += [f"| {name} mIoU (trivial) | {fmt(m['miou'])} |" for name, m in base.items()]
    per = ["", "| class | id | IoU | episodes |", "|---|---|---|---|"]
    per += [f"| {c['name']} | {c['id']} | {fmt(c['iou'])} | {c['episodes']} |" for c in runs[0]["per_class"]]
    return head + "\n".join(rows + per) + "\n"


def run_seeds(cfg: Config, net, precision: Precision, world: World = World()) -> tuple[list[dict], dict, list]:
    """Every seed's metrics (identical on every rank: counts are summed over the ranks)."""
    runs, base, images = [], {}, []
    for i in range(cfg.seeds):
        loader = build_loader(cfg, "test", world.rank, world.size, test_seed=cfg.test_seed + i)
        ev = Evaluator.from_config(cfg)
        baselines = {n: Evaluator.from_config(cfg) for n in BASELINES} if cfg.get("baselines") and i == 0 else None
        metrics, b, imgs = evaluate(net, loader, ev, precision, baselines=baselines,
                                    panels=cfg.vis if i == 0 else 0, desc=f"test seed {i + 1}/{cfg.seeds}")
        runs.append(metrics)
        base.update(b)
        images += imgs
        log.info("seed %d: %s", cfg.test_seed + i, " ".join(f"{DISPLAY[k]} {fmt(metrics[k])}" for k in HEADLINE))
    return runs, base, images


def write_record(stem: str, cfg: Config, weight: str, fields: dict, md: str) -> None:
    """<stem>.json (the effective config, the checkpoint and `fields`) and <stem>.md, each written atomically."""
    record = {"config": {k: v for k, v in cfg.items() if not k.startswith("_")}, "weight": weight,
              "protocol": test_protocol(cfg, fields.get("precision")), "provenance": provenance(), **fields}
    write_atomic(stem + ".json", json.dumps(record, indent=1))
    write_atomic(stem + ".md", md)


def results_stem(cfg: Config, weight: str) -> str:
    """results_shot<K>[_<target>] next to the checkpoint."""
    return os.path.join(os.path.dirname(os.path.abspath(weight)), results_name(cfg))


def write_results(cfg: Config, weight: str, runs: list[dict], base: dict, images: list, precision: str = "fp32") -> str:
    stem = results_stem(cfg, weight)
    summary = summarise(runs)
    write_record(stem, cfg, weight, {"precision": precision, "metrics": runs[0], "seeds": runs, "summary": summary,
                                     "baselines": base}, markdown(cfg, weight, runs, summary, base, precision))
    if images:
        os.makedirs(stem + "_vis", exist_ok=True)
        for i, img in enumerate(images):
            cv2.imwrite(os.path.join(stem + "_vis", f"episode{i:04d}.png"), img[..., ::-1])
    return stem


def main(argv: list[str] | None = None) -> int:
    args = config_args(argv, __doc__)
    cfg = load_config(args.config, args.opts)
    return distributed.run(run_test, cfg)


def note_protocol(cfg: Config) -> list[str]:
    """Log where this test departs from the published protocol of the method on this benchmark
    (docs/protocols.md; the benchmark's own where no method's is tabled): its numbers are then
    not comparable with the papers'. Returns the departures."""
    proto = get_benchmark(cfg.dataset).protocol
    theirs = protocol_of(cfg) or {"test_num": proto.episodes, "seeds": proto.seeds, "val_size": proto.image_size}
    diffs = [f"{name} {cfg[name]} (protocol {theirs[name]})" for name in ("test_num", "seeds", "val_size")
             if cfg[name] != theirs[name]]
    if diffs:
        log.info("%s protocol differs: %s", cfg.dataset, ", ".join(diffs))
    return diffs


def test_log_path(cfg: Config, weight: str) -> str:
    """The run's result/test_shot<K>.log; beside the results (next to the checkpoint) when an
    outside checkpoint is tested (`weight FILE` without `save_path`), so no folder of another
    run is created."""
    if cfg.weight and not cfg.save_path:
        return os.path.join(os.path.dirname(os.path.abspath(weight)), f"{results_name(cfg)}.log")
    return os.path.join(experiment_dir(cfg), "result", results_name(cfg).replace("results_", "test_") + ".log")


def load_trained(cfg: Config, weight: str, device: torch.device, precision: Precision) -> tuple[torch.nn.Module, dict]:
    """The network of `cfg` with the checkpoint's weights on `device`, and the config it was trained
    with; refuses a checkpoint whose training classes include this fold's novel classes."""
    net = build_model(cfg.replace(pretrained=False))  # the checkpoint holds the backbone too
    net.to(device, memory_format=precision.memory_format)
    trained = load_weights(net, weight)
    refuse_other_fold(trained, cfg, weight)
    if trained and trained.get("shot", cfg.shot) != cfg.shot:
        log.info("%s was trained %d-shot; testing %d-shot", weight, trained["shot"], cfg.shot)
    return net, trained


def run_test(cfg: Config, world: World, device: torch.device) -> int:
    """Score the checkpoint on this process's share of the episodes; rank 0 writes the results."""
    weight = find_weight(cfg)
    precision = Precision.from_config(cfg, device)  # an impossible amp setting fails before any work
    if not cfg.ifsl:
        refuse_silent_replace(results_stem(cfg, weight), cfg, precision.name)
    log_file = test_log_path(cfg, weight)
    setup_logging(log_file if world.main else None, logging.INFO if world.main else logging.WARNING,
                  notes=cfg.get("_notes", ()), first=precision.log_lines())
    seed_everything(cfg.manual_seed)
    target = target_config(cfg)  # cfg itself unless `target` names another benchmark
    check_target_data(cfg, target)
    note_protocol(target)
    net, trained = load_trained(cfg, weight, device, precision)
    if cfg.ifsl:  # FS-CS: presence + (N+1)-class segmentation (docs/fscs.md)
        check_trained_for_fscs(trained, weight, cfg.way)
        stem = test_fscs(cfg, net, weight, precision, world, build_loader)
        if stem is not None:
            log.info("results written to %s.json and .md", stem)
        return 0
    runs, base, images = run_seeds(target, net, precision, world)
    if not world.main:
        return 0
    stem = write_results(cfg, weight, runs, base, images, precision.name)
    summary = summarise(runs)
    log.info("%d-shot fold %d: %s", cfg.shot, cfg.split,
             ", ".join(f"{DISPLAY[k]} {fmt_spread(summary[k])}" for k in HEADLINE))
    for name, m in base.items():
        log.info("trivial predictor %s: mIoU %s FB-IoU %s", name, fmt(m["miou"]), fmt(m["fbiou"]))
    shifted = cfg.target if cfg.target and cfg.target != cfg.dataset else ""
    if (verdict := below_trivial(summary["miou"]["mean"], base, shifted)) is not None:
        log.warning(verdict)
    log.info("results written to %s.json and .md", stem)
    return 0


if __name__ == "__main__":
    run_cli(main)
