"""Process-level plumbing shared by the CLIs: device, seeds, logging, experiment folders."""
from __future__ import annotations

import logging
import os
import random
import sys
from typing import Callable

import numpy as np
import torch

from util.errors import UserError

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """`auto` picks the first GPU when there is one; an unavailable GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"device '{name}' is not valid: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}' asked for but no CUDA GPU is visible: use device cpu")
    return dev


def seed_everything(seed: int) -> None:
    """One place that seeds every generator the training step draws from."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def worker_init_fn(worker_id: int) -> None:
    """Loader workers derive their seeds from torch's per-worker seed, never from the clock."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def rng_state() -> dict:
    """Every RNG state a resumed run needs to continue bit-for-bit, as tensors and numbers only
    (a checkpoint must load with the restricted unpickler, which refuses numpy objects)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss))}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Also accepts the numpy state as an array (checkpoints of earlier versions)."""
    name, keys, *rest = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    random.setstate(state["python"])
    np.random.set_state((name, keys.astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def experiment_dir(cfg) -> str:
    """exp/<dataset>/<exp>, the experiment name being the config name without the dataset
    prefix (PFENet: `train.sh pascal split0_resnet50` -> exp/pascal/split0_resnet50), with
    `_<K>shot` appended for K > 1 so 1- and 5-shot runs never share a folder."""
    if cfg.save_path:
        return cfg.save_path
    stem = os.path.splitext(os.path.basename(cfg.get("_config_path") or "default"))[0]
    prefix = f"{cfg.dataset}_"
    name = stem[len(prefix):] if stem.startswith(prefix) else stem
    return os.path.join("exp", cfg.dataset, name + (f"_{cfg.shot}shot" if cfg.shot != 1 else ""))


def setup_logging(log_file: str | None = None, level: int = logging.INFO) -> None:
    """Console plus an optional per-run log file; called by CLIs only, never on import."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_file:
        os.makedirs(os.path.dirname(log_file) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s",
                        handlers=handlers, force=True)


def run_cli(main: Callable[[list[str] | None], int]) -> None:
    """Exit with one clear line for user errors instead of a traceback."""
    try:
        code = main(None)
    except UserError as e:
        sys.stderr.write(f"error: {e}\n")
        code = 2
    except KeyboardInterrupt as e:
        sys.stderr.write(f"interrupted: {e}\n" if str(e) else "interrupted\n")
        code = 130
    sys.exit(code or 0)


def enable_determinism() -> None:
    """`deterministic: true`: deterministic kernels everywhere, an error where none exists.

    On the CPU every op this project uses is already deterministic. On CUDA the backward of
    bilinear upsampling and of adaptive average pooling use atomics: with this switch they
    run a slower deterministic path or fail, naming the op.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=False)
    torch.backends.cudnn.benchmark = False
