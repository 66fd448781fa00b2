"""PASCAL VOC2012 + SBD -> SegmentationClassAug label PNGs, image links, lists (docs/design.md §3.1).

Train = VOC train + SBD train + SBD val - VOC val; val = VOC val. A label comes from VOC's
own palette PNG where VOC has one (it keeps VOC's 255 border band), else from SBD's .mat.
OUT/JPEGImages/<id>.jpg are per-file symlinks to VOC's JPEGImages (SBD's img/ as fallback),
unless OUT/JPEGImages already holds the image (e.g. when OUT is the VOC folder itself).
"""
from __future__ import annotations

import logging
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image
from scipy.io.matlab import MatReadError

from util.errors import UserError
from util.io.textfile import read_utf8
from util.prepare.common import (missing_error, remove_stale_tmp, require_dir, require_file, run_parallel,
                          write_lines_atomic, write_png_atomic)

log = logging.getLogger(__name__)

VOC_WHAT = "VOCdevkit/VOC2012 from VOCtrainval_11-May-2012.tar (pass it as --voc)"
SBD_WHAT = "benchmark_RELEASE/dataset from SBD's benchmark.tgz (pass it as --sbd)"
LINE_RE = re.compile(r"JPEGImages/([^/\s]+)\.jpg\s+SegmentationClassAug/([^/\s]+)\.png")
MAX_CLASS = 20


@dataclass(frozen=True)
class PascalSources:
    """Validated input folders and their official image-id splits."""
    voc: Path
    sbd: Path
    voc_train: frozenset
    voc_val: frozenset
    sbd_train: frozenset
    sbd_val: frozenset


def read_ids(path: Path) -> frozenset:
    """One image id per line (blank lines ignored), as in ImageSets and SBD's txt files."""
    ids = set()
    text = read_utf8(str(path), "save the id list as UTF-8 text (or use the release's own file)")
    for num, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if len(line.split()) != 1 or "/" in line:
            raise UserError(f"{path}:{num}: expected one image id such as 2007_000033, got '{line.strip()}'")
        ids.add(line.strip())
    return frozenset(ids)


def find_sources(voc: Path, sbd: Path) -> PascalSources:
    """Check the expected VOC and SBD layout before any work starts."""
    require_dir(voc, VOC_WHAT)
    for sub in ("JPEGImages", "SegmentationClass"):
        require_dir(voc / sub, f"VOC2012's {sub}/ inside {VOC_WHAT}")
    seg = voc / "ImageSets" / "Segmentation"
    require_dir(sbd, SBD_WHAT)
    require_dir(sbd / "cls", f"SBD's class labels cls/<id>.mat inside {SBD_WHAT}")
    files = {"voc_train": seg / "train.txt", "voc_val": seg / "val.txt",
             "sbd_train": sbd / "train.txt", "sbd_val": sbd / "val.txt"}
    for key, path in files.items():
        require_file(path, f"the {key.replace('_', ' ').upper()} id list inside "
                     + (VOC_WHAT if key.startswith("voc") else SBD_WHAT))
    return PascalSources(voc, sbd, **{key: read_ids(path) for key, path in files.items()})


def split_ids(src: PascalSources) -> tuple[list[str], list[str]]:
    """The augmented training set (10,582 on the real data) and VOC val (1,449)."""
    train = (src.voc_train | src.sbd_train | src.sbd_val) - src.voc_val
    return sorted(train), sorted(src.voc_val)


def list_line(image_id: str) -> str:
    return f"JPEGImages/{image_id}.jpg SegmentationClassAug/{image_id}.png"


def read_train_list(path: Path, produced: set) -> list[str]:
    """Ids of an external list (PFENet's voc_sbd_merge_noduplicate.txt), in file order;
    every line must be well formed and name a label this run produces."""
    require_file(path, "a train list with lines 'JPEGImages/<id>.jpg SegmentationClassAug/<id>.png'")
    ids, seen = [], set()
    text = read_utf8(str(path), "save the train list as UTF-8 text (or use PFENet's own file)")
    for num, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = LINE_RE.fullmatch(line.strip())
        if not match or match.group(1) != match.group(2):
            raise UserError(f"{path}:{num}: expected 'JPEGImages/<id>.jpg SegmentationClassAug/<id>.png' "
                            f"(same id twice), got '{line.strip()}'")
        image_id = match.group(1)
        if image_id not in produced:
            raise UserError(f"{path}:{num}: names SegmentationClassAug/{image_id}.png, but {image_id} is in "
                            "neither VOC2012 train/val nor SBD train/val, so no label is made for it; "
                            "check that the list belongs to VOC2012 + SBD")
        if image_id in seen:
            log.warning("%s:%d: duplicate of an earlier line, dropped", path, num)
            continue
        seen.add(image_id)
        ids.append(image_id)
    return ids


def _check_values(path: Path, label: np.ndarray) -> np.ndarray:
    if label.ndim != 2:
        raise UserError(f"{path}: label has shape {label.shape}, expected a 2-D class map")
    bad = (label > MAX_CLASS) & (label != 255)
    if bad.any():
        raise UserError(f"{path}: holds values {sorted(np.unique(label[bad]))[:5]} outside 0..20 and 255; "
                        "the file is corrupt or not a VOC/SBD class label: restore it from the archive")
    return label.astype(np.uint8)


