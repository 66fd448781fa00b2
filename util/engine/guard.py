"""Disk safety: a new run never mixes its outputs into another run's folder silently."""
from __future__ import annotations

import glob
import logging
import os
import shutil

from util.errors import UserError

log = logging.getLogger(__name__)
RUN_ARTIFACTS = ("model/*.pth", "tb/events.out.tfevents.*", "model/results*.json")


def run_artifacts(folder: str) -> list[str]:
    """Files that mark `folder` as holding a run (checkpoints, event files, test results)."""
    return sorted(p for pattern in RUN_ARTIFACTS for p in glob.glob(os.path.join(folder, pattern)))


def claim_output_dir(folder: str, *, resume: str, overwrite: bool) -> None:
    """Refuse a folder holding another run unless resuming or overwriting was asked for.

    With `overwrite`, the old checkpoints, event files and results are removed first, so the
    new run's tensorboard curves and best checkpoint are never mixed with the old ones.
    """
    for tmp in glob.glob(os.path.join(folder, "model", ".tmp_*")):  # a write a crash interrupted
        os.remove(tmp)
        log.warning("removed %s, a checkpoint write interrupted by a crash", tmp)
    found = run_artifacts(folder)
    if not found or resume:
        return
    if not overwrite:
        shown = ", ".join(os.path.relpath(p, folder) for p in found[:3])
        raise UserError(f"{folder} already holds a run ({shown}{', ...' if len(found) > 3 else ''}): "
                        f"continue it with `resume {os.path.join(folder, 'model', 'last.pth')}`, replace it "
                        "with `overwrite true`, or pick another experiment / save_path")
    for sub in ("model", "tb"):
        shutil.rmtree(os.path.join(folder, sub), ignore_errors=True)
    log.warning("overwrite: removed the previous run's checkpoints, results and tensorboard events in %s", folder)
