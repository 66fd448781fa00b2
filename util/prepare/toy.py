"""Deterministic toy benchmark in the PASCAL layout (docs/design.md §3.6).

    python -m util.prepare toy --out data/toy [--lists lists/toy] [--train 3000] [--val 600] [--seed 0]

20 classes; class k (1-based) has its own saturated hue, texture (solid / stripes /
checker / dots) and shape. A random-init backbone barely separates them by cosine similarity,
so the heads must learn the matching (docs/data.md, "The demo"). Backgrounds are low-saturation
textured clutter, clearly unlike objects. Every image holds 1-3 objects of distinct classes
(distractors for the query class; P(1, 2, 3) = 0.5, 0.35, 0.15) and VOC's 255 band on object
borders. Each image is drawn from its own seed (seed, split, i): the output is
byte-identical for any worker count.
"""
from __future__ import annotations

import argparse
import colorsys
import json
import logging
import os
import shutil
import time
from multiprocessing import Pool

import cv2
import numpy as np

from util.engine.cliargs import int_in, workers as workers_type
from util.errors import UserError
from util.prepare.common import check_generated, write_generated

log = logging.getLogger(__name__)

NUM_CLASSES = 20
MARKER = "toy.json"  # written last: a folder without it is incomplete or not ours
VERSION = 2
# P(1, 2, 3 objects in an image). A query is drawn for each class it holds, so 70% of queries
# still contain distracting objects, while the target is most of the object area on average.
OBJECT_COUNTS = (0.5, 0.35, 0.15)


def _object_mask(rng: np.random.Generator, cls: int, h: int, w: int) -> np.ndarray:
    """Class-specific shape (ellipse, rectangle, triangle, hexagon, cross), random pose."""
    d = rng.uniform(0.35, 0.65) * min(h, w)
    cy, cx = rng.uniform(d / 3, h - d / 3), rng.uniform(d / 3, w - d / 3)
    theta, aspect = rng.uniform(0, np.pi), rng.uniform(0.65, 1.0)
    mask = np.zeros((h, w), np.uint8)
    kind = (cls - 1) % 5
    if kind == 0:
        cv2.ellipse(mask, (int(cx), int(cy)), (int(d / 2), int(d / 2 * aspect)), np.degrees(theta), 0, 360, 1, -1)
        return mask.astype(bool)
    if kind == 1:
        pts = [(-0.5, -0.5 * aspect), (0.5, -0.5 * aspect), (0.5, 0.5 * aspect), (-0.5, 0.5 * aspect)]
    elif kind == 2:
        pts = [(0.6 * np.cos(a), 0.6 * np.sin(a)) for a in np.arange(3) * 2 * np.pi / 3]
    elif kind == 3:
        pts = [(0.5 * np.cos(a), 0.5 * aspect * np.sin(a)) for a in np.arange(6) * np.pi / 3]
    else:
        t = 0.2
        pts = [(-t, -.5), (t, -.5), (t, -t), (.5, -t), (.5, t), (t, t), (t, .5), (-t, .5), (-t, t),
               (-.5, t), (-.5, -t), (-t, -t)]
    p = np.array(pts) * d
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    p = p @ rot.T + (cx, cy)
    cv2.fillPoly(mask, [np.round(p).astype(np.int32)], 1)
    return mask.astype(bool)


def class_colour(cls: int) -> tuple[float, float, float]:
    """Hue of class k: 18 deg steps, permuted (x7 mod 20) so a fold's classes are far apart."""
    return ((7 * (cls - 1)) % NUM_CLASSES) / NUM_CLASSES, 0.9, 0.9


