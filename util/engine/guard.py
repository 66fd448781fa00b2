"""Disk safety: a run owns its folder alone, never mixes its outputs with another run's, and
never loses an earlier run that it was asked to replace but could not."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import filecmp
import glob
import json
import logging
import os
import shutil
import signal
import threading

from util.errors import UserError

log = logging.getLogger(__name__)
# Files train.py and test.py write; anything else in the folder is the user's and is left alone.
RUN_ARTIFACTS = ("model/last.pth", "model/best.pth", "model/*results_shot*", "tb/events.out.tfevents.*")
SET_ASIDE_TOO = ("result/config.yaml",)  # replaced by a new run, restored with the old one
PREVIOUS = ".previous_run"  # an overwritten run waits here until the new run's first checkpoint
FOUND = ".found.json"  # in PREVIOUS: the files the set-aside was asked to move, written before any move
LOCK = ".lock"


def run_artifacts(folder: str) -> list[str]:
    """Files that mark `folder` as holding a run (checkpoints, event files, test results)."""
    return sorted({p for pattern in RUN_ARTIFACTS for p in glob.glob(os.path.join(folder, pattern))})


def writable_error(path: str, e: OSError) -> UserError:
    """One message for a folder or file the run cannot write (read-only, no permission, disk full)."""
    fix = {errno.ENOSPC: "free space on that disk", errno.EDQUOT: "free space (quota exceeded)"}.get(
        e.errno, "make it writable")
    return UserError(f"cannot write {path} ({e.strerror or e}): {fix}, or set save_path to another folder")


def write_atomic(path: str, text: str | bytes) -> None:
    """Temp file + rename: a reader never sees half a file; a failed write (disk full, read-only)
    leaves the previous version in place and says so in one message."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(tmp, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise writable_error(path, e) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class OutputClaim:
    """The experiment folder, held by one training process for its lifetime.

    A lock file refuses a second training started into the same folder (the lock dies with the
    process, so a crash leaves none behind). With `overwrite`, the previous run's files are set
    aside in `.previous_run/` and only deleted once the new run has written its first
    checkpoint; if the new run fails before that, they are put back.
    """

    def __init__(self, folder: str, *, resume: str, overwrite: bool):
        self.folder, self.previous = folder, None
        self.saved = False
        self.new_run = False  # the folder held no run when claimed (or held one that was set aside)
        self.created = not os.path.exists(folder)  # removed again if the run fails before it starts
        self.started = False  # set by the caller once the run does work (its first training step)
        killed = os.path.isfile(os.path.join(folder, LOCK))  # a lock file left behind: its run was killed
        self._lock_file = self._lock()
        try:
            if self._recover():
                killed = False  # the folder holds the restored old run, not the killed one's files
            found = run_artifacts(folder)
            if found and not resume and killed:
                found = _forget_killed(folder, found)
            if found and not resume:
                if not overwrite:
                    shown = ", ".join(os.path.relpath(p, folder) for p in found[:3])
                    raise UserError(
                        f"{folder} already holds a run ({shown}{', ...' if len(found) > 3 else ''}): continue it "
                        f"with `resume {os.path.join(folder, 'model', 'last.pth')}`, replace it with "
                        "`overwrite true`, or pick another experiment / save_path")
                self._set_aside(found)
            self.new_run = not resume
        except BaseException:
            self.release(failed=True)
            raise

    def _lock(self):
        path = os.path.join(self.folder, LOCK)
        try:
            os.makedirs(self.folder, exist_ok=True)
            f = open(path, "a+")
        except OSError as e:
            raise writable_error(self.folder, e) from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "another process"
            f.close()
            raise UserError(f"{self.folder} is in use by another training ({owner}); wait for it to finish "
                            "or set save_path to another folder") from None
        try:
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()}\n")
            f.flush()
        except OSError as e:  # a full disk: the lock holds without its note
            log.warning("could not write the owner into %s (%s)", path, e.strerror or e)
        return f

    def _recover(self) -> bool:
        """Writes a crash interrupted: temp checkpoints, and a set-aside run never restored (True
        when one was put back)."""
        for tmp in glob.glob(os.path.join(self.folder, "model", ".tmp_*")):
            os.remove(tmp)
            log.warning("removed %s, a checkpoint write interrupted by a crash", tmp)
        previous = os.path.join(self.folder, PREVIOUS)
        if not os.path.isdir(previous):
            return False
        moved = _files_under(previous)
        found = _read_found(previous, moved)
        new = [n for n in ("model/last.pth", "model/best.pth")
               if os.path.isfile(os.path.join(self.folder, n)) and (n in moved or n not in found)]
        if new:
            shutil.rmtree(previous)  # the replacing run got as far as a checkpoint: it stands
            return False
        self.previous = previous
        self._restore()
        log.warning("restored the run in %s that an overwrite had set aside before it crashed", self.folder)
        return True

    def _set_aside(self, found: list[str]) -> None:
        """Move the old run into PREVIOUS, one file at a time. The list of what is to move is written
        first, so a restore (now or after a crash) knows which files in the folder are old ones
        that never moved and leaves them where they are."""
        self.previous = os.path.join(self.folder, PREVIOUS)
        extra = [p for p in (os.path.join(self.folder, q) for q in SET_ASIDE_TOO) if os.path.isfile(p)]
        rel = [os.path.relpath(p, self.folder) for p in found + extra]
        try:
            write_atomic(os.path.join(self.previous, FOUND), json.dumps(rel))
            for name in rel:
                _move(os.path.join(self.folder, name), os.path.join(self.previous, name))
        except OSError as e:
            raise UserError(f"overwrite: cannot set the previous run in {self.folder} aside "
                            f"({e.strerror or e}); it is left in place: move it yourself or pick another "
                            "experiment / save_path") from None
        log.warning("overwrite: the previous run in %s is set aside in %s until this run writes its first "
                    "checkpoint", self.folder, PREVIOUS)

    def _restore(self) -> None:
        """Put back what the set-aside moved, and only that: a file of the old run that never moved
        stays; the failed run's own files are removed only where nothing old stands in their place."""
        moved = _files_under(self.previous)
        found = _read_found(self.previous, moved)
        for src in run_artifacts(self.folder):
            name = os.path.relpath(src, self.folder)
            if name in moved or name not in found:  # the failed run's own file
                os.remove(src)
        for name in moved:
            _move(os.path.join(self.previous, name), os.path.join(self.folder, name))
        shutil.rmtree(self.previous)
        self.previous = None

    def commit(self) -> None:
        """The new run has a checkpoint: the run it replaces can go."""
        self.saved = True
        if self.previous:
            shutil.rmtree(self.previous, ignore_errors=True)
            self.previous = None
            log.info("overwrite: removed the previous run")

    def _forget_unsaved(self) -> None:
        """A new run that stopped before its first checkpoint leaves nothing that marks the folder
        as holding a run (its event files), so starting it again works, as its message says."""
        for path in run_artifacts(self.folder):
            try:
                os.remove(path)
            except OSError as e:
                log.warning("could not remove %s of the stopped run (%s)", path, e.strerror or e)

    def release(self, failed: bool = False) -> None:
        """At exit: put back a replaced run if no checkpoint replaced it, then unlock (the lock
        file goes too). A run that `failed` before it started, in a folder it created, leaves
        no folder behind."""
        if self.previous:
            self._restore()
            log.warning("the new run stopped before its first checkpoint: the previous run in %s is restored",
                        self.folder)
        elif self.new_run and not self.saved:
            self._forget_unsaved()
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(self.folder, LOCK))
            self._lock_file.close()
            self._lock_file = None
        if failed and self.created and not self.started and not run_artifacts(self.folder):
            shutil.rmtree(self.folder, ignore_errors=True)


