"""Helpers every data-preparation source shares: input checks, atomic writes, parallel runs.

Every output file is written atomically (temporary name, then os.replace), so an
interrupted run leaves no truncated file behind and a rerun skips only finished work.
"""
from __future__ import annotations

import hashlib
import json
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
GENERATED = ".generated.json"  # per folder: name -> sha256 of each list file a generator wrote there


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
    written = write_generated(path, text)
    if written:
        log.info("wrote %s (%d lines)", path, len(lines))
    return written


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(folder: Path) -> dict:
    try:
        data = json.loads((folder / GENERATED).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def generated_hash(path: Path | str) -> str | None:
    """The hash a generator recorded for the file it wrote at `path` (None: it wrote none there)."""
    path = Path(path)
    return _manifest(path.parent).get(path.name)


def check_generated(paths: Iterable[str | Path], what: str) -> None:
    """Before a generator starts: each of `paths` is absent or a file a generator wrote (and
    nobody edited since), so the lists it will write replace nothing of the user's."""
    for path in map(Path, paths):
        if path.exists() and not path.is_file():
            raise UserError(f"list path {path} is a folder: point the list key at a file")
        if path.is_file() and generated_hash(path) != _sha(path.read_bytes()):
            raise UserError(f"{what} is missing, and {path} exists but was not written by its generator: it is "
                            "kept and nothing is generated. Check data_root (a typo?), or move the list away to "
                            "generate the data anew")


def write_generated(path: Path | str, text: str) -> bool:
    """Write a generated file (a list) atomically, never over a file no generator wrote.

    The folder's `.generated.json` holds the hash of every file a generator wrote there; an
    existing file is replaced only if it still has that hash (written by us, not edited since).
    Anything else is the user's: refused, so a mistyped `data_root` that triggers a regeneration
    cannot replace the user's own lists. Returns False when the content is already `text`."""
    path = Path(path)
    try:
        old = path.read_bytes() if path.exists() else None
    except OSError as e:
        raise UserError(f"{path} cannot be read ({e.strerror or e}): it is in the way of a generated list; "
                        "move it, or point the list key at another path") from None
    if old == text.encode():
        return False
    manifest = _manifest(path.parent)
    if old is not None and manifest.get(path.name) != _sha(old):
        raise UserError(f"{path} exists and was not written by this generator (or was edited since): it is kept. "
                        "Move it away to let the generator write its list there, or check data_root / the "
                        "list keys (a mistyped data_root makes the toy data be generated anew)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for name, data in ((path.name, text), (GENERATED, None)):
            if data is None:
                data = json.dumps({**manifest, path.name: _sha(text.encode())}, indent=1) + "\n"
            tmp = path.parent / f"{name}{TMP_MARK}{os.getpid()}"
            tmp.write_text(data)
            os.replace(tmp, path.parent / name)
    except OSError as e:
        raise UserError(f"cannot write {path} ({e.strerror or e}): make its folder writable or choose "
                        "another --lists / list path") from None
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


def run_parallel(fn: Callable, tasks: Sequence, workers: int, desc: str) -> list:
    """Apply a top-level function to every task with a progress bar; workers <= 1 runs
    in this process (easier to debug). A UserError raised in a worker reaches the caller.
    Returns what the tasks returned other than None (in no particular order)."""
    bar = tqdm(total=len(tasks), desc=desc, unit="img", dynamic_ncols=True)
    results = []
    try:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                results.append(fn(task))
                bar.update()
        else:
            chunk = max(1, min(64, len(tasks) // (workers * 8)))
            error = None
            with Pool(workers) as pool:  # all tasks run: a pool left early with queued tasks can hang
                for failed, result in pool.imap_unordered(_guarded, [(fn, t) for t in tasks], chunksize=chunk):
                    error = error or failed
                    results.append(result)
                    bar.update()
            if error is not None:
                raise error
    finally:
        bar.close()
    return [r for r in results if r is not None]


def _guarded(args: tuple) -> tuple[UserError | None, object]:
    """Run one task in a worker, returning (not raising) its UserError, with its result."""
    fn, task = args
    try:
        return None, fn(task)
    except UserError as e:
        return e, None


def check_out_folder(path: Path, flag: str = "--out") -> None:
    """Before any work: `path` is (or can become) a folder this process may write, so a file
    or a read-only folder given as --out / --lists is one error and nothing is half written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder: pass a folder (it is created if missing)")
    probe = path
    while not probe.exists():  # the nearest existing folder decides whether it can be created
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{flag} {path}: {probe} is a file, not a folder: pass another {flag}")
    if not _writable(probe):
        raise UserError(f"{flag} {path}: {probe} is not writable (read-only or no permission): make it "
                        f"writable, or pass another {flag}")


def _writable(folder: Path) -> bool:
    """Whether a file can be created in `folder`, tried for real (os.access says yes to root on a
    read-only mount)."""
    probe = folder / f".write-test{TMP_MARK}{os.getpid()}"
    try:
        probe.touch()
        probe.unlink()
        return True
    except OSError:
        return False


def missing_error(kind: str, missing: Iterable[str], hint: str) -> UserError:
    """One message for a batch of missing inputs: count, first few, and the fix."""
    missing = sorted(missing)
    shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
    return UserError(f"{len(missing)} {kind} missing: {shown}; {hint}")
