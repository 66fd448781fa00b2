"""Train NTRENet on one fold.

    python train.py --config config/pascal/pascal_split0_resnet50.yaml [key value ...]

Outputs go to exp/<dataset>/<exp>/{model,result,tb}; `resume FILE` continues a run exactly,
`weight FILE` initialises from an own or official checkpoint. Several GPUs or machines:

    torchrun --standalone --nproc_per_node N train.py --config FILE [key value ...]

(DistributedDataParallel, see util/engine/distributed.py; only rank 0 logs and writes files).
"""
from __future__ import annotations

if __name__ == "__main__":  # --help and argument mistakes answer before torch loads (well under a second)
    from util.engine.runtime import answer_early

    answer_early(__doc__)

import logging
import math
import os

import torch
from tqdm import tqdm

from model import build_model, load_weights
from util.config import dump_config, load_config
from util.data.loader import build_loader
from util.engine import distributed
from util.engine.checkpoint import load_training_state, restore, save_checkpoint
from util.engine.distributed import World
from util.engine.guard import OutputClaim, StopRequest, claim_output_dir
from util.engine.loop import BASELINES, below_trivial, evaluate
from util.engine.precision import Precision
from util.engine.runtime import (config_args, enable_determinism, experiment_dir, run_cli, seed_everything,
                                 set_rng_state, setup_logging)
from util.engine.tb import EventWriter
from util.errors import Interrupted, UserError
from util.engine.fscs import validate_fscs
from util.evaluation.evaluator import Evaluator
from util.evaluation.metrics import DISPLAY, HEADLINE
from util.evaluation.vis import panel

log = logging.getLogger("train")
LOSS_TERMS = ("main", "ini", "fem", "bg", "pcl", "total")  # always logged; another term (scnet) when switched on
STOP = "_stop"  # all-reduced with the loss terms: Ctrl-C on any rank stops every rank at the same step
RANK_SEED_STRIDE = 1_000_003  # rank r > 0 seeds dropout/bank sampling with seed + epoch + r * stride


