"""ISIC 2018 task 1 -> class maps (lesion = its diagnosis class) and lists/isic/test.txt.

The download holds ISIC2018_Task1-2_Training_Input/<id>.jpg and
ISIC2018_Task1_Training_GroundTruth/<id>_segmentation.png (binary lesion masks). The
cross-domain benchmark groups the images into three classes by diagnosis, read from a
class_id.csv with `ID,Class` rows (PATNet's data/isic/class_id.csv); images it does not
list are left out.
"""
from __future__ import annotations

import csv
from pathlib import Path

from util.data.benchmarks.isic import NAMES
from util.errors import UserError
from util.prepare.common import require_dir, require_file
from util.prepare.masks import LABELS, LabelJob, finish_target, link_source

IMAGES = "ISIC2018_Task1-2_Training_Input"
MASKS = "ISIC2018_Task1_Training_GroundTruth"


def read_classes(path: Path) -> dict[str, int]:
    """Image id -> class id (1-based, NAMES order) from an `ID,Class` csv."""
    require_file(path, "class_id.csv with 'ID,Class' rows (the diagnosis of every image)")
    out = {}
    with open(path, newline="", encoding="utf-8") as f:
        for no, row in enumerate(csv.DictReader(f), 2):
            name = (row.get("Class") or "").strip()
            if name not in NAMES or not row.get("ID"):
                raise UserError(f"{path}:{no}: class '{name}' is not one of {', '.join(NAMES)} (or the ID is empty): "
                                "fix the row, or use the csv the benchmark defines")
            out[row["ID"].strip()] = NAMES.index(name) + 1
    return out


def prepare_isic(src: Path, classes: Path, out: Path, lists: Path, *, binarise: bool = False,
                 workers: int = 1) -> dict[str, int]:
    """Class maps and the test list of the ISIC 2018 images the csv classifies."""
    require_dir(src / IMAGES, f"the ISIC 2018 task 1 training images ({IMAGES}/ inside --src)")
    require_dir(src / MASKS, f"the ISIC 2018 task 1 training masks ({MASKS}/ inside --src)")
    by_id = read_classes(classes)
    prefix = link_source(src, out)
    jobs, images = [], []
    for image in sorted((src / IMAGES).glob("*.jpg")):
        if image.stem in by_id:
            mask = src / MASKS / f"{image.stem}_segmentation.png"
            jobs.append(LabelJob(mask, out / LABELS / f"{image.stem}.png", by_id[image.stem], binarise))
            images.append(f"{prefix}{IMAGES}/{image.name}")
    return finish_target("ISIC 2018", NAMES, jobs, images, out, lists, workers)