def _object_texture(rng: np.random.Generator, cls: int, h: int, w: int) -> np.ndarray:
    """Saturated class colour with the class's pattern in a darker shade of the same hue."""
    hue, sat, val = class_colour(cls)
    hue = (hue + rng.uniform(-0.012, 0.012)) % 1.0
    base = np.array(colorsys.hsv_to_rgb(hue, sat * rng.uniform(0.85, 1.1), val * rng.uniform(0.8, 1.1)))
    base = np.clip(base, 0, 1) * 255
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy + rng.uniform(0, 20), xx + rng.uniform(0, 20)
    period = 6 + 2 * ((cls - 1) // 4 % 3)
    kind = (cls - 1) % 4
    if kind == 0:
        pat = np.zeros((h, w), np.float32)
    elif kind == 1:
        a = np.pi / 4 * ((cls - 1) // 4 % 4)
        pat = ((xx * np.cos(a) + yy * np.sin(a)) // (period / 2) % 2).astype(np.float32)
    elif kind == 2:
        pat = ((xx // period + yy // period) % 2).astype(np.float32)
    else:
        pat = (((xx % period) - period / 2) ** 2 + ((yy % period) - period / 2) ** 2 < (period / 3) ** 2)
        pat = pat.astype(np.float32)
    return base * (1 - 0.5 * pat[..., None])


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Grey, low-saturation clutter: smooth shading, lines, boxes, faint stripes."""
    g = int(rng.integers(3, 6))
    shade = cv2.resize(rng.uniform(60, 200, (g, g)).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    img = np.repeat(shade[..., None], 3, axis=2)
    for _ in range(int(rng.integers(4, 10))):
        grey = float(rng.uniform(40, 220))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if rng.random() < 0.5:
            cv2.line(img, p1, p2, (grey, grey, grey), int(rng.integers(1, 4)))
        else:
            cv2.rectangle(img, p1, p2, (grey, grey, grey), int(rng.integers(-1, 3)) or 1)
    yy, xx = np.mgrid[0:h, 0:w]
    period, a = rng.uniform(4, 12), rng.uniform(0, np.pi)
    img += (np.sin((xx * np.cos(a) + yy * np.sin(a)) * 2 * np.pi / period) * rng.uniform(0, 15))[..., None]
    return img * (1 + rng.uniform(-0.06, 0.06, 3)).astype(np.float32)  # faint tint


def render(seed: int, split: int, i: int, min_side: int, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """One toy image (uint8 BGR) and its label (uint8, 0 / class / 255 band)."""
    rng = np.random.default_rng([seed, split, i])
    h, w = (int(v) for v in rng.integers(min_side, max_side + 1, 2))
    img = _background(rng, h, w)
    label = np.zeros((h, w), np.uint8)
    for cls in rng.choice(NUM_CLASSES, int(rng.choice(3, p=OBJECT_COUNTS)) + 1, replace=False) + 1:
        mask = _object_mask(rng, int(cls), h, w)
        img[mask] = _object_texture(rng, int(cls), h, w)[mask]
        label[mask] = cls
    kernel = np.ones((3, 3), np.uint8)
    label[cv2.dilate(label, kernel) != cv2.erode(label, kernel)] = 255  # VOC-style border band
    img = cv2.GaussianBlur(img, (3, 3), 0) + rng.normal(0, 4, img.shape).astype(np.float32)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR), label


def _write_one(args: tuple) -> str:
    root, name, split, i, seed, min_side, max_side = args
    img, label = render(seed, split, i, min_side, max_side)
    cv2.imwrite(os.path.join(root, "JPEGImages", f"{name}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(os.path.join(root, "SegmentationClassAug", f"{name}.png"), label)
    return f"JPEGImages/{name}.jpg SegmentationClassAug/{name}.png\n"


def _write_list(path: str, source: str) -> None:
    """Copy a list the generator wrote inside its tree to a list path the config names; an
    existing file that no generator wrote there is refused (util/prepare/common.py)."""
    with open(source) as f:
        write_generated(path, f.read())


def _write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def generate_toy(out_dir: str, lists_dir: str | None = "lists/toy", *, n_train: int = 3000, n_val: int = 600,
                 seed: int = 0, min_side: int = 96, max_side: int = 160, workers: int | None = None,
                 reuse: bool = True) -> None:
    """Write the toy tree to out_dir (built in a temporary folder, renamed when complete) with
    train.txt / val.txt inside it and, if lists_dir is given, copies there. With `reuse`, a tree
    made by the same generator with the same options is kept untouched."""
    if not (16 <= min_side <= max_side) or n_train < 1 or n_val < 1:
        raise UserError(f"toy sizes: need 16 <= min_side <= max_side (got {min_side}, {max_side}) "
                        f"and at least one train and one val image (got {n_train}, {n_val})")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"'{out_dir}' is a file, not a folder: pick another --out (data_root) for the toy data")
    if os.path.isdir(out_dir) and not os.path.isfile(os.path.join(out_dir, MARKER)):
        raise UserError(f"'{out_dir}' exists and is not a toy dataset (no {MARKER}): pick another --out or remove it")
    params = dict(version=VERSION, n_train=n_train, n_val=n_val, seed=seed, min_side=min_side, max_side=max_side)
    if reuse and _marker(out_dir) == params:  # the same tree is already there: idempotent, nothing rewritten
        log.info("toy data at %s is current (same generator and options): kept as it is", out_dir)
        _copy_lists(out_dir, lists_dir)
        return
    if lists_dir:
        check_generated([os.path.join(lists_dir, n) for n in ("train.txt", "val.txt")], f"toy data for {out_dir}")
    replace = os.path.isdir(out_dir)  # an earlier toy tree: regenerate it
    tmp = f"{out_dir.rstrip('/')}.tmp-{os.getpid()}"
    for sub in ("JPEGImages", "SegmentationClassAug"):
        os.makedirs(os.path.join(tmp, sub), exist_ok=True)
    jobs = [(tmp, f"toy_{name}_{i:06d}", split, i, seed, min_side, max_side)
            for split, (name, n) in enumerate((("train", n_train), ("val", n_val))) for i in range(n)]
    with Pool(workers or os.cpu_count() or 1) as pool:
        lines = pool.map(_write_one, jobs, chunksize=16)
    _write_text(os.path.join(tmp, "train.txt"), "".join(lines[:n_train]))
    _write_text(os.path.join(tmp, "val.txt"), "".join(lines[n_train:]))
    _write_text(os.path.join(tmp, MARKER), json.dumps(params, indent=1) + "\n")
    _install(tmp, out_dir, replace)
    _copy_lists(out_dir, lists_dir)


def _marker(root: str) -> dict | None:
    """The options recorded in root's marker (None when unreadable or absent)."""
    try:
        with open(os.path.join(root, MARKER)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _copy_lists(out_dir: str, lists_dir: str | None) -> None:
    """The tree's lists into lists_dir, each rewritten only if its content changed."""
    for name in ("train.txt", "val.txt") if lists_dir else ():
        _write_list(os.path.join(lists_dir, name), os.path.join(out_dir, name))


def _install(tmp: str, out_dir: str, replace: bool) -> None:
    """Rename into place; if another process (a DDP rank) finished first, keep its tree."""
    if replace:
        shutil.rmtree(out_dir)
    os.makedirs(os.path.dirname(os.path.abspath(out_dir)), exist_ok=True)
    try:
        os.rename(tmp, out_dir)
    except OSError:
        if not os.path.isfile(os.path.join(out_dir, MARKER)):
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _tree_version(root: str) -> int | None:
    """Generator version recorded in root's marker (None: no marker, 0: unreadable marker)."""
    try:
        with open(os.path.join(root, MARKER)) as f:
            return int(json.load(f).get("version", 0))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError):
        return 0


def ensure_toy(cfg) -> None:
    """Generate the toy data on first use when a toy config's data_root or lists are absent, and
    again when the tree was written by an older generator (its images would differ)."""
    root, lists = cfg.data_root, (cfg.train_list, cfg.val_list)
    version = _tree_version(root)
    if version == VERSION and all(os.path.isfile(p) for p in lists):
        return
    if version is None and os.path.isdir(root) and all(os.path.isfile(p) for p in lists):
        return  # a toy-layout tree made by hand (no marker): the user's data, use it as it is
    fresh = version != VERSION
    if fresh:
        check_generated(lists, f"the toy data at data_root {root}")
        log.info("toy data %s at %s: generating it (about half a minute)",
                 "not found" if version is None else f"of generator version {version} (now {VERSION})", root)
        t0 = time.time()
        generate_toy(root, None)
        log.info("toy data written to %s in %.1f s", root, time.time() - t0)
    for src, dst in zip(("train.txt", "val.txt"), lists):
        if fresh or not os.path.isfile(dst):  # lists must describe the tree just written
            _write_list(dst, os.path.join(root, src))
            log.info("toy list written: %s", dst)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The generator's options (of `python -m util.prepare toy`)."""
    p.add_argument("--out", default="data/toy", help="data_root to write (JPEGImages/, SegmentationClassAug/)")
    p.add_argument("--lists", default="lists/toy", help="where train.txt / val.txt are also written")
    p.add_argument("--train", type=int_in(1, 1_000_000), default=3000, help="training images")
    p.add_argument("--val", type=int_in(1, 1_000_000), default=600, help="validation/test images")
    p.add_argument("--images", type=int_in(6, 1_200_000), help="total images (overrides --train/--val, split 5:1)")
    p.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0)
    p.add_argument("--min-side", type=int_in(16, 4096), default=96)
    p.add_argument("--max-side", type=int_in(16, 4096), default=160)
    p.add_argument("--workers", type=workers_type(), default=None)


def run(a: argparse.Namespace) -> dict[str, int]:
    """Generate the tree the parsed options describe; returns what was written."""
    n_train, n_val = (a.images - a.images // 6, a.images // 6) if a.images else (a.train, a.val)
    t0 = time.time()
    generate_toy(str(a.out), str(a.lists), n_train=n_train, n_val=n_val, seed=a.seed, min_side=a.min_side,
                 max_side=a.max_side, workers=a.workers)
    log.info("toy benchmark: %d train + %d val images in %s, lists in %s (%.1f s)",
             n_train, n_val, a.out, a.lists, time.time() - t0)
    return {"train": n_train, "val": n_val}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m util.prepare toy", description="Generate the deterministic toy "
                                "benchmark (PASCAL layout).")
    add_arguments(p)
    run(p.parse_args(argv))
    return 0


if __name__ == "__main__":
    from util.engine.runtime import run_cli, setup_logging
    setup_logging()
    run_cli(main)
