"""COCO 2014 instances -> one class-label PNG per image, image links, lists (docs/design.md §3.1).

Category ids map to 1..80 in sorted-id order, 0 = background, crowd regions = 255.
Instances are painted largest first, so a small object lying on a larger one stays visible.
Every image gets a label (all 0 when it has no annotation) and a list line; PFENet's lists
hold only the annotated ones, which gives the same class index (an empty label has no class).
OUT/train2014 and OUT/val2014 are symlinks to the COCO image folders unless OUT already
holds them (e.g. when OUT is the COCO folder itself).
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from util.errors import UserError
from util.prepare.common import (missing_error, remove_stale_tmp, require_dir, require_file, run_parallel,
                          write_lines_atomic, write_png_atomic)

log = logging.getLogger(__name__)

COCO_WHAT = "the COCO 2014 folder holding train2014/, val2014/ and annotations/ (pass it as --coco)"
SPLITS = ("train2014", "val2014")
CROWD = 255


def instances_path(coco: Path, split: str) -> Path:
    return coco / "annotations" / f"instances_{split}.json"


def find_sources(coco: Path) -> None:
    """Check the COCO layout before the (slow) annotation files are loaded."""
    require_dir(coco, COCO_WHAT)
    for split in SPLITS:
        require_dir(coco / split, f"the {split} images inside {COCO_WHAT}")
        require_file(instances_path(coco, split), "the instances json from annotations_trainval2014.zip")


def load_instances(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark is not part of the json
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable json file ({err}); download "
                        "annotations_trainval2014.zip again") from err
    if not isinstance(data, dict) or not all(k in data for k in ("images", "annotations", "categories")):
        raise UserError(f"{path}: not a COCO instances file (needs 'images', 'annotations', 'categories')")
    return data


def category_map(data: dict, path: Path) -> dict[int, int]:
    """COCO category id -> training class 1..N, in sorted-id order (80 classes on COCO)."""
    try:
        ids = sorted({int(c["id"]) for c in data["categories"]})
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: malformed 'categories' entry ({err!r})") from err
    if not 0 < len(ids) < CROWD:
        raise UserError(f"{path}: has {len(ids)} categories; expected 1..254 (COCO has 80)")
    return {cat: index for index, cat in enumerate(ids, 1)}


def group_annotations(data: dict, cat_map: dict[int, int], path: Path) -> dict[int, list]:
    """image id -> [file_name, height, width, [(value, segmentation, ann id), ...]]."""
    try:
        images = {img["id"]: [img["file_name"], int(img["height"]), int(img["width"]), []]
                  for img in data["images"]}
        for ann in data["annotations"]:
            where = f"{path}: annotation {ann.get('id')}"
            if ann["image_id"] not in images:
                raise UserError(f"{where}: refers to image id {ann['image_id']}, which is not in 'images'")
            if ann["category_id"] not in cat_map:
                raise UserError(f"{where}: category id {ann['category_id']} is not in 'categories'")
            value = CROWD if ann.get("iscrowd", 0) else cat_map[ann["category_id"]]
            images[ann["image_id"]][3].append((value, ann["segmentation"], ann.get("id")))
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: malformed COCO instances file, missing or bad field {err!r}") from err
    return images


def ann_to_rle(segmentation, height: int, width: int) -> dict | None:
    """Polygons, uncompressed RLE (crowd) or compressed RLE -> one compressed RLE; None
    when only degenerate polygons (< 3 points) remain."""
    if isinstance(segmentation, list):
        polygons = [p for p in segmentation if len(p) >= 6]
        return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width)) if polygons else None
    if isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        if list(segmentation["size"]) != [height, width]:
            raise ValueError(f"RLE size {segmentation['size']} differs from the image size {[height, width]}")
        if isinstance(segmentation["counts"], list):
            return mask_utils.frPyObjects(segmentation, height, width)
        return segmentation
    raise ValueError("segmentation is neither polygons nor RLE")


def paint_label(height: int, width: int, anns: list, where: str) -> np.ndarray:
    """Paint instances by decreasing mask area; later (smaller) ones overwrite earlier ones,
    ties keep file order. Crowd regions take part in the same order with value 255."""
    masks = []
    with warnings.catch_warnings():  # pycocotools' decode predates numpy 2's copy keyword
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        for value, segmentation, ann_id in anns:
            try:
                rle = ann_to_rle(segmentation, height, width)
                mask = None if rle is None else mask_utils.decode(rle)
            except (ValueError, TypeError, KeyError) as err:
                raise UserError(f"{where}: annotation {ann_id} has an unreadable segmentation ({err})") from err
            if mask is not None:
                masks.append((int(mask.sum()), value, mask))
    label = np.zeros((height, width), np.uint8)
    for _, value, mask in sorted(masks, key=lambda item: -item[0]):
        label[mask > 0] = value
    return label


def _paint_task(task: tuple) -> None:
    """Worker: one image's annotations -> one label PNG."""
    dst, height, width, anns, where = task
    write_png_atomic(Path(dst), paint_label(height, width, anns, where))


