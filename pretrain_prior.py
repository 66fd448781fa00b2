"""Pre-train QGNet's prior extractor with the global-local contrastive loss, without labels.

    python -m pretrain_prior --config config/pascal/pascal_prior_resnet50.yaml [key value ...]

Reads only the images of `train_list` (never a label file), two MoCo v2 views per image and
their SLIC (or Felzenszwalb) patches; trains F_p with L = L_local + L_global ("Few-Shot
Segmentation with Global and Local Contrastive Learning", eq. 7) by SGD with a cosine schedule
for `prior_epochs` epochs. Outputs under exp/<dataset>/<exp>/: model/last.pth after every
epoch (`resume` continues from it), model/prior.pth once finished (what `qgnet_prior_weight`
names), result/config.yaml and pretrain.log, tb/ (loss/global, loss/local, loss/total, lr).
"""
from __future__ import annotations

if __name__ == "__main__":  # --help and argument mistakes answer before torch loads (well under a second)
    from util.engine.runtime import answer_early

    answer_early(__doc__)

import logging
import math
import os
import shutil

import torch
from tqdm import tqdm

from model.backbones.encoder import build_backbone
from model.qgnet.prior_extractor import PRIOR_FORMAT, PriorExtractor, build_prior_extractor
from util.config import dump_config, load_config
from util.data.unlabeled import build_unlabeled_loader
from util.engine.checkpoint import prior_resume_conflicts, read_checkpoint, restore, save_checkpoint
from util.engine.guard import OutputClaim, StopRequest, claim_output_dir
from util.engine.runtime import (config_args, experiment_dir, resolve_device, run_cli, seed_everything,
                                 set_rng_state, setup_logging)
from util.engine.tb import EventWriter
from util.errors import Interrupted, UserError

log = logging.getLogger("pretrain_prior")
TERMS = ("global", "local", "total")


def cosine_lr(base_lr: float, it: int, max_it: int) -> float:
    """MoCo v2's cosine schedule, per iteration, within [0, base_lr]."""
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(max(it / max_it, 0.0), 1.0)))


