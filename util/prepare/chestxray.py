"""Chest X-ray lung masks -> class maps (lungs = class 1) and lists/chestxray/test.txt.

The download (Kaggle "chest-xray-masks-and-labels", Montgomery + Shenzhen sets) holds
CXR_png/<id>.png and masks/<id>_mask.png (Montgomery masks are named <id>.png); every
mask with its image is one test image.
"""
from __future__ import annotations

from pathlib import Path

from util.data.benchmarks.chestxray import NAMES
from util.prepare.common import missing_error, require_dir
from util.prepare.masks import LABELS, LabelJob, finish_target, link_source


def prepare_chestxray(src: Path, out: Path, lists: Path, *, binarise: bool = False,
                      workers: int = 1, skip_bad: bool = False) -> dict[str, int]:
    """Class maps and the test list of every lung mask with its radiograph."""
    require_dir(src / "CXR_png", "the radiographs (CXR_png/ inside --src)")
    require_dir(src / "masks", "the lung masks (masks/ inside --src)")
    prefix = link_source(src, out)
    jobs, images, missing = [], [], []
    for mask in sorted((src / "masks").glob("*.png")):
        stem = mask.stem[:-len("_mask")] if mask.stem.endswith("_mask") else mask.stem
        if not (src / "CXR_png" / f"{stem}.png").is_file():
            missing.append(f"CXR_png/{stem}.png")
            continue
        jobs.append(LabelJob(mask, out / LABELS / f"{stem}.png", 1, binarise))
        images.append(f"{prefix}CXR_png/{stem}.png")
    if missing:
        raise missing_error("radiographs of masks", missing, "download the dataset again (images and masks)")
    return finish_target("Chest X-ray", NAMES, jobs, images, out, lists, workers, skip_bad)
