"""What the cross-domain target sources share: reading their binary or colour-coded masks
strictly, turning them into class maps, and writing the one test list a target has.

A target's labels become the project's class maps (0 background, 1..C classes), so the class
index, the episodes and the evaluator read them as they read PASCAL's. Images stay where
the download put them: OUT/source links to the download folder unless OUT is that folder.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from util.errors import UserError
from util.data.index import list_line
from util.io.imagefile import header_size, imread
from util.prepare.common import remove_stale_tmp, run_parallel, write_lines_atomic, write_png_atomic

log = logging.getLogger(__name__)

LABELS = "labels"  # class maps written under OUT/labels/
SOURCE_LINK = "source"
SKIP_HINT = "; or pass --skip-bad to leave out every pair whose mask cannot label its image (each is named)"


def read_mask_file(path: Path) -> np.ndarray:
    """Any mask image as uint8 [H, W] or [H, W, 3] (RGB); unreadable files name the fix."""
    data = imread(str(path), cv2.IMREAD_UNCHANGED, "mask")
    if data is None:
        raise UserError(f"mask '{path}' is missing or not an image: download the dataset again")
    if data.dtype != np.uint8:
        raise UserError(f"mask '{path}' is not 8-bit ({data.dtype}): use the official masks")
    if data.ndim == 3:
        data = cv2.cvtColor(data[..., :3], cv2.COLOR_BGR2RGB)
    return data


def binary_mask(path: Path, binarise: bool = False) -> np.ndarray:
    """Foreground of a binary mask (0/255, or 0/1). A colour mask is refused; other grey values
    are refused unless `binarise`, which thresholds at 128 as the published loaders do."""
    mask = read_mask_file(path)
    if mask.ndim == 3:
        if not ((mask[..., 1] == mask[..., 0]).all() and (mask[..., 2] == mask[..., 0]).all()):
            raise UserError(f"mask '{path}' has colours: a binary mask is grey (0 background, 255 foreground); "
                            "point the command at the dataset's binary masks")
        mask = mask[..., 0]
    values = set(np.unique(mask).tolist())
    if values <= {0, 1}:
        return mask == 1
    if not values <= {0, 255} and not binarise:
        odd = sorted(values - {0, 255})
        raise UserError(f"mask '{path}' holds values {odd[:5]} besides 0 and 255: a binary mask has only those two; "
                        "pass --binarise to threshold at 128, or replace the file")
    return mask >= 128


def colour_mask(path: Path, palette: dict[tuple[int, int, int], int]) -> np.ndarray:
    """Class map of a colour-coded mask: each channel thresholded at 128 (the masks are
    saved lossily, so their colours drift), then looked up in `palette` (RGB -> class)."""
    mask = read_mask_file(path)
    if mask.ndim != 3:
        raise UserError(f"mask '{path}' is grey: this dataset's masks are RGB colour codes; "
                        "point the command at the original colour masks")
    bits = (mask >= 128).astype(np.int64)
    code = bits[..., 0] * 4 + bits[..., 1] * 2 + bits[..., 2]
    lut = np.full(8, -1, np.int64)
    for (r, g, b), cls in palette.items():
        lut[(r >= 128) * 4 + (g >= 128) * 2 + (b >= 128)] = cls
    out = lut[code]
    if (out < 0).any():
        bad = tuple(int(v) * 255 for v in bits[out < 0][0])
        raise UserError(f"mask '{path}' has colour {bad}, which is no class of this dataset: "
                        "use the dataset's original colour masks")
    return out.astype(np.uint8)


def link_source(src: Path, out: Path) -> str:
    """The list prefix of the download's files seen from OUT: '' when OUT is the download,
    otherwise 'source/' with OUT/source a link to it."""
    out.mkdir(parents=True, exist_ok=True)
    if src.resolve() == out.resolve():
        return ""
    link = out / SOURCE_LINK
    if link.is_symlink() and Path(os.readlink(link)).resolve() != src.resolve():
        link.unlink()
    if not link.exists():
        os.symlink(src.resolve(), link, target_is_directory=True)
    return SOURCE_LINK + "/"


@dataclass(frozen=True)
class LabelJob:
    """One class map to write: the mask it comes from and how to read it."""

    mask: Path
    target: Path
    cls: int = 0  # binary masks: the class their foreground takes
    binarise: bool = False
    palette: tuple = ()  # colour masks: ((r, g, b), class) pairs
    image: Path | None = None  # the image the mask labels: their sizes must agree
    skip_bad: bool = False  # a mask that cannot label its image leaves the pair out (--skip-bad)


def class_map(job: LabelJob) -> np.ndarray:
    """The class map a job's mask stands for; a mask of another size than its image is refused
    here, while preparing, instead of at the first test episode that draws it."""
    if job.palette:
        out = colour_mask(job.mask, dict(job.palette))
    else:
        out = binary_mask(job.mask, job.binarise).astype(np.uint8) * job.cls
    size = header_size(str(job.image)) if job.image is not None else None
    if size is not None and size != (out.shape[1], out.shape[0]):
        raise UserError(f"mask '{job.mask}' is {out.shape[1]}x{out.shape[0]} but its image '{job.image}' is "
                        f"{size[0]}x{size[1]}: the mask belongs to another image; replace it with the "
                        "dataset's original mask")
    return out


def write_label(job: LabelJob) -> str | None:
    """Write one class map (skipped when present: an interrupted run resumes). A mask that cannot
    label its image is an error naming --skip-bad, or with `job.skip_bad` the reason the pair is
    left out (returned, nothing written)."""
    if job.target.is_file():
        return None
    try:
        label = class_map(job)
    except UserError as e:
        if job.skip_bad:
            return str(e)
        raise UserError(f"{e}{SKIP_HINT}") from None
    write_png_atomic(job.target, label)
    return None


def warn_skipped(reasons: Sequence[str], title: str) -> None:
    """One warning naming every pair --skip-bad left out, with why (a release's known defects,
    such as FSS-1000's photo saved in place of a mask, stay visible)."""
    if reasons:
        log.warning("--skip-bad: %d %s pair(s) left out of the list:\n  %s", len(reasons), title,
                    "\n  ".join(sorted(reasons)))


def write_labels(jobs: Sequence[LabelJob], out: Path, workers: int) -> list[str]:
    """Every class map, in parallel, into OUT/labels/ (stale temporary files removed first);
    returns why each pair --skip-bad left out was left out."""
    folder = out / LABELS
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(folder)
    return run_parallel(write_label, list(jobs), workers, "labels")


def check_classes(per_class: dict[str, int], what: str) -> None:
    """A class without images (or with one only: no support besides its query) cannot be tested."""
    thin = {name: n for name, n in per_class.items() if n < 2}
    if thin:
        shown = ", ".join(f"{k} ({v})" for k, v in list(thin.items())[:5])
        raise UserError(f"{len(thin)} class(es) of {what} have fewer than 2 images: {shown}; "
                        "every class needs a query and a support: check the download is complete")


def write_list(lists: Path, pairs: Sequence[tuple[str, str]]) -> Path:
    """lists/<target>/test.txt, 'image label' per line, relative to OUT."""
    path = lists / "test.txt"
    write_lines_atomic(path, [list_line(img, lbl) for img, lbl in pairs])
    return path


def finish_target(title: str, class_names: Sequence[str], jobs: Sequence[LabelJob], images: Sequence[str],
                  out: Path, lists: Path, workers: int, skip_bad: bool = False) -> dict[str, int]:
    """Write the class maps of a target whose `jobs[i]` labels `images[i]` (a path relative to
    OUT), then its list, unless a class has too few images (then no list is written). With
    `skip_bad`, a pair whose mask cannot label its image is left out of the list, named."""
    if not jobs:
        raise UserError(f"no {title} image with a mask was found: check the folder passed to the command")
    jobs = [replace(job, image=out / img, skip_bad=skip_bad) for job, img in zip(jobs, images)]
    warn_skipped(write_labels(jobs, out, workers), title)
    kept = [(job, img) for job, img in zip(jobs, images) if job.target.is_file()]
    if not kept:
        raise UserError(f"--skip-bad left no {title} pair: every mask was refused; download the dataset again")
    images = [img for _, img in kept]
    labels = [job.target for job, _ in kept]
    check_classes(images_per_class(labels, class_names), title)
    write_list(lists, [(img, os.path.relpath(lbl, out)) for img, lbl in zip(images, labels)])
    return {"images": len(labels), "classes": len(class_names), "skipped": len(jobs) - len(kept)}


def images_per_class(labels: Sequence[Path], class_names: Sequence[str]) -> dict[str, int]:
    """How many of the written class maps hold each class."""
    counts = np.zeros(len(class_names) + 1, np.int64)
    for path in labels:
        present = np.unique(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
        counts[present[present <= len(class_names)]] += 1
    return {name: int(counts[c]) for c, name in enumerate(class_names, 1)}
