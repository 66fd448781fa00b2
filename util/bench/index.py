"""Cold vs warm class-index build on a generated label tree.

    python -m util.bench.index [--labels 3000] [--side 500] [--workers N]

Cold = every label read and counted (in parallel), cache written; warm = cache hit, which
reads the list file and the cache and stats every label, never reading one; one replaced =
a label swapped by rename, the start that re-reads only that label.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from multiprocessing import Pool

import cv2
import numpy as np

from util.engine.cliargs import int_in, workers as workers_type
from util.data.index import build_class_index


def _write_label(args: tuple[str, int, int]) -> str:
    """A VOC-like label: background, 1-3 blobs of random classes, 255 borders."""
    root, i, side = args
    rng = np.random.default_rng(i)
    h, w = side * 3 // 4, side
    label = np.zeros((h, w), np.uint8)
    for cls in rng.choice(20, int(rng.integers(1, 4)), replace=False) + 1:
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(10, w // 3)), int(rng.integers(10, h // 3)))
        cv2.ellipse(label, c, axes, float(rng.uniform(0, 180)), 0, 360, int(cls), -1)
        cv2.ellipse(label, c, axes, 0.0, 0, 0, 255, 2)
    name = f"SegmentationClassAug/{i:06d}.png"
    cv2.imwrite(os.path.join(root, name), label)
    return f"JPEGImages/{i:06d}.jpg {name}\n"


def make_tree(root: str, n: int, side: int, workers: int | None) -> str:
    """Label PNGs and a list file (images are not needed to build the index)."""
    os.makedirs(os.path.join(root, "SegmentationClassAug"), exist_ok=True)
    with Pool(workers) as pool:
        lines = pool.map(_write_label, [(root, i, side) for i in range(n)], chunksize=64)
    list_path = os.path.join(root, "train.txt")
    with open(list_path, "w") as f:
        f.writelines(lines)
    return list_path


def timed_build(list_path: str, root: str, workers: int | None) -> tuple[float, int]:
    t0 = time.perf_counter()
    index = build_class_index(list_path, root, list(range(6, 21)), num_classes=20, min_pixels=2 * 32 * 32,
                              workers=workers)
    return time.perf_counter() - t0, len(index.items)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Benchmark the cold and warm class-index build.")
    p.add_argument("--labels", type=int_in(1, 1_000_000), default=3000, help="labels to generate")
    p.add_argument("--side", type=int_in(8, 8192), default=500, help="label width (height is 3/4 of it)")
    p.add_argument("--workers", type=workers_type(), default=None, help="index worker processes (default: all cores)")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_index_") as root:
        list_path = make_tree(root, a.labels, a.side, a.workers)
        cold, kept = timed_build(list_path, root, a.workers)
        warm, kept_warm = timed_build(list_path, root, a.workers)
        label = os.path.join(root, "SegmentationClassAug", f"{a.labels - 1:06d}.png")
        _write_label((root, a.labels, a.side))
        os.replace(os.path.join(root, "SegmentationClassAug", f"{a.labels:06d}.png"), label)
        replaced, _ = timed_build(list_path, root, a.workers)
    assert kept == kept_warm, "cache returned a different index"
    sys.stdout.write(f"labels: {a.labels} ({a.side}x{a.side * 3 // 4}), images kept for classes 6-20: {kept}" + "\n")
    sys.stdout.write(f"cold build (read every label, write cache): {cold:.3f} s" + "\n")
    sys.stdout.write(f"warm build (cache hit):                     {warm * 1000:.1f} ms" + "\n")
    sys.stdout.write(f"speed-up: {cold / warm:.0f}x" + "\n")
    sys.stdout.write(f"one label replaced (re-read it, rewrite cache): {replaced * 1000:.1f} ms" + "\n")
    return 0


if __name__ == "__main__":
    from util.engine.runtime import run_cli
    run_cli(main)
