"""Segment your own images with a trained checkpoint.

    python predict.py --config config/pascal/pascal_split0_resnet50.yaml --weight best.pth \\
        --support dog1.jpg dog1.png --support dog2.jpg dog2.png --query a.jpg b.jpg --out pred/

Support masks are PNGs where non-zero means object. For each query, writes <name>_pred.png
(0/255 at the image's resolution) and <name>_pred_overlay.png; queries with the same file name
from different folders get their folder in the name (a/x.jpg -> a_x_pred.png). Inputs are never
written over, and existing files only with --overwrite. Any number of supports works; the
config's `shot` is set to that number.
"""
from __future__ import annotations

import argparse
import logging
import os


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="config the checkpoint was trained with")
    p.add_argument("--weight", required=True, help="checkpoint (own or official format)")
    p.add_argument("--support", nargs=2, action="append", required=True, metavar=("IMAGE", "MASK"))
    p.add_argument("--query", nargs="+", required=True, help="query images")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs of the same name")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as `key value` pairs")
    return p.parse_args(argv)


if __name__ == "__main__":  # --help and argument mistakes answer before torch loads (well under a second)
    from util.engine.runtime import answer_early

    answer_early(__doc__, parse_args)

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from model import build_model, load_weights
from util.config import load_config
from util.errors import UserError
from util.io.imagefile import imread
from util.data.transform import test_transform
from util.engine.guard import writable_error, write_atomic
from util.engine.precision import Precision
from util.engine.runtime import resolve_device, run_cli, setup_logging
from util.evaluation.vis import overlay

log = logging.getLogger("predict")


def read_image(path: str) -> np.ndarray:
    img = imread(path, cv2.IMREAD_COLOR, "image")
    if img is None:
        raise UserError(f"cannot read image {path}: check the path and that it is a JPEG/PNG")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32)


def read_mask(path: str, shape: tuple[int, int], image_path: str) -> np.ndarray:
    mask = imread(path, cv2.IMREAD_UNCHANGED, "mask")
    if mask is None:
        raise UserError(f"cannot read mask {path}: check the path and that it is a PNG")
    if mask.ndim == 3:
        mask = mask_of_channels(mask)
    if mask.shape != shape:
        raise UserError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but image {image_path} is "
                        f"{shape[1]}x{shape[0]}: they must have the same size")
    if not mask.any():
        raise UserError(f"mask {path} is empty (no non-zero pixel), so it shows no object to look for: "
                        "paint the object in it, or leave this support out")
    return (mask > 0).astype(np.uint8)


def mask_of_channels(mask: np.ndarray) -> np.ndarray:
    """A colour mask's object is where its colour channels are non-zero; the alpha channel of an
    RGBA file (255 everywhere when saved opaque) is read only when the colours are all black,
    i.e. when the object was painted into the transparency."""
    colour = mask[..., :3].max(axis=2)
    if mask.shape[2] == 4 and not colour.any():
        return mask[..., 3]
    return colour


def output_names(queries: list[str]) -> list[str]:
    """One distinct name per query: the file stem, with as many parent folders as it takes to
    tell apart queries of the same file name."""
    parts = [os.path.normpath(os.path.abspath(q)).split(os.sep) for q in queries]
    depth = [1] * len(queries)
    while True:
        names = ["_".join(p[-d:-1] + [os.path.splitext(p[-1])[0]]) for p, d in zip(parts, depth)]
        clash = {n for n in names if names.count(n) > 1}
        if not clash:
            return names
        grown = False
        for i, n in enumerate(names):
            if n in clash and depth[i] < len(parts[i]):
                depth[i] += 1
                grown = True
        if not grown:  # the same path given twice
            raise UserError(f"query {queries[names.index(next(iter(clash)))]} is given twice: list it once")


def plan_outputs(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """(query, mask file, overlay file) per query, checked before any work: nothing an input, and
    nothing existing unless --overwrite."""
    inputs = {os.path.realpath(p) for pair in args.support for p in pair} | {os.path.realpath(q) for q in args.query}
    plan = [(q, os.path.join(args.out, f"{n}_pred.png"), os.path.join(args.out, f"{n}_pred_overlay.png"))
            for q, n in zip(args.query, output_names(args.query))]
    for _, *outs in plan:
        for out in outs:
            if os.path.realpath(out) in inputs:
                raise UserError(f"the output {out} would replace an input file: pass another --out folder")
            if os.path.exists(out) and not args.overwrite:
                raise UserError(f"{out} exists: pass --overwrite to replace it, or another --out folder")
    return plan


def write_png(path: str, img: np.ndarray) -> None:
    """Encode in memory, then write atomically: a full disk leaves no half image behind."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(img))
    if not ok:
        raise UserError(f"could not encode {path} as PNG")
    write_atomic(path, data.tobytes())


def to_original(logits: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """Undo the test Resize exactly as scoring does: square of the longer side, crop."""
    side = max(shape)
    up = F.interpolate(logits.float(), size=(side, side), mode="bilinear", align_corners=True)
    return up[0].argmax(0)[: shape[0], : shape[1]].cpu().numpy().astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config, list(args.opts) + ["shot", str(len(args.support)), "pretrained", "false"])
    device = resolve_device(cfg.device)
    precision = Precision.from_config(cfg, device)  # fp32 unless amp bf16/fp16; impossible settings fail here
    setup_logging(notes=cfg.get("_notes", ()), first=precision.log_lines())
    if cfg.ifsl:
        raise UserError(f"predict.py segments one class (binary); model {cfg.model} with ifsl true predicts FS-CS "
                        "episodes: score it with test.py, or predict with ifsl false and a binary method")
    plan = plan_outputs(args)
    net = build_model(cfg).to(device, memory_format=precision.memory_format).eval()
    load_weights(net, args.weight)
    transform = test_transform(cfg)
    sup, masks = [], []
    for img_path, mask_path in args.support:
        img = read_image(img_path)
        s, m = transform(img, read_mask(mask_path, img.shape[:2], img_path))
        sup.append(s)
        masks.append(m)
    supports = torch.stack(sup)[None].to(device)       # [1,K,3,S,S]
    support_masks = torch.stack(masks)[None].to(device)  # [1,K,S,S]
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        raise writable_error(args.out, e) from None
    for q_path, mask_file, overlay_file in plan:
        img = read_image(q_path)
        q, _ = transform(img, np.zeros(img.shape[:2], np.uint8))
        b = precision.to_device({"query": q[None]})
        with torch.no_grad(), precision.autocast():
            logits = net(b["query"], supports, support_masks)
        pred = to_original(logits, img.shape[:2])
        write_png(mask_file, pred * 255)
        write_png(overlay_file, overlay(img.astype(np.uint8), pred)[..., ::-1])
        log.info("%s: %.1f%% of pixels predicted as the target -> %s", q_path, 100 * pred.mean(), mask_file)
    log.info("wrote %d prediction(s) to %s", len(args.query), args.out)
    return 0


if __name__ == "__main__":
    run_cli(main)