def _move(src: str, dst: str) -> None:
    """Rename when both sides are on one filesystem; otherwise copy, check the copy byte for byte,
    and only then remove the source (a `model/` linked to another disk)."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        os.replace(src, dst)
        return
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
    shutil.copy2(src, dst)
    if not filecmp.cmp(src, dst, shallow=False):
        os.remove(dst)
        raise OSError(errno.EIO, f"the copy of {src} differs from it")
    os.remove(src)


def _forget_killed(folder: str, found: list[str]) -> list[str]:
    """A run killed (SIGKILL, power loss) before its first checkpoint left only event files: they
    hold no work to resume, so they go and the same command starts the run again, as a run stopped
    by Ctrl-C or an error allows. A checkpoint or a result keeps everything (resume or overwrite)."""
    events = [p for p in found if os.path.basename(os.path.dirname(p)) == "tb"]
    if len(events) != len(found):
        return found
    for path in events:
        os.remove(path)
    log.warning("removed %d event file(s) in %s of a run that was killed before its first checkpoint; "
                "starting it again", len(events), os.path.join(folder, "tb"))
    return []


def _files_under(folder: str) -> set[str]:
    """Relative paths of the files a set-aside moved into `folder` (its bookkeeping excluded)."""
    out = set()
    for root, _, files in os.walk(folder):
        out.update(os.path.relpath(os.path.join(root, n), folder) for n in files)
    out.discard(FOUND)
    return out


def _read_found(previous: str, moved: set[str]) -> set[str]:
    """The files the set-aside meant to move; a folder set aside by an earlier version has no
    list, and then everything it moved is all there was."""
    try:
        with open(os.path.join(previous, FOUND)) as f:
            return set(json.load(f)) | moved
    except (OSError, ValueError):
        return moved


def claim_output_dir(folder: str, *, resume: str, overwrite: bool) -> OutputClaim:
    """Refuse a folder holding another run unless resuming or overwriting was asked for."""
    return OutputClaim(folder, resume=resume, overwrite=overwrite)


class StopRequest:
    """First Ctrl-C (SIGINT) or SIGTERM: finish the current step, write last.pth, stop cleanly.
    A second Ctrl-C stops at once (the last written checkpoint is still intact)."""

    def __init__(self):
        self.requested = False
        self._old: dict = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stop requested: finishing this step and writing last.pth (Ctrl-C again to stop at once)")

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}