def link_image_dir(coco: Path, out: Path, split: str) -> bool:
    """Make OUT/<split> the COCO image folder (symlink) unless it already exists."""
    dst = out / split
    if dst.exists():
        return False
    if dst.is_symlink():  # broken link from a moved dataset
        dst.unlink()
    out.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink((coco / split).resolve(), dst, target_is_directory=True)
    except OSError as err:
        raise UserError(f"{dst}: cannot create a symlink ({err}); pass --out {coco} to write the "
                        "labels beside the COCO images instead") from err
    return True


def prepare_split(coco: Path, out: Path, split: str, workers: int,
                  expected_map: dict | None) -> tuple[list[str], dict, int]:
    """Labels of one split; returns (list lines, category map, labels written)."""
    path = instances_path(coco, split)
    log.info("loading %s", path)
    data = load_instances(path)
    cat_map = category_map(data, path)
    if expected_map is not None and cat_map != expected_map:
        raise UserError(f"{path}: its categories differ from {instances_path(coco, SPLITS[0])}; "
                        "use the two files of one COCO 2014 release")
    images = group_annotations(data, cat_map, path)
    del data
    missing = [str(out / split / v[0]) for v in images.values() if not (out / split / v[0]).is_file()]
    if missing:
        raise missing_error("images", missing, f"{path} lists them: download {split}.zip again")
    label_dir = out / "annotations" / split
    label_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(label_dir)
    lines, tasks = [], []
    for file_name, height, width, anns in images.values():
        dst = label_dir / f"{Path(file_name).stem}.png"
        lines.append(f"{split}/{file_name} annotations/{split}/{dst.name}")
        if not dst.exists():
            tasks.append((str(dst), height, width, anns, f"{path} image {file_name}"))
    run_parallel(_paint_task, tasks, workers, desc=f"COCO {split} labels")
    return sorted(lines), cat_map, len(tasks)


def prepare_coco(coco: Path, out: Path, lists_dir: Path, *, workers: int = 1) -> dict[str, int]:
    """Make OUT a COCO data root and write lists_dir/{train,val}.txt; reruns skip done work."""
    coco, out = Path(coco), Path(out)
    find_sources(coco)
    report = {"labels_written": 0, "labels_skipped": 0, "dirs_linked": 0, "lists_written": 0}
    cat_map = None
    for split in SPLITS:
        report["dirs_linked"] += link_image_dir(coco, out, split)
        lines, cat_map, written = prepare_split(coco, out, split, workers, cat_map)
        name = split.replace("2014", "")
        report["lists_written"] += write_lines_atomic(Path(lists_dir) / f"{name}.txt", lines)
        report["labels_written"] += written
        report["labels_skipped"] += len(lines) - written
        report[name] = len(lines)
    return report
