"""Train NTRENet on one fold.

    python train.py --config config/pascal/pascal_split0_resnet50.yaml [key value ...]

Outputs go to exp/<dataset>/<exp>/{model,result,tb}; `resume FILE` continues a run exactly,
`weight FILE` initialises from an own or official checkpoint.
"""
from __future__ import annotations

import argparse
import logging
import math
import os

import torch
from tensorboardX import SummaryWriter
from tqdm import tqdm

from model import build_model, load_weights
from util.checkpoint import load_training_state, save_checkpoint
from util.config import dump_config, load_config
from util.errors import UserError
from util.evaluator import Evaluator
from util.loader import build_loader
from util.runtime import experiment_dir, resolve_device, run_cli, seed_everything, set_rng_state, setup_logging
from util.splits import fold_classes
from util.validate import evaluate, to_device
from util.vis import panel

log = logging.getLogger("train")
LOSS_TERMS = ("main", "ini", "fem", "bg", "pcl", "total")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="YAML file under config/<dataset>/")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as `key value` pairs")
    return p.parse_args(argv)


def poly_lr(base_lr: float, it: int, max_it: int, power: float) -> float:
    """PFENet's per-iteration poly schedule."""
    return base_lr * (1 - it / max_it) ** power


def build_optimizer(net: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    """SGD over the trainable (non-backbone) parameters only."""
    params = [p for p in net.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=cfg.base_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


class Run:
    """State of one training run: folders, model, optimiser, loaders, writer, counters."""

    def __init__(self, cfg, device: torch.device):
        self.cfg, self.device = cfg, device
        self.dir = experiment_dir(cfg)
        self.model_dir = os.path.join(self.dir, "model")
        self.net = build_model(cfg).to(device)
        if cfg.weight:
            load_weights(self.net, cfg.weight)
        self.opt = build_optimizer(self.net, cfg)
        self.train_loader = build_loader(cfg, "train")
        self.val_loader = build_loader(cfg, "val") if cfg.val_every else None
        self.epoch, self.iteration, self.best = 0, 0, -1.0
        if cfg.resume:
            self._resume(cfg.resume)
        self.max_iter = cfg.epochs * len(self.train_loader)
        if self.max_iter == 0:
            raise UserError(f"the training list {cfg.train_list} gives no full batch of {cfg.batch_size}: "
                            "lower batch_size or check the list")
        self.writer = SummaryWriter(os.path.join(self.dir, "tb"), purge_step=self.iteration or None)

    def _resume(self, path: str) -> None:
        state = load_training_state(path)
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.epoch, self.iteration, self.best = state["epoch"], state["iteration"], state["best_miou"]
        set_rng_state(state["rng"])
        log.info("resumed from %s at epoch %d, iteration %d", path, self.epoch, self.iteration)

    def save(self, name: str) -> None:
        save_checkpoint(os.path.join(self.model_dir, name), model=self.net, optimizer=self.opt,
                        epoch=self.epoch, iteration=self.iteration, best_miou=self.best, cfg=self.cfg)


def train_step(run: Run, batch: dict) -> dict:
    """One SGD step; returns the loss terms as floats."""
    lr = poly_lr(run.cfg.base_lr, run.iteration, run.max_iter, run.cfg.power)
    for g in run.opt.param_groups:
        g["lr"] = lr
    b = to_device(batch, run.device)
    _, losses = run.net(b["query"], b["supports"], b["support_masks"],
                        query_mask=b["query_mask"], classes=b["class_idx"])
    if not torch.isfinite(losses["total"]):
        bad = [k for k, v in losses.items() if not torch.isfinite(v)]
        raise UserError(f"non-finite loss at iteration {run.iteration + 1} (terms: {', '.join(bad)}); "
                        f"the last good checkpoint is kept in {run.model_dir}: lower base_lr and resume")
    run.opt.zero_grad(set_to_none=True)
    losses["total"].backward()
    run.opt.step()
    run.iteration += 1
    out = {k: float(v.detach()) for k, v in losses.items()}
    out["lr"] = lr
    return out


def log_images(run: Run, batch: dict, tag: str) -> None:
    """Fig. 5-style panel of the first episode of `batch`."""
    was_training = run.net.training
    b = to_device(batch, run.device)
    with torch.no_grad():
        run.net.eval()
        maps = run.net.predict_maps(b["query"], b["supports"], b["support_masks"])
    run.net.train(was_training)
    img = panel(b["query"], b["supports"], b["support_masks"], b["query_mask"], maps)
    run.writer.add_image(tag, img, run.iteration, dataformats="HWC")


def train_epoch(run: Run) -> None:
    cfg = run.cfg
    seed_everything(cfg.manual_seed + run.epoch)
    run.train_loader.sampler.set_epoch(run.epoch)
    run.train_loader.dataset.set_epoch(run.epoch)
    run.net.train()
    bar = tqdm(run.train_loader, desc=f"epoch {run.epoch + 1}/{cfg.epochs}", dynamic_ncols=True)
    for batch in bar:
        terms = train_step(run, batch)
        bar.set_postfix(loss=f"{terms['total']:.3f}", lr=f"{terms['lr']:.2e}")
        if run.iteration % cfg.print_freq == 0:
            log.info("epoch %d iter %d/%d %s", run.epoch + 1, run.iteration, run.max_iter,
                     " ".join(f"{k} {terms[k]:.4f}" for k in LOSS_TERMS))
        for k in LOSS_TERMS:
            run.writer.add_scalar(f"loss/{k}", terms[k], run.iteration)
        run.writer.add_scalar("lr", terms["lr"], run.iteration)
        if cfg.image_every and run.iteration % cfg.image_every == 0:
            log_images(run, batch, "train/panel")


def validate(run: Run) -> float:
    classes = fold_classes(run.cfg, "val")
    ev = Evaluator(classes, run.cfg.dataset, run.cfg.ignore_label, run.cfg.ori_resize)
    metrics, _, images = evaluate(run.net, run.val_loader, ev, run.device, panels=1, desc="validate")
    metrics = {k: math.nan if v is None else v for k, v in metrics.items()}
    for k in ("miou", "fbiou", "precision"):
        run.writer.add_scalar(f"val/{k}", metrics[k], run.iteration)
    for img in images:
        run.writer.add_image("val/panel", img, run.iteration, dataformats="HWC")
    log.info("validation epoch %d: mIoU %.2f FB-IoU %.2f precision %.2f", run.epoch, metrics["miou"],
             metrics["fbiou"], metrics["precision"])
    return metrics["miou"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config, args.opts)
    out = experiment_dir(cfg)
    setup_logging(os.path.join(out, "result", "train.log"))
    dump_config(cfg, os.path.join(out, "result", "config.yaml"))
    device = resolve_device(cfg.device)
    seed_everything(cfg.manual_seed)
    run = Run(cfg, device)
    log.info("training %s on %s: %d iterations/epoch, output %s", cfg.get("_config_path"), device,
             len(run.train_loader), out)
    while run.epoch < cfg.epochs:
        train_epoch(run)
        run.epoch += 1
        if cfg.val_every and run.epoch % cfg.val_every == 0:
            miou = validate(run)
            if not math.isnan(miou) and miou > run.best:
                run.best = miou
                run.save("best.pth")
        run.save("last.pth")
    run.writer.close()
    log.info("done: best validation mIoU %.2f, checkpoints in %s", run.best, run.model_dir)
    return 0


if __name__ == "__main__":
    run_cli(main)