class Pretraining:
    """One pre-training run: extractor, optimiser, loader, writer, counters."""

    def __init__(self, cfg, device: torch.device, out: str, claim: OutputClaim | None):
        self.cfg, self.device, self.claim = cfg, device, claim
        self.model_dir = os.path.join(out, "model")
        encoder = build_backbone(cfg.backbone, pretrained=cfg.pretrained, initmodel_dir=cfg.initmodel_dir,
                                 bn_mode="reference")
        self.net: PriorExtractor = build_prior_extractor(cfg, encoder).to(device)
        self.opt = torch.optim.SGD([p for p in self.net.parameters() if p.requires_grad], lr=cfg.prior_lr,
                                   momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        self.loader = build_unlabeled_loader(cfg)
        self.epoch = self.iteration = 0
        if cfg.resume:
            self._resume(cfg.resume)
        self.max_iter = cfg.prior_epochs * len(self.loader)
        self.writer = EventWriter(os.path.join(out, "tb"), purge_step=self.iteration + 1 if self.iteration else None)
        self.stop = StopRequest()

    def _resume(self, path: str) -> None:
        state = read_checkpoint(path)
        if not isinstance(state, dict) or state.get("format") != PRIOR_FORMAT:
            raise UserError(f"{path} is not a prior extractor checkpoint (written by pretrain_prior), so it cannot "
                            "resume this pre-training: point `resume` at its model/last.pth")
        if bad := prior_resume_conflicts(state.get("config", {}), self.cfg):
            raise UserError(f"cannot resume {path}: the config changes what this pre-training learns: "
                            f"{'; '.join(bad)}. Resume with the checkpoint's values, or start a new pre-training")
        restore(path, state, {"model": self.net, "optimizer": self.opt})
        self.epoch, self.iteration = state["epoch"], state["iteration"]
        set_rng_state(state["rng"])
        log.info("resumed from %s after epoch %d (iteration %d)", path, self.epoch, self.iteration)

    def save(self, name: str) -> None:
        self.writer.flush()
        save_checkpoint(os.path.join(self.model_dir, name), model=self.net, optimizer=self.opt, epoch=self.epoch,
                        iteration=self.iteration, best_miou=-1.0, cfg=self.cfg, extra={"format": PRIOR_FORMAT})
        if self.claim is not None:
            self.claim.commit()

    def step(self, batch: dict, generator: torch.Generator) -> dict[str, float]:
        lr = cosine_lr(self.cfg.prior_lr, self.iteration, self.max_iter)
        for g in self.opt.param_groups:
            g["lr"] = lr
        b = {k: v.to(self.device) for k, v in batch.items()}
        losses = self.net(b["view1"], b["view2"], b["patches1"], b["patches2"], generator)
        out = {k: float(v.detach()) for k, v in losses.items()}
        if not math.isfinite(out["total"]):
            raise UserError(f"non-finite prior extractor loss at iteration {self.iteration + 1} ({out}); "
                            f"{self.model_dir}/last.pth holds the last finished epoch: lower prior_lr and resume")
        self.opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        self.opt.step()
        self.iteration += 1
        return {**out, "lr": lr}

    def epoch_run(self) -> None:
        cfg = self.cfg
        seed_everything(cfg.manual_seed + self.epoch)
        generator = torch.Generator().manual_seed(cfg.manual_seed + self.epoch)  # which patches enter eq. 6
        self.loader.sampler.set_epoch(self.epoch)
        self.net.train()
        bar = tqdm(self.loader, desc=f"prior epoch {self.epoch + 1}/{cfg.prior_epochs}", dynamic_ncols=True)
        for batch in bar:
            terms = self.step(batch, generator)
            bar.set_postfix(loss=f"{terms['total']:.3f}", lr=f"{terms['lr']:.2e}")
            for k in TERMS:
                self.writer.add_scalar(f"loss/{k}", terms[k], self.iteration)
            self.writer.add_scalar("lr", terms["lr"], self.iteration)
            if self.iteration % cfg.print_freq == 0:
                log.info("epoch %d iter %d/%d %s", self.epoch + 1, self.iteration, self.max_iter,
                         " ".join(f"{k} {terms[k]:.4f}" for k in TERMS))
            if self.stop.requested:
                last = os.path.join(self.model_dir, "last.pth")
                raise Interrupted(f"stopped in epoch {self.epoch + 1}; " + (
                    f"{last} holds the last finished epoch: continue with `resume {last}`" if os.path.isfile(last)
                    else "no epoch had finished, so nothing was saved: start again"))


def main(argv: list[str] | None = None) -> int:
    args = config_args(argv, __doc__)
    cfg = load_config(args.config, args.opts)
    return run_pretraining(cfg)


def run_pretraining(cfg) -> int:
    device = resolve_device(cfg.device)
    out = experiment_dir(cfg)
    claim = claim_output_dir(out, resume=cfg.resume, overwrite=cfg.overwrite)
    try:
        return _pretrain(cfg, device, out, claim)
    finally:
        claim.release()


def precision_line(cfg) -> tuple[int, str]:
    """The log's first line: this pre-training always computes in fp32 (no autocast)."""
    ignored = "" if cfg.amp == "off" else f"; amp {cfg.amp} applies to train.py and the tests, not here"
    return logging.INFO, f"training precision fp32 because the prior extractor's pre-training has no autocast{ignored}"


def _pretrain(cfg, device: torch.device, out: str, claim: OutputClaim) -> int:
    setup_logging(os.path.join(out, "result", "pretrain.log"), notes=cfg.get("_notes", ()), first=[precision_line(cfg)])
    dump_config(cfg, os.path.join(out, "result", "config.yaml"))
    seed_everything(cfg.manual_seed)
    run = Pretraining(cfg, device, out, claim)
    log.info("pre-training the prior extractor (%s, %s patches, global %s, local %s) on %d unlabeled images of %s: "
             "%d iterations/epoch, %d epochs, output %s", cfg.backbone, cfg.prior_patches, cfg.prior_global,
             cfg.prior_local, len(run.loader.dataset), cfg.train_list, len(run.loader), cfg.prior_epochs, out)
    with run.stop:
        while run.epoch < cfg.prior_epochs:
            run.epoch_run()
            run.epoch += 1
            run.save("last.pth")
    run.writer.close()
    final = os.path.join(run.model_dir, "prior.pth")
    shutil.copyfile(os.path.join(run.model_dir, "last.pth"), final + ".tmp")
    os.replace(final + ".tmp", final)
    log.info("done: prior extractor in %s (set qgnet_prior_weight %s)", final, final)
    return 0


if __name__ == "__main__":
    run_cli(main)