class NullWriter:
    """Stands in for the tensorboard writer on ranks > 0: only rank 0 writes events."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def add_image(self, *args, **kwargs) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def poly_lr(base_lr: float, it: int, max_it: int, power: float) -> float:
    """PFENet's per-iteration poly schedule, kept within [0, base_lr] whatever `it` is (a resumed
    run whose schedule was shortened must not reach a negative base, a complex power)."""
    return base_lr * (1 - min(max(it / max_it, 0.0), 1.0)) ** power


def set_learning_rate(opt: torch.optim.Optimizer, cfg, it: int, max_it: int) -> list[float]:
    """PFENet's and the release's `poly_learning_rate` with `index_split -1`: every parameter group
    (here all trainable, non-backbone ones) runs at scale_lr x the poly rate of base_lr.
    Returns the rate each group applies."""
    lr = poly_lr(cfg.base_lr, it, max_it, cfg.power) * cfg.scale_lr
    for g in opt.param_groups:
        g["lr"] = lr
    return [g["lr"] for g in opt.param_groups]


def log_learning_rate(run: "Run", rates: list[float]) -> None:
    """The rate the optimiser applies, per group, with how it is made (first step of a process; the
    `lr` tensorboard scalar carries the applied rate at every step)."""
    factor = poly_lr(1.0, run.iteration, run.max_iter, run.cfg.power)
    for i, (g, lr) in enumerate(zip(run.opt.param_groups, rates)):
        log.info("iteration %d: learning rate applied to parameter group %d (%d tensors) = %.6g "
                 "= base_lr %g x scale_lr %g x poly %.6f", run.iteration + 1, i, len(g["params"]), lr,
                 run.cfg.base_lr, run.cfg.scale_lr, factor)


def build_optimizer(net: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    """SGD, Adam (the iFSL release's, docs/protocols.md) or AdamW over the trainable
    (non-backbone) parameters only."""
    params = [p for p in net.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.base_lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.base_lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.base_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


class Run:
    """State of one training run: folders, model (and its DDP wrapper), optimiser, loaders,
    writer, counters. `net` is the model itself, `ddp` what the training step calls."""

    def __init__(self, cfg, device: torch.device, world: World = World(), resumed: dict | None = None,
                 claim: OutputClaim | None = None, precision: Precision | None = None):
        self.cfg, self.device, self.world, self.claim = cfg, device, world, claim
        self.stop = StopRequest()
        self.precision = precision or Precision.from_config(cfg, device, training=True)
        self.eval_precision = self.precision.for_evaluation()  # validation: fp32 unless amp bf16/fp16
        self.dir = experiment_dir(cfg)
        self.model_dir = os.path.join(self.dir, "model")
        self.net = build_model(cfg).to(device, memory_format=self.precision.memory_format)
        if cfg.weight:
            load_weights(self.net, cfg.weight)
        self.opt = build_optimizer(self.net, cfg)
        self.scaler = self.precision.scaler()
        self.train_loader = build_loader(cfg, "train", world.rank, world.size)
        self.val_loader = build_loader(cfg, "val", world.rank, world.size) if cfg.val_every else None
        self.epoch, self.iteration, self.best, self.step_in_epoch = 0, 0, -1.0, 0
        self.resume_rng: dict | None = None  # restored once the resumed epoch's loader has started
        self.skipped = 0
        self.lr_logged = False  # the applied learning rate is logged at this process's first step
        if resumed is not None:
            self._resume(resumed)
        self.max_iter = cfg.epochs * len(self.train_loader)
        if self.max_iter == 0:
            raise UserError(f"the training list {cfg.train_list} gives no full batch of {cfg.batch_size}: "
                            "lower batch_size or check the list")
        self.ddp = distributed.wrap_model(self.net, device)
        purge = self.iteration + 1 if self.iteration else None  # TensorBoard drops the crashed tail
        self.writer = EventWriter(os.path.join(self.dir, "tb"), purge_step=purge) if world.main else NullWriter()

    def _resume(self, state: dict) -> None:
        """Every rank loads the same checkpoint (rank 0's model, PCL bank and optimiser)."""
        restore(self.cfg.resume, state, {"model": self.net, "optimizer": self.opt})
        if "scaler" in state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.iteration, self.best = state["epoch"], state["iteration"], state["best_miou"]
        self.step_in_epoch = state.get("step_in_epoch", 0)
        set_rng_state(state["rng"])
        self.resume_rng = state["rng"] if self.step_in_epoch else None
        log.info("resumed from %s at epoch %d, iteration %d (step %d of the epoch)", self.cfg.resume, self.epoch,
                 self.iteration, self.step_in_epoch)

    def save(self, name: str) -> None:
        """Rank 0 writes; the other ranks hold the same weights (DDP) and averaged BN statistics."""
        if not self.world.main:
            return
        self.writer.flush()  # events up to the checkpoint are on disk before it is: a crash loses none
        extra = {"step_in_epoch": self.step_in_epoch}
        if self.scaler.is_enabled():
            extra["scaler"] = self.scaler.state_dict()
        optimizer = self.opt if name == "last.pth" else None  # best.pth: what testing needs
        save_checkpoint(os.path.join(self.model_dir, name), model=self.net, optimizer=optimizer,
                        epoch=self.epoch, iteration=self.iteration, best_miou=self.best, cfg=self.cfg,
                        extra=extra)
        if self.claim is not None:
            self.claim.commit()


def train_step(run: Run, batch: dict) -> dict:
    """One SGD step (autocast forward, fp32 losses, GradScaler with fp16); returns the loss
    terms as floats, averaged over the ranks (checked before backward, so all ranks stop or
    skip together on a non-finite loss)."""
    rates = set_learning_rate(run.opt, run.cfg, run.iteration, run.max_iter)
    if not run.lr_logged:
        log_learning_rate(run, rates)
        run.lr_logged = True
    lr = rates[0]
    b = run.precision.to_device(batch)
    with run.precision.autocast():
        tags = {"presence": b["presence"]} if "presence" in b else {}  # FS-CS class tags
        _, losses = run.ddp(b["query"], b["supports"], b["support_masks"],
                            query_mask=b["query_mask"], classes=b["class_idx"], **tags)
    out = distributed.mean_over_ranks({**losses, STOP: torch.tensor(float(run.stop.requested), device=run.device)})
    run.stop.requested = out.pop(STOP) > 0  # a stop on any rank stops all of them at this step
    if not math.isfinite(out["total"]):
        check_nonfinite(run, out)
        run.iteration += 1
        return {**out, "lr": lr}
    run.opt.zero_grad(set_to_none=True)
    run.scaler.scale(losses["total"].float()).backward()
    run.scaler.step(run.opt)
    run.scaler.update()
    run.iteration += 1
    out["lr"] = lr
    return out


def check_nonfinite(run: Run, terms: dict) -> None:
    """`on_nonfinite stop`: end the run naming the step and term (checkpoints on disk stay the
    last good ones); `skip`: drop this step's update and go on."""
    bad = ", ".join(k for k, v in terms.items() if not math.isfinite(v))
    if run.cfg.on_nonfinite == "stop":
        raise UserError(f"non-finite loss at iteration {run.iteration + 1} (terms: {bad}); the last good "
                        f"checkpoint is kept in {run.model_dir}: lower base_lr and resume, or set "
                        "`on_nonfinite skip`")
    run.skipped += 1
    log.warning("non-finite loss at iteration %d (terms: %s): step skipped (%d so far)",
                run.iteration + 1, bad, run.skipped)


def log_images(run: Run, batch: dict, tag: str) -> None:
    """Fig. 5-style panel of the first episode of `batch` (rank 0 only, fp32; methods without
    predict_maps have no panel)."""
    if not run.world.main or not hasattr(run.net, "predict_maps"):
        return
    was_training = run.net.training
    b = run.precision.to_device(batch)
    with torch.no_grad():
        run.net.eval()
        maps = run.net.predict_maps(b["query"], b["supports"], b["support_masks"])
    run.net.train(was_training)
    img = panel(b["query"], b["supports"], b["support_masks"], b["query_mask"], maps)
    run.writer.add_image(tag, img, run.iteration, dataformats="HWC")


def train_epoch(run: Run) -> None:
    """One epoch; the episodes depend on (seed, epoch) only, each rank taking its share."""
    cfg, loader = run.cfg, run.train_loader
    if run.resume_rng is None:
        seed_everything(cfg.manual_seed + run.epoch + RANK_SEED_STRIDE * run.world.rank)
    loader.sampler.set_epoch(run.epoch, skip=run.step_in_epoch * loader.batch_size)
    loader.dataset.set_epoch(run.epoch)
    run.ddp.train()
    batches = iter(loader)  # draws the workers' base seed from the global RNG
    if run.resume_rng is not None:  # mid-epoch resume: continue the interrupted RNG stream
        set_rng_state(run.resume_rng)
        run.resume_rng = None
    bar = tqdm(batches, total=len(loader), desc=f"epoch {run.epoch + 1}/{cfg.epochs}", dynamic_ncols=True,
               disable=not run.world.main)
    for batch in bar:
        terms = train_step(run, batch)
        run.step_in_epoch += 1
        names = [k for k in terms if k != "lr" and (k in LOSS_TERMS or cfg.get(f"use_{k}", True))]
        bar.set_postfix(loss=f"{terms['total']:.3f}", lr=f"{terms['lr']:.2e}")
        if run.iteration % cfg.print_freq == 0:
            log.info("epoch %d iter %d/%d %s", run.epoch + 1, run.iteration, run.max_iter,
                     " ".join(f"{k} {terms[k]:.4f}" for k in names))
        for k in names:
            run.writer.add_scalar(f"loss/{k}", terms[k], run.iteration)
        run.writer.add_scalar("lr", terms["lr"], run.iteration)
        if cfg.image_every and run.iteration % cfg.image_every == 0:
            log_images(run, batch, "train/panel")
        if cfg.save_every_iters and run.iteration % cfg.save_every_iters == 0:
            run.save("last.pth")
        if run.stop.requested:
            run.save("last.pth")
            last = os.path.join(run.model_dir, "last.pth")
            raise Interrupted(f"stopped at iteration {run.iteration}; {last} holds this step: continue with "
                              f"`resume {last}`")
    run.step_in_epoch = 0
    distributed.average_bn_statistics(run.net)  # before validation and checkpoints


def validate(run: Run, last: bool = False) -> float:
    """Validation mIoU; the last validation also scores the trivial predictors and says so when
    the model does not beat them."""
    if run.cfg.ifsl:
        return validate_fscs(run)
    ev = Evaluator.from_config(run.cfg)
    baselines = ({n: Evaluator.from_config(run.cfg) for n in BASELINES}
                 if last and hasattr(run.net, "predict_maps") else None)
    metrics, base, images = evaluate(run.net, run.val_loader, ev, run.eval_precision, baselines=baselines, panels=1,
                                     desc="validate")
    metrics = {k: math.nan if v is None else v for k, v in metrics.items()}
    for k in HEADLINE:
        run.writer.add_scalar(f"val/{k}", metrics[k], run.iteration)
    for img in images:
        run.writer.add_image("val/panel", img, run.iteration, dataformats="HWC")
    log.info("validation epoch %d: %s", run.epoch, " ".join(f"{DISPLAY[k]} {metrics[k]:.2f}" for k in HEADLINE))
    if (verdict := below_trivial(None if math.isnan(metrics["miou"]) else metrics["miou"], base)) is not None:
        log.warning("validation %s", verdict)
    return metrics["miou"]


def check_finished_run(cfg, resumed: dict) -> None:
    """A finished run stops with `nothing to do`, but only once its `resume` and `weight` files
    were loaded into this config's network, as a run that trains would: another architecture's
    checkpoint is one error, never an exit 0 that never read it."""
    net = build_model(cfg.replace(pretrained=False))  # both files hold the backbone: none is read
    if cfg.weight:
        load_weights(net, cfg.weight)
    restore(cfg.resume, resumed, {"model": net})


def main(argv: list[str] | None = None) -> int:
    args = config_args(argv, __doc__)
    cfg = load_config(args.config, args.opts)
    return distributed.run(run_training, cfg)


def run_training(cfg, world: World, device: torch.device) -> int:
    """The whole run on this process (one of `world.size`); rank 0 holds the output folder."""
    precision = Precision.from_config(cfg, device, training=True)  # an impossible amp setting fails before any work
    out = experiment_dir(cfg)
    claim = claim_output_dir(out, resume=cfg.resume, overwrite=cfg.overwrite) if world.main else None
    try:
        code = _train(cfg, world, device, out, claim, precision)
    except BaseException:
        if claim is not None:
            claim.release(failed=True)
        raise
    if claim is not None:
        claim.release()
    return code


def _train(cfg, world: World, device: torch.device, out: str, claim: OutputClaim | None,
           precision: Precision) -> int:
    setup_logging(os.path.join(out, "result", "train.log") if world.main else None,
                  logging.INFO if world.main else logging.WARNING, notes=cfg.get("_notes", ()),
                  first=precision.log_lines() + precision.for_evaluation().log_lines()[:1])
    resumed = load_training_state(cfg.resume, cfg) if cfg.resume else None
    if resumed is not None and resumed["epoch"] >= cfg.epochs:
        check_finished_run(cfg, resumed)
        log.warning("nothing to do: %s has already trained %d epoch(s), and epochs is %d; raise `epochs` to "
                    "train longer (the poly schedule is then stretched over the new total)", cfg.resume,
                    resumed["epoch"], cfg.epochs)
        return 0
    if world.main:
        dump_config(cfg, os.path.join(out, "result", "config.yaml"))
    if cfg.deterministic:
        enable_determinism()
    seed_everything(cfg.manual_seed)
    run = Run(cfg, device, world, resumed, claim, precision)
    if claim is not None:
        claim.started = True  # from here a failure keeps the folder and its log
    log.info("training %s on %s x %d process(es), %s%s: %d iterations/epoch, output %s",
             cfg.get("_config_path"), device, world.size, precision.name,
             ", channels_last" if precision.channels_last else "", len(run.train_loader), out)
    with run.stop:
        while run.epoch < cfg.epochs:
            train_epoch(run)
            run.epoch += 1
            if cfg.val_every and run.epoch % cfg.val_every == 0:
                miou = validate(run, last=run.epoch == cfg.epochs)
                if not math.isnan(miou) and miou > run.best:
                    run.best = miou
                    run.save("best.pth")
            run.save("last.pth")
    run.writer.close()
    log.info("done: best validation mIoU %.2f, checkpoints in %s", run.best, run.model_dir)
    return 0

if __name__ == "__main__":
    run_cli(main)
