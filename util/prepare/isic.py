"""ISIC 2018 task 1 -> class maps (lesion = its diagnosis class) and lists/isic/test.txt.

The download holds ISIC2018_Task1-2_Training_Input/<id>.jpg and
ISIC2018_Task1_Training_GroundTruth/<id>_segmentation.png (binary lesion masks). The
cross-domain benchmark groups the images into three classes by diagnosis, read from a
class_id.csv with `ID,Class` rows (PATNet's data/isic/class_id.csv); images it does not
list are left out.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from util.data.benchmarks.isic import NAMES
from util.errors import UserError
from util.io.textfile import read_utf8
from util.prepare.common import require_dir, require_file
from util.prepare.masks import LABELS, LabelJob, finish_target, link_source

IMAGES = "ISIC2018_Task1-2_Training_Input"
MASKS = "ISIC2018_Task1_Training_GroundTruth"


def read_classes(path: Path) -> dict[str, int]:
    """Image id -> class id (1-based, NAMES order) from an `ID,Class` csv. Excel's UTF-8 (with a
    byte-order mark) reads as plain UTF-8; other encodings are refused naming the line."""
    require_file(path, "class_id.csv with 'ID,Class' rows (the diagnosis of every image)")
    text = read_utf8(str(path), "save the csv as UTF-8 (Excel: 'CSV UTF-8'), or use the benchmark's class_id.csv")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or ()]
    if "ID" not in header or "Class" not in header:
        raise UserError(f"{path}:1: the header is {','.join(header) or 'empty'}, not 'ID,Class': use the csv the "
                        "benchmark defines (its first line is ID,Class)")
    reader.fieldnames = header
    out = {}
    for no, row in enumerate(reader, 2):
        name = (row.get("Class") or "").strip()
        if name not in NAMES or not row.get("ID"):
            raise UserError(f"{path}:{no}: class '{name}' is not one of {', '.join(NAMES)} (or the ID is empty): "
                            "fix the row, or use the csv the benchmark defines")
        out[row["ID"].strip()] = NAMES.index(name) + 1
    return out


def prepare_isic(src: Path, classes: Path, out: Path, lists: Path, *, binarise: bool = False,
                 workers: int = 1, skip_bad: bool = False) -> dict[str, int]:
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
    return finish_target("ISIC 2018", NAMES, jobs, images, out, lists, workers, skip_bad)
