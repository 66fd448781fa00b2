"""Deepglobe land cover -> tiles, their class maps and lists/deepglobe/test.txt.

The download (train/ of the land-cover challenge) holds <id>_sat.jpg and <id>_mask.png
(RGB colour codes). As PATNet's preprocessing: every image and mask is cut into 6 x 6 tiles
(408 px from 2448), and a tile is kept when its mask has two colours at least and each colour
covers more than 4.8% of it.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from util.data.benchmarks.deepglobe import COLOURS, NAMES
from util.errors import UserError
from util.io.imagefile import imread
from util.prepare.common import TMP_MARK, require_dir, remove_stale_tmp, run_parallel
from util.prepare.masks import LABELS, SKIP_HINT, LabelJob, colour_mask, finish_target, warn_skipped

TILES = "tiles"
GRID = 6
MIN_SHARE = 0.048
PALETTE = {(0, 0, 0): 0, **{rgb: cls for cls, rgb in enumerate(COLOURS, 1)}}
DONE = ".done"  # marks an image whose tiles are all written


def tile_boxes(height: int, width: int, grid: int = GRID) -> list[tuple[int, int, int, int, str]]:
    """(y0, y1, x0, x1, suffix) of the grid x grid tiles, bounds rounded down as PATNet's."""
    return [(int(i * height / grid), int((i + 1) * height / grid), int(j * width / grid),
             int((j + 1) * width / grid), f"{i}{j}") for i in range(grid) for j in range(grid)]


def keep_tile(label: np.ndarray) -> bool:
    """Two classes (unknown counted) at least, each above MIN_SHARE of the tile."""
    counts = np.bincount(label.ravel())
    counts = counts[counts > 0]
    return len(counts) > 1 and counts.min() / label.size > MIN_SHARE


def _imwrite_atomic(path: Path, image: np.ndarray) -> None:
    tmp = path.with_name(f"{path.stem}{TMP_MARK}{os.getpid()}{path.suffix}")
    if not cv2.imwrite(str(tmp), image):
        raise UserError(f"cannot write {path}: check the --out folder is writable")
    os.replace(tmp, path)


def read_pair(sat: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An image and its class map; unreadable files and masks that cannot label the image refused."""
    image = imread(str(sat), cv2.IMREAD_COLOR, "image")
    if image is None:
        raise UserError(f"image '{sat}' is missing or not readable: download Deepglobe again")
    label = colour_mask(mask_path, PALETTE)
    if label.shape != image.shape[:2]:
        raise UserError(f"mask '{mask_path}' is {label.shape[1]}x{label.shape[0]} but its image is "
                        f"{image.shape[1]}x{image.shape[0]}: download Deepglobe again")
    return image, label


def cut_image(args: tuple[Path, Path, Path, bool]) -> str | None:
    """Tiles of one image and mask (skipped when a previous run finished it); with --skip-bad,
    a pair that cannot be read is left out and the reason returned."""
    sat, mask_path, out, skip_bad = args
    done = out / TILES / f"{sat.stem}{DONE}"
    if done.exists():
        return None
    try:
        image, label = read_pair(sat, mask_path)
    except UserError as e:
        if skip_bad:
            return str(e)
        raise UserError(f"{e}{SKIP_HINT}") from None
    stem = sat.stem[:-len("_sat")]
    for y0, y1, x0, x1, suffix in tile_boxes(*label.shape):
        tile = label[y0:y1, x0:x1]
        if keep_tile(tile):
            _imwrite_atomic(out / TILES / f"{stem}_{suffix}.jpg", image[y0:y1, x0:x1])
            _imwrite_atomic(out / LABELS / f"{stem}_{suffix}.png", tile)
    done.touch()
    return None


def prepare_deepglobe(src: Path, out: Path, lists: Path, *, workers: int = 1,
                      skip_bad: bool = False) -> dict[str, int]:
    """Tiles, class maps and the test list of the Deepglobe land-cover images."""
    require_dir(src, "the Deepglobe land-cover folder holding <id>_sat.jpg and <id>_mask.png (its train/)")
    sats = sorted(src.glob("*_sat.jpg"))
    if not sats:
        raise UserError(f"{src}: no <id>_sat.jpg image: pass the Deepglobe land-cover train/ folder as --src")
    missing = [s.name for s in sats if not (src / s.name.replace("_sat.jpg", "_mask.png")).is_file()]
    if missing:
        raise UserError(f"{len(missing)} Deepglobe masks missing (first: {missing[0].replace('_sat.jpg', '_mask.png')}): "
                        "every <id>_sat.jpg needs its <id>_mask.png; download the train/ folder again")
    for folder in (TILES, LABELS):
        (out / folder).mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(out / folder)
    pairs = [(s, src / s.name.replace("_sat.jpg", "_mask.png"), out, skip_bad) for s in sats]
    warn_skipped(run_parallel(cut_image, pairs, workers, "tiles"), "Deepglobe")
    labels = sorted((out / LABELS).glob("*.png"))
    jobs = [LabelJob(lbl, lbl) for lbl in labels]  # written above: finish_target only checks and lists them
    images = [f"{TILES}/{lbl.stem}.jpg" for lbl in labels]
    return finish_target("Deepglobe", NAMES, jobs, images, out, lists, workers)
