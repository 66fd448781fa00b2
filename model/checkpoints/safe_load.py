"""Reading `.pth` files without running code from them.

A `.pth` file is a pickle, and a pickle can name any Python callable to run while loading: a
checkpoint downloaded from the web or handed over by a colleague could execute anything. Every
file the project reads goes through `load_file`, which uses PyTorch's restricted unpickler
(`weights_only=True`): tensors, numbers, strings, containers, and numpy arrays (the RNG states
of checkpoints written by earlier versions) only. A file that asks for anything else is
refused, with the name of what it asked for; there is no switch that turns this off.
"""
from __future__ import annotations

import os
import pickle
import re

import numpy as np
import torch

from model.errors import UserError

UNPICKLE_HELP = ("If the file is yours and you trust it, load it once in your own Python session without the "
                 "restriction, save just its state_dict with torch.save, and use that file")


def _numpy_globals() -> list:
    """What a pickled numpy array refers to: array reconstruction only, no callable of its own."""
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype,
            *[getattr(np.dtypes, n) for n in dir(getattr(np, "dtypes", None)) if n.endswith("DType")]]


def _unsafe_names(path: str, message: str) -> list[str]:
    """The callables the file asks for, read from the pickle without running it ([] if none:
    then the file is damaged or not a pickle at all)."""
    try:
        allowed = {f"{g.__module__}.{g.__qualname__}" for g in _numpy_globals()}
        return [n for n in torch.serialization.get_unsafe_globals_in_checkpoint(path) if n not in allowed]
    except Exception:  # noqa: BLE001 - only for the message; fall back to torch's own text
        return re.findall(r"GLOBAL ([\w.]+)", message)


def load_file(path: str, what: str = "checkpoint") -> object:
    """torch.load to the CPU with the restricted unpickler; every failure becomes one UserError."""
    if not os.path.isfile(path):
        raise UserError(f"{what} not found: {path}; check the path")
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if names := _unsafe_names(path, str(e)):
            raise UserError(f"{what} {path} refused: loading it would run code named in the file "
                            f"({', '.join(f'`{n}`' for n in names[:3])}); only tensors, numbers, strings and "
                            f"containers are read. {UNPICKLE_HELP}") from None
        raise _unreadable(path, what, e) from None
    except Exception as e:  # noqa: BLE001 - a text file read as a legacy pickle fails in arbitrary ways
        raise _unreadable(path, what, e) from None


def _unreadable(path: str, what: str, e: Exception) -> UserError:
    return UserError(f"{what} {path} cannot be read ({type(e).__name__}: {str(e)[:120]}); the file is "
                     "truncated or not a PyTorch checkpoint: use another file")


def nonfinite_tensors(state: dict) -> list[str]:
    """Names of the floating-point tensors of a state dict holding NaN or infinity: such a model
    predicts nothing useful (every score NaN: mIoU 0, empty masks), so no entry point uses one."""
    return [k for k, v in state.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def refuse_nonfinite(state: dict, path: str) -> None:
    """One error naming the file and its first non-finite tensors (the run that wrote it diverged)."""
    if bad := nonfinite_tensors(state):
        raise UserError(f"{path} holds NaN or infinite weights in {len(bad)} tensor(s) ({', '.join(bad[:3])}"
                        f"{', ...' if len(bad) > 3 else ''}): the training that wrote it diverged; use an earlier "
                        "checkpoint, or train again with a lower base_lr")
