"""Data preparation CLI: label PNGs, image links and lists for PASCAL-5i and COCO-20i.

    python -m util.prepare pascal --voc DIR --sbd DIR --out DIR [--lists lists/pascal]
                                  [--train-list FILE] [--workers N]
    python -m util.prepare coco --coco DIR --out DIR [--lists lists/coco] [--workers N]

OUT becomes the `data_root` of the configs (DESIGN 3.1). Every output file is written
atomically (temporary name, then os.replace), so an interrupted run leaves no truncated
file behind and a rerun skips only finished work. The helpers below are shared by
util/prepare_pascal.py and util/prepare_coco.py.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from multiprocessing import Pool
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from util.errors import UserError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
TMP_MARK = ".tmp-"  # temporary files are "<final name>.tmp-<pid>"


def require_dir(path: Path, what: str) -> Path:
    """Fail early, naming the folder and what it should hold, before any work starts."""
    if not path.is_dir():
        raise UserError(f"{path}: folder not found; expected {what}")
    return path


def require_file(path: Path, what: str) -> Path:
    """Same as require_dir, for a file."""
    if not path.is_file():
        raise UserError(f"{path}: file not found; expected {what}")
    return path


def write_png_atomic(path: Path, label: np.ndarray) -> None:
    """Write a single-channel uint8 PNG so that `path` exists only once it is complete."""
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    try:
        Image.fromarray(label.astype(np.uint8)).save(tmp, format="PNG")  # 2-D uint8: mode L
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_lines_atomic(path: Path, lines: Sequence[str]) -> bool:
    """Write a list file atomically; leave it untouched when the content is unchanged
    (so a rerun writes nothing). Returns True if the file was written."""
    text = "".join(line + "\n" for line in lines)
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    log.info("wrote %s (%d lines)", path, len(lines))
    return True


def remove_stale_tmp(folder: Path) -> int:
    """Delete temporary files an interrupted run left behind (they are never trusted)."""
    count = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if TMP_MARK in entry.name and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                count += 1
    if count:
        log.info("removed %d unfinished temporary files in %s", count, folder)
    return count


def run_parallel(fn: Callable, tasks: Sequence, workers: int, desc: str) -> None:
    """Apply a top-level function to every task with a progress bar; workers <= 1 runs
    in this process (easier to debug). A UserError raised in a worker reaches the caller."""
    bar = tqdm(total=len(tasks), desc=desc, unit="img", dynamic_ncols=True)
    try:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                fn(task)
                bar.update()
            return
        chunk = max(1, min(64, len(tasks) // (workers * 8)))
        with Pool(workers) as pool:
            for _ in pool.imap_unordered(fn, tasks, chunksize=chunk):
                bar.update()
    finally:
        bar.close()


def missing_error(kind: str, missing: Iterable[str], hint: str) -> UserError:
    """One message for a batch of missing inputs: count, first few, and the fix."""
    missing = sorted(missing)
    shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
    return UserError(f"{len(missing)} {kind} missing: {shown}; {hint}")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m util.prepare", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="dataset", required=True)
    workers = dict(type=_positive_int, default=min(8, os.cpu_count() or 1),
                   help="parallel processes (default: min(8, CPUs))")
    pas = sub.add_parser("pascal", help="VOC2012 + SBD -> SegmentationClassAug + lists/pascal")
    pas.add_argument("--voc", type=Path, required=True, help="VOCdevkit/VOC2012")
    pas.add_argument("--sbd", type=Path, required=True, help="benchmark_RELEASE/dataset")
    pas.add_argument("--out", type=Path, required=True, help="data root to write (may be --voc itself)")
    pas.add_argument("--lists", type=Path, default=REPO_ROOT / "lists" / "pascal", help="where train.txt/val.txt go")
    pas.add_argument("--train-list", type=Path, default=None,
                     help="use this train list (e.g. PFENet's voc_sbd_merge_noduplicate.txt) instead of the computed one")
    pas.add_argument("--workers", **workers)
    coco = sub.add_parser("coco", help="COCO 2014 instances -> annotations/{train,val}2014 + lists/coco")
    coco.add_argument("--coco", type=Path, required=True, help="folder with train2014/, val2014/, annotations/")
    coco.add_argument("--out", type=Path, required=True, help="data root to write (may be --coco itself)")
    coco.add_argument("--lists", type=Path, default=REPO_ROOT / "lists" / "coco", help="where train.txt/val.txt go")
    coco.add_argument("--workers", **workers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: user mistakes print one `error:` line and exit with code 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Imported here: both modules import the helpers above from this module.
    try:
        if args.dataset == "pascal":
            from util.prepare_pascal import prepare_pascal
            report = prepare_pascal(args.voc, args.sbd, args.out, args.lists,
                                    train_list=args.train_list, workers=args.workers)
        else:
            from util.prepare_coco import prepare_coco
            report = prepare_coco(args.coco, args.out, args.lists, workers=args.workers)
    except UserError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    log.info("done: %s", ", ".join(f"{k}={v}" for k, v in report.items()))
    log.info("use data_root %s with the lists in %s", args.out.resolve(), args.lists)
    return 0


if __name__ == "__main__":
    sys.exit(main())
