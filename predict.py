"""Segment your own images with a trained checkpoint.

    python predict.py --config config/pascal/pascal_split0_resnet50.yaml --weight best.pth \\
        --support dog1.jpg dog1.png --support dog2.jpg dog2.png --query a.jpg b.jpg --out pred/

Support masks are PNGs where non-zero means object. For each query, writes <name>_mask.png
(0/255 at the image's resolution) and <name>_overlay.png. Any number of supports works; the
config's `shot` is set to that number.
"""
from __future__ import annotations

import argparse
import logging
import os

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from model import build_model, load_weights
from util.config import load_config
from util.errors import UserError
from util.engine.runtime import resolve_device, run_cli, setup_logging
from util.data.transform import test_transform
from util.evaluation.vis import overlay

log = logging.getLogger("predict")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="config the checkpoint was trained with")
    p.add_argument("--weight", required=True, help="checkpoint (own or official format)")
    p.add_argument("--support", nargs=2, action="append", required=True, metavar=("IMAGE", "MASK"))
    p.add_argument("--query", nargs="+", required=True, help="query images")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as `key value` pairs")
    return p.parse_args(argv)


def read_image(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise UserError(f"cannot read image {path}: check the path and that it is a JPEG/PNG")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32)


def read_mask(path: str, shape: tuple[int, int], image_path: str) -> np.ndarray:
    mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise UserError(f"cannot read mask {path}: check the path and that it is a PNG")
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    if mask.shape != shape:
        raise UserError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but image {image_path} is "
                        f"{shape[1]}x{shape[0]}: they must have the same size")
    return (mask > 0).astype(np.uint8)


def to_original(logits: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """Undo the test Resize exactly as scoring does: square of the longer side, crop."""
    side = max(shape)
    up = F.interpolate(logits.float(), size=(side, side), mode="bilinear", align_corners=True)
    return up[0].argmax(0)[: shape[0], : shape[1]].cpu().numpy().astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    cfg = load_config(args.config, list(args.opts) + ["shot", str(len(args.support)), "pretrained", "false"])
    device = resolve_device(cfg.device)
    net = build_model(cfg).to(device).eval()
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
    os.makedirs(args.out, exist_ok=True)
    for q_path in args.query:
        img = read_image(q_path)
        q, _ = transform(img, np.zeros(img.shape[:2], np.uint8))
        with torch.no_grad():
            logits = net(q[None].to(device), supports, support_masks)
        pred = to_original(logits, img.shape[:2])
        name = os.path.splitext(os.path.basename(q_path))[0]
        cv2.imwrite(os.path.join(args.out, f"{name}_mask.png"), pred * 255)
        vis = overlay(img.astype(np.uint8), pred)
        cv2.imwrite(os.path.join(args.out, f"{name}_overlay.png"), vis[..., ::-1])
        log.info("%s: %.1f%% of pixels predicted as the target", q_path, 100 * pred.mean())
    log.info("wrote %d prediction(s) to %s", len(args.query), args.out)
    return 0


if __name__ == "__main__":
    run_cli(main)
