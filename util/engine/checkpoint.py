"""Training checkpoints: written atomically, holding everything an exact resume needs."""
from __future__ import annotations

import os
import pickle
import tempfile
import zipfile

import torch

from util.errors import UserError
from util.engine.runtime import rng_state

FORMAT = "ntrenet-checkpoint-v1"


def save_checkpoint(path: str, *, model: torch.nn.Module, optimizer, epoch: int, iteration: int,
                    best_miou: float, cfg: dict, extra: dict | None = None) -> None:
    """Temp file + fsync + rename: a crash mid-write never leaves a truncated checkpoint."""
    state = {
        "format": FORMAT, "model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
        "epoch": epoch, "iteration": iteration, "best_miou": best_miou, "rng": rng_state(),
        "config": {k: v for k, v in cfg.items() if not k.startswith("_")},
    }
    state.update(extra or {})
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".pth", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_checkpoint(path: str) -> dict:
    """Load any checkpoint file to CPU, turning unreadable files into one clear message."""
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}; check the path (runs keep theirs in exp/<dataset>/<exp>/model/)")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        raise UserError(f"checkpoint {path} cannot be read ({type(e).__name__}: {e}); "
                        "the file is truncated or not a PyTorch checkpoint: use another file") from None


def load_training_state(path: str) -> dict:
    """A checkpoint this project wrote, for `resume` (an official file cannot resume)."""
    state = read_checkpoint(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path} is not a checkpoint written by train.py, so it cannot be resumed; "
                        "use `weight FILE` to initialise from it instead")
    return state


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model
