"""Helpers every data-preparation source shares: input checks, atomic writes, parallel runs.

Every output file is written atomically (temporary name, then os.replace), so an
interrupted run leaves no truncated file behind and a rerun skips only finished work.
"""
from __future__ import annotations

import logging
import os
from multiprocessing import Pool
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from util.errors import UserError

log = logging.getLogger(__name__)

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
        error = None
        with Pool(workers) as pool:  # all tasks run: a pool left early with queued tasks can hang
            for result in pool.imap_unordered(_guarded, [(fn, t) for t in tasks], chunksize=chunk):
                error = error or result
                bar.update()
        if error is not None:
            raise error
    finally:
        bar.close()


def _guarded(args: tuple) -> UserError | None:
    """Run one task in a worker, returning (not raising) its UserError."""
    fn, task = args
    try:
        fn(task)
    except UserError as e:
        return e
    return None


def missing_error(kind: str, missing: Iterable[str], hint: str) -> UserError:
    """One message for a batch of missing inputs: count, first few, and the fix."""
    missing = sorted(missing)
    shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
    return UserError(f"{len(missing)} {kind} missing: {shown}; {hint}")
