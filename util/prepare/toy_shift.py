"""A second, visually different toy domain for cross-domain tests (docs/cross_domain.md).

    python -m util.prepare.toy_shift --out data/toyshift --lists lists/toyshift

The toy's classes, shapes, label format and folds, in another look: images are drawn with
another seed and then re-styled as murky underwater scenes (channel gains towards blue-green,
lower contrast, a haze offset, blur and sensor noise). Class hues keep their order but not their
values, so a model trained on the toy meets new colour statistics with the same label format.
"""
from __future__ import annotations

import argparse
import json
import logging
import os

import cv2
import numpy as np

from util.engine.cliargs import int_in
from util.prepare.common import check_generated, write_generated
from util.prepare.toy import _write_list, _write_text, generate_toy

log = logging.getLogger(__name__)

MARKER = "toy_shift.json"  # written last, after every image was re-styled
VERSION = 1
GAINS_BGR = np.array([1.15, 0.85, 0.45], np.float32)  # blue up, red down
HAZE_BGR = np.array([70.0, 45.0, 10.0], np.float32)


def shift_style(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The toy image (uint8 BGR) in the second domain's look."""
    img = image.astype(np.float32) * 0.6 * GAINS_BGR + HAZE_BGR
    img = cv2.GaussianBlur(img, (5, 5), 0) + rng.normal(0, 8, img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def generate_toy_shift(out_dir: str, lists_dir: str | None, *, n_val: int = 600, seed: int = 1, min_side: int = 96,
                       max_side: int = 160, workers: int | None = None) -> None:
    """Test images of the second domain under out_dir (val.txt; one unused training image), the
    list copied to lists_dir/test.txt."""
    generate_toy(out_dir, None, n_train=1, n_val=n_val, seed=seed, min_side=min_side, max_side=max_side,
                 workers=workers, reuse=False)  # re-styled in place below: always from fresh images
    with open(os.path.join(out_dir, "val.txt")) as f:
        lines = f.read().split("\n")[:-1]
    for i, line in enumerate(lines):
        path = os.path.join(out_dir, line.split()[0])
        cv2.imwrite(path, shift_style(cv2.imread(path, cv2.IMREAD_COLOR), np.random.default_rng([seed, i])),
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
    _write_text(os.path.join(out_dir, MARKER), json.dumps({"version": VERSION, "n_val": n_val, "seed": seed}) + "\n")
    if lists_dir:
        write_generated(os.path.join(lists_dir, "test.txt"), "\n".join(lines) + "\n")


def ensure_toy_shift(cfg) -> None:
    """Generate the second domain on first use (its data_root without a current marker)."""
    try:
        with open(os.path.join(cfg.data_root, MARKER)) as f:
            current = json.load(f).get("version") == VERSION
    except (OSError, ValueError, AttributeError):
        current = False
    if current and os.path.isfile(cfg.val_list):
        return
    if not current:
        check_generated((cfg.val_list,), f"the second toy domain at data_root {cfg.data_root}")
        log.info("second toy domain not found at %s: generating it (about 10 s, once)", cfg.data_root)
        generate_toy_shift(cfg.data_root, None)
    _write_list(cfg.val_list, os.path.join(cfg.data_root, "val.txt"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m util.prepare.toy_shift", description="Generate the second toy domain.")
    p.add_argument("--out", default="data/toyshift")
    p.add_argument("--lists", default="lists/toyshift")
    p.add_argument("--val", type=int_in(1, 1_000_000), default=600)
    p.add_argument("--seed", type=int_in(0, 2**32 - 1), default=1)
    a = p.parse_args(argv)
    generate_toy_shift(a.out, a.lists, n_val=a.val, seed=a.seed)
    return 0


if __name__ == "__main__":
    from util.engine.runtime import run_cli, setup_logging
    setup_logging()
    run_cli(main)
