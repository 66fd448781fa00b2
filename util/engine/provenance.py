"""Where a results file came from, and under which protocol it was measured (docs/evaluation.md,
'Results files'): every results JSON records both, so a figure can be traced to its code and
a test under another protocol never replaces it unseen."""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess

from util.config import SCHEMA
from util.data.cross_domain import target_protocol
from util.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def git_commit() -> str | None:
    """The checked-out commit of this code (`+dirty` with uncommitted changes); None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def provenance() -> dict:
    """Commit, versions and the time (UTC) of the test."""
    import torch
    try:
        import torchvision
        vision = torchvision.__version__
    except ImportError:
        vision = None
    return {"commit": git_commit(), "torch": torch.__version__, "torchvision": vision,
            "python": platform.python_version(),
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def test_protocol(cfg: dict, precision: str | None = None) -> dict:
    """What the figures were measured on: benchmark tested, shot (and way for FS-CS), episodes,
    seeds, first seed, input size, scoring resolution and, when given, the precision. A
    cross-domain test takes its values from the target's protocol (util/data/cross_domain.py).
    Accepts a results file's saved config (keys it lacks take their defaults)."""
    c = {k: key.default for k, key in SCHEMA.items()} | dict(cfg)
    target = c["target"] if c["target"] and c["target"] != c["dataset"] else ""
    if target:
        c |= target_protocol(c)
    out = {"target": target or c["dataset"], "shot": c["shot"], "episodes": c["test_num"], "seeds": c["seeds"],
           "test_seed": c["test_seed"], "size": c["val_size"], "ori_resize": c["ori_resize"]}
    if c["ifsl"]:
        out["way"] = c["way"]
    if precision is not None:
        out["precision"] = precision
    return out


def saved_protocol(path: str) -> dict | None:
    """The protocol of an existing results file (from its config when written before `protocol`
    was recorded); None when there is no readable file."""
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        proto = dict(record.get("protocol") or test_protocol(record.get("config", {})))
        proto.setdefault("precision", record.get("precision", "fp32"))  # files from before `precision`
        return proto
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None


def refuse_silent_replace(stem: str, cfg: dict, precision: str = "fp32", protocol: dict | None = None) -> None:
    """Before any work: a test under another protocol than the results it would replace
    (<stem>.json) stops with what differs, unless `overwrite true` asks for the replacement.
    `protocol`: a test's own protocol when it is not test_protocol's (the GFSS test's)."""
    old = saved_protocol(stem + ".json")
    new = test_protocol(cfg, precision) if protocol is None else protocol
    if old is None or cfg["overwrite"]:
        return
    diff = [f"{k} {old.get(k)!r} -> {v!r}" for k, v in new.items() if old.get(k) != v]
    if diff:
        raise UserError(f"{stem}.json holds results under another protocol ({', '.join(diff)}); this test would "
                        "replace them: pass `overwrite true` to replace them, or test the checkpoint from another "
                        "folder (a copy, with `weight FILE`)")