def read_voc_label(path: Path) -> np.ndarray:
    """VOC SegmentationClass PNGs are palette images: PIL returns the class indices
    (cv2's grayscale decoding would return luminance of the colours instead)."""
    try:
        with Image.open(path) as img:
            mode = img.mode
            label = np.array(img)
    except (OSError, SyntaxError, ValueError) as err:
        raise UserError(f"{path}: cannot read this PNG ({err}); restore it from VOC2012's archive") from err
    if mode not in ("P", "L"):
        raise UserError(f"{path}: is a '{mode}' image, expected VOC's palette PNG (mode P) of class "
                        "indices; use the original SegmentationClass files, not colour copies")
    return _check_values(path, label)


def read_sbd_label(path: Path) -> np.ndarray:
    """SBD stores the class map in a MATLAB struct: GTcls.Segmentation."""
    try:
        label = np.asarray(scipy.io.loadmat(str(path))["GTcls"][0]["Segmentation"][0])
    except (OSError, ValueError, TypeError, KeyError, IndexError, EOFError, MatReadError, zlib.error) as err:
        raise UserError(f"{path}: not a readable SBD label (.mat with GTcls.Segmentation): {err}; "
                        "restore it from SBD's benchmark.tgz") from err
    return _check_values(path, label)


def _convert(task: tuple[str, str, str]) -> None:
    """Worker: one source label file -> one SegmentationClassAug PNG."""
    kind, src, dst = task
    label = read_voc_label(Path(src)) if kind == "voc" else read_sbd_label(Path(src))
    write_png_atomic(Path(dst), label)


def label_tasks(src: PascalSources, ids: list[str], label_dir: Path) -> list[tuple[str, str, str]]:
    """(kind, source, destination) for every label not yet written; VOC's own label wins."""
    tasks, missing = [], []
    for image_id in ids:
        dst = label_dir / f"{image_id}.png"
        if dst.exists():
            continue
        voc_png = src.voc / "SegmentationClass" / f"{image_id}.png"
        sbd_mat = src.sbd / "cls" / f"{image_id}.mat"
        in_voc = image_id in src.voc_train or image_id in src.voc_val
        if voc_png.is_file():
            tasks.append(("voc", str(voc_png), str(dst)))
        elif not in_voc and sbd_mat.is_file():
            tasks.append(("sbd", str(sbd_mat), str(dst)))
        else:
            missing.append(str(voc_png if in_voc else sbd_mat))
    if missing:
        raise missing_error("label files", missing, "the VOC2012 or SBD download is incomplete: extract it again")
    return tasks


def link_images(src: PascalSources, ids: list[str], image_dir: Path) -> int:
    """Make image_dir/<id>.jpg exist for every id (absolute symlinks); returns links made."""
    image_dir.mkdir(parents=True, exist_ok=True)
    made, missing = 0, []
    for image_id in ids:
        dst = image_dir / f"{image_id}.jpg"
        if dst.exists():
            continue
        candidates = (src.voc / "JPEGImages" / f"{image_id}.jpg", src.sbd / "img" / f"{image_id}.jpg")
        source = next((c for c in candidates if c.is_file()), None)
        if source is None:
            missing.append(str(candidates[0]))
            continue
        if dst.is_symlink():  # broken link from a moved dataset
            dst.unlink()
        try:
            os.symlink(source.resolve(), dst)
        except OSError as err:
            raise UserError(f"{dst}: cannot create a symlink ({err}); pass --out {src.voc} to write the "
                            "labels beside VOC's own JPEGImages instead") from err
        made += 1
    if missing:
        raise missing_error("images", missing, "they are in neither VOC2012 JPEGImages/ nor SBD img/: "
                            "extract VOCtrainval_11-May-2012.tar again")
    return made


def prepare_pascal(voc: Path, sbd: Path, out: Path, lists_dir: Path, *,
                   train_list: Path | None = None, workers: int = 1) -> dict[str, int]:
    """Make OUT a PASCAL data root and write lists_dir/{train,val}.txt; reruns skip done work."""
    src = find_sources(Path(voc), Path(sbd))
    train, val = split_ids(src)
    produced = sorted(set(train) | set(val))
    if train_list is not None:
        train = read_train_list(Path(train_list), set(produced))
        if set(train) & set(val):
            log.warning("%s: %d images are also in VOC2012 val", train_list, len(set(train) & set(val)))
    out = Path(out)
    linked = link_images(src, produced, out / "JPEGImages")
    label_dir = out / "SegmentationClassAug"
    label_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(label_dir)
    tasks = label_tasks(src, produced, label_dir)
    run_parallel(_convert, tasks, workers, desc="PASCAL labels")
    lists_written = sum(write_lines_atomic(Path(lists_dir) / f"{name}.txt", [list_line(i) for i in ids])
                        for name, ids in (("train", train), ("val", val)))
    return {"labels_written": len(tasks), "labels_skipped": len(produced) - len(tasks),
            "images_linked": linked, "train": len(train), "val": len(val), "lists_written": lists_written}
