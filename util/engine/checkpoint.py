"""Training checkpoints: written atomically, holding everything an exact resume needs."""
from __future__ import annotations

import os
import shutil
import tempfile

import torch

from model.checkpoints.safe_load import load_file, nonfinite_tensors
from util.config import SCHEMA
from util.data.benchmarks import get_benchmark
from util.errors import UserError
from util.engine.guard import writable_error
from util.engine.runtime import rng_state

FORMAT = "ntrenet-checkpoint-v1"


def save_checkpoint(path: str, *, model: torch.nn.Module, optimizer, epoch: int, iteration: int,
                    best_miou: float, cfg: dict, extra: dict | None = None) -> None:
    """Temp file + fsync + rename: a crash mid-write never leaves a truncated checkpoint.
    `optimizer` None writes what testing needs only (best.pth: the weights without the
    optimiser's moments, which are twice the model's size under AdamW; last.pth resumes)."""
    state = {
        "format": FORMAT, "model": _unwrap(model).state_dict(),
        "epoch": epoch, "iteration": iteration, "best_miou": best_miou, "rng": rng_state(),
        "config": {k: v for k, v in cfg.items() if not k.startswith("_")},
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    state.update(extra or {})
    if bad := nonfinite_tensors(state["model"]):
        raise UserError(f"training diverged by iteration {iteration}: {len(bad)} weight tensor(s) hold NaN or "
                        f"infinity ({', '.join(bad[:3])}), so {path} was not written and the last one on disk is "
                        "kept; lower base_lr (or prior_lr) and resume from it, or start again")
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".pth", dir=folder)
    except OSError as e:
        raise writable_error(folder, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError of its zip writer
        kept = "the previous one is intact" if os.path.isfile(path) else "no earlier one exists"
        free = shutil.disk_usage(folder).free / 2**20
        raise UserError(f"could not write checkpoint {path} ({type(e).__name__}: {str(e)[:80]}; {free:.0f} MiB "
                        f"free on that disk); {kept}. Free space or set save_path to another disk, then resume "
                        "from the last checkpoint") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_checkpoint(path: str) -> dict:
    """Load any checkpoint file to CPU without running code from it (see model/checkpoints/safe_load.py)."""
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}; check the path (runs keep theirs in exp/<dataset>/<exp>/model/)")
    return load_file(path, "checkpoint")


def load_training_state(path: str, cfg: dict | None = None) -> dict:
    """A checkpoint this project wrote, for `resume` (an official file cannot resume); with `cfg`,
    refused when the config changes what the run trains (see RESUME_FREE)."""
    state = read_checkpoint(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path} is not a checkpoint written by train.py, so it cannot be resumed; "
                        "use `weight FILE` to initialise from it instead")
    if "optimizer" not in state:
        last = os.path.join(os.path.dirname(path), "last.pth")
        elsewhere = f"resume from {last}, or " if os.path.basename(path) != "last.pth" else ""
        raise UserError(f"cannot resume {path}: it holds no optimizer state (the weights for testing only): "
                        f"{elsewhere}start a new run from its weights with `weight {path}`")
    if cfg is not None and (bad := resume_conflicts(state.get("config", {}), cfg)):
        raise UserError(f"cannot resume {path}: the config changes what this run trains: {'; '.join(bad)}. "
                        "Resume with the checkpoint's values (they are in its result/config.yaml), or start "
                        "a new run initialised from it with `weight FILE`")
    return state


def restore(path: str, state: dict, parts: dict) -> None:
    """Load the `model` / `optimizer` / ... entries of a resumed checkpoint into `parts`; a file
    missing one of them, or holding tensors of other shapes, is one error naming the file."""
    for name, obj in parts.items():
        try:
            obj.load_state_dict(state[name])
        except KeyError:
            raise UserError(f"cannot resume {path}: it holds no {name} state (it is incomplete); resume from "
                            "another checkpoint, or start a new run initialised from it with `weight FILE`") from None
        except (RuntimeError, ValueError, TypeError) as e:
            first = str(e).strip().splitlines()[-1][:160]
            raise UserError(f"cannot resume {path}: its {name} state does not fit this run ({first}); resume "
                            "with the config it was written with") from None


def refuse_other_fold(trained: dict, cfg: dict, weight: str) -> None:
    """The one fold check of every entry point that tests a checkpoint (see fold_mismatch)."""
    if (differ := fold_mismatch(trained, cfg)) is not None:
        raise UserError(f"{weight} was trained with {differ}: its training classes include this fold's novel "
                        f"classes, so the scores would not be few-shot scores. Test it with the config of the fold "
                        f"it was trained on (`split {trained.get('split')}`), or pass this fold's checkpoint")


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


# Keys a resumed run may change: how it is run, logged and evaluated, where its files are, and the
# two schedule keys whose change is documented (docs: reliability). Every other key defines what
# is trained, so a checkpoint only resumes under its own values (default-deny: a new key is
# protected without being listed here).
RESUME_FREE = frozenset({
    "resume", "weight", "save_path", "overwrite", "data_root", "initmodel_dir", "pretrained", "val_list",
    "num_workers", "device", "amp", "channels_last", "deterministic", "print_freq", "image_every",
    "val_every", "save_every_iters", "on_nonfinite", "test_num", "test_seed", "val_num", "batch_size_val",
    "seeds", "vis", "baselines", "epochs", "base_lr", "scale_lr",
})


def resume_conflicts(saved: dict, cfg: dict) -> list[str]:
    """`key (checkpoint A, now B)` for every run-defining key that differs; a key the checkpoint
    lacks (written before the key existed) counts as its default."""
    out = []
    for k, now in cfg.items():
        if k not in SCHEMA or k in RESUME_FREE:
            continue
        was = saved.get(k, SCHEMA[k].default)
        if was != now:
            out.append(f"{k} (checkpoint {was!r}, now {now!r})")
    return out


# Keys a prior pre-training may change on resume: where files are, how it runs and logs, and its length.
PRIOR_RESUME_FREE = RESUME_FREE | {"prior_epochs", "prior_max_iters_per_epoch", "prior_lr"}


def prior_resume_conflicts(saved: dict, cfg: dict) -> list[str]:
    """As resume_conflicts, for the keys a prior extractor pre-training reads: the `prior_*` keys
    (losses, queue, crops, superpixels) and the data and backbone it learns from."""
    keys = [k for k in SCHEMA if k.startswith("prior_") or k in ("dataset", "train_list", "backbone", "manual_seed")]
    return resume_conflicts(saved, {k: cfg[k] for k in keys if k not in PRIOR_RESUME_FREE})


def fold_mismatch(trained: dict, cfg: dict) -> str | None:
    """Why a checkpoint's training classes overlap this config's novel classes, or None.

    A model trained on another fold of the same benchmark has seen the novel classes of this
    fold as training classes, so its test numbers would not be few-shot numbers. Another
    benchmark, an official file ({}), or another shot is fine (the model does not read `shot`).
    """
    if not trained or trained.get("dataset") != cfg["dataset"]:
        return None
    bench = get_benchmark(cfg["dataset"])
    if bench.folds is None:  # no folds: no class is held out of training
        return None
    keys = [k for k in ("split", "coco_fold_style") if k in trained and trained[k] != cfg[k]]
    if not bench.fold_styles:
        keys = [k for k in keys if k != "coco_fold_style"]
    if not keys:
        return None
    return ", ".join(f"{k} {trained[k]!r} (now {cfg[k]!r})" for k in keys)
