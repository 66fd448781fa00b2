"""Stage 1 of BAM: train the base learner (PSPNet) on one fold's base classes.

    python train_base.py --config config/pascal/pascal_split0_resnet50_pspnet.yaml [key value ...]

Every image of train_list, labels remapped to the base classes (novel classes are
background), the standard supervised pipeline; validation mIoU over the base classes (without
background) on val_list picks best.pth. Outputs go to exp/<dataset>/<exp>/{model,result,tb}
like train.py's; stage 2 (`model bam`, train.py) reads model/best.pth through `base_weight`.
`resume exp/.../model/last.pth` continues an interrupted run from its last finished epoch, with
the same result as an uninterrupted run (every epoch reseeds from manual_seed + epoch).
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

from model import load_weights
from model.backbones.encoder import build_backbone
from model.bam.pspnet import PSPNet
from train import poly_lr
from util.config import dump_config, load_config
from util.data.base_dataset import base_loader
from util.engine.checkpoint import load_training_state, restore, save_checkpoint
from util.engine.guard import claim_output_dir
from util.engine.precision import Precision
from util.engine.runtime import config_args, experiment_dir, resolve_device, run_cli, seed_everything, setup_logging
from util.engine.tb import EventWriter
from util.errors import UserError
from util.evaluation.semantic import ClassCounts

log = logging.getLogger("train_base")


def build_pspnet(cfg) -> PSPNet:
    """PSPNet on the config's backbone (ImageNet weights when `pretrained`) and fold's base classes."""
    backbone = build_backbone(cfg.backbone, pretrained=cfg.pretrained, initmodel_dir=cfg.initmodel_dir,
                              bn_mode=cfg.backbone_bn)
    return PSPNet(backbone, cfg.num_train_classes, zoom_factor=cfg.zoom_factor, ignore_label=cfg.ignore_label)


def build_optimizer(net: PSPNet, cfg) -> torch.optim.Optimizer:
    """Encoder at encoder_lr_scale x, PPM + classifier at scale_lr x the poly rate of base_lr (the
    release's index_split 0 on PASCAL, -1 on COCO)."""
    groups = [{"params": list(net.backbone.parameters()), "scale": cfg.encoder_lr_scale},
              {"params": list(net.base_learner.parameters()), "scale": cfg.scale_lr}]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.base_lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.base_lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(groups, lr=cfg.base_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


@torch.no_grad()
def validate(net: PSPNet, loader, precision: Precision) -> tuple[float, list[float | None]]:
    """mIoU over the base classes 1..Nb (background excluded, as released) and every class's IoU."""
    net.eval()
    counts = ClassCounts(1 + net.num_base_classes, net.ignore_label)
    for batch in tqdm(loader, desc="validate", leave=False):
        b = precision.to_device(batch)
        with precision.autocast():
            logits = net(b["image"])
        counts.update(logits.float().argmax(dim=1), b["label"])
    net.train()
    return counts.mean_iou(range(1, 1 + net.num_base_classes)), counts.iou()


def main(argv: list[str] | None = None) -> int:
    args = config_args(argv, __doc__)
    cfg = load_config(args.config, args.opts)
    device = resolve_device(cfg.device)
    # the base learner trains in the contiguous layout (channels_last applies to the few-shot models)
    precision = Precision(device, cfg.amp, False, training=True)  # an impossible amp fails before any work
    out = experiment_dir(cfg)
    claim = claim_output_dir(out, resume=cfg.resume, overwrite=cfg.overwrite)
    try:
        return _train(cfg, device, precision, out, claim)
    finally:
        claim.release()


def _train(cfg, device: torch.device, precision: Precision, out: str, claim) -> int:
    setup_logging(os.path.join(out, "result", "train.log"), notes=cfg.get("_notes", ()),
                  first=precision.log_lines() + precision.for_evaluation().log_lines()[:1])
    resumed = load_training_state(cfg.resume, cfg) if cfg.resume else None
    dump_config(cfg, os.path.join(out, "result", "config.yaml"))
    seed_everything(cfg.manual_seed)
    net = build_pspnet(cfg).to(device)
    if cfg.weight:
        load_weights(net, cfg.weight)
    opt = build_optimizer(net, cfg)
    train_loader, val_loader = base_loader(cfg, "train"), base_loader(cfg, "val")
    max_iter = cfg.epochs * len(train_loader)
    if max_iter == 0:
        raise UserError(f"the training list {cfg.train_list} gives no full batch of {cfg.batch_size}: lower batch_size")
    start, it, best = 0, 0, -1.0
    if resumed is not None:  # checkpoints are written at epoch ends, where the RNG is reseeded
        restore(cfg.resume, resumed, {"model": net, "optimizer": opt})
        start, it, best = resumed["epoch"], resumed["iteration"], resumed["best_miou"]
        log.info("resumed from %s after epoch %d (iteration %d)", cfg.resume, start, it)
    writer = EventWriter(os.path.join(out, "tb"), purge_step=it + 1 if it else None)
    log.info("stage 1 (base learner) on %s, %s: %d classes incl. background, %d iterations/epoch, output %s",
             device, precision.name, 1 + net.num_base_classes, len(train_loader), out)
    net.train()
    for epoch in range(start, cfg.epochs):
        seed_everything(cfg.manual_seed + epoch)
        train_loader.sampler.set_epoch(epoch)
        train_loader.dataset.set_epoch(epoch)
        for batch in tqdm(train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", dynamic_ncols=True):
            lr = poly_lr(cfg.base_lr, it, max_iter, cfg.power)
            for g in opt.param_groups:
                g["lr"] = lr * g["scale"]
            b = precision.to_device(batch)
            with precision.autocast():
                _, losses = net(b["image"], b["label"])
            loss = losses["total"].float()
            if not math.isfinite(loss.item()):
                raise UserError(f"non-finite loss at iteration {it + 1}: lower base_lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            it += 1
            writer.add_scalar("base/loss", loss.item(), it)
            writer.add_scalar("base/lr", lr, it)
            if it % cfg.print_freq == 0:
                log.info("epoch %d iter %d/%d loss %.4f lr %.3g", epoch + 1, it, max_iter, loss.item(), lr)
        if cfg.val_every and (epoch + 1) % cfg.val_every == 0:
            miou, ious = validate(net, val_loader, precision.for_evaluation())
            writer.add_scalar("base/val_miou", miou, it)
            log.info("validation epoch %d: base-class mIoU %.2f (background IoU %s)", epoch + 1, miou,
                     "n/a" if ious[0] is None else f"{ious[0]:.2f}")
            if miou > best:
                best = miou
                save_checkpoint(os.path.join(out, "model", "best.pth"), model=net, optimizer=opt, epoch=epoch + 1,
                                iteration=it, best_miou=best, cfg=cfg)
        for name in ("last.pth",) if cfg.val_every else ("last.pth", "best.pth"):  # no validation: best = last
            save_checkpoint(os.path.join(out, "model", name), model=net, optimizer=opt, epoch=epoch + 1,
                            iteration=it, best_miou=best, cfg=cfg)
        claim.commit()
    writer.close()
    log.info("done: best base-class mIoU %.2f; stage 2 reads %s", best, os.path.join(out, "model", "best.pth"))
    return 0


if __name__ == "__main__":
    run_cli(main)
