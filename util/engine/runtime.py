"""Process-level plumbing shared by the CLIs: device, seeds, logging, experiment folders."""
from __future__ import annotations

import argparse
import errno
import logging
import os
import random
import sys
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from tqdm import tqdm

from util.errors import UserError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """`auto` picks the first GPU when there is one; an unavailable GPU is a user error."""
    import torch  # here, not at the top: the CLIs parse their arguments before torch loads (answer_early)

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
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def worker_init_fn(worker_id: int) -> None:
    """Loader workers derive their seeds from torch's per-worker seed, never from the clock."""
    import torch

    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def rng_state() -> dict:
    """Every RNG state a resumed run needs to continue bit-for-bit, as tensors and numbers only
    (a checkpoint must load with the restricted unpickler, which refuses numpy objects)."""
    import torch

    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss))}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Also accepts the numpy state as an array (checkpoints of earlier versions)."""
    import torch

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
    `_<K>shot` appended for K > 1 so 1- and 5-shot runs never share a folder, and each
    command-line override that changes what is trained appended as `_key-value` (sorted by key:
    `model pfenet` -> split0_resnet50_model-pfenet), so a variant never writes into another
    variant's folder. `save_path` wins over all of it."""
    if cfg.save_path:
        return cfg.save_path
    stem = os.path.splitext(os.path.basename(cfg.get("_config_path") or "default"))[0]
    prefix = f"{cfg.dataset}_"
    name = stem[len(prefix):] if stem.startswith(prefix) else stem
    name += f"_{cfg.shot}shot" if cfg.shot != 1 else ""
    name += "".join(f"_{k}-{_name_part(v)}" for k, v in cfg.get("_trained_overrides", ()))
    return os.path.join("exp", cfg.dataset, name)


def _name_part(value) -> str:
    """A config value as part of a folder name: lists joined by commas, booleans lower case."""
    if isinstance(value, (list, tuple)):
        return ",".join(_name_part(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value).replace(os.sep, "_")


def config_args(argv: list[str] | None, doc: str) -> argparse.Namespace:
    """`--config FILE [key value ...]` of train.py and test.py. Everything but `--config FILE`
    is an override, in order, so other frameworks' forms (`--cfg-options k=v`, `--fold 1`)
    reach util.config, which accepts or answers them with this project's form."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="YAML file under config/<dataset>/ (or a PFENet/BAM file)")
    p.add_argument("opts", nargs="*", help="config overrides as `key value` pairs")
    argv = list(sys.argv[1:] if argv is None else argv)
    at = [i for i, a in enumerate(argv) if a == "--config" or a.startswith("--config=")]
    if {"-h", "--help"} & set(argv) or not at or (argv[at[0]] == "--config" and at[0] + 1 == len(argv)):
        return p.parse_args(argv)  # help, or argparse's usage error
    i = at[0]
    if argv[i] == "--config":
        config, rest = argv[i + 1], argv[:i] + argv[i + 2:]
    else:
        config, rest = argv[i].split("=", 1)[1], argv[:i] + argv[i + 1:]
    return argparse.Namespace(config=config, opts=rest)


def answer_early(doc: str, parse: Callable[[list[str]], object] | None = None) -> None:
    """Called by an entry point under `if __name__ == "__main__"` before it imports torch: `--help`,
    an unknown option or a config mistake (missing file, bad key or value) is answered in a
    fraction of a second instead of after the seconds torch takes to load. `parse` reads the
    command line (default: `--config FILE [key value ...]` and the config itself); the run
    parses again, so what is parsed here only decides whether to go on."""
    argv = sys.argv[1:]
    try:
        if parse is not None:
            parse(argv)
            return
        from util.config import load_config  # light: YAML and the recipes, no torch

        args = config_args(argv, doc)
        load_config(args.config, args.opts)
    except UserError as e:
        sys.stderr.write(f"error: {e}\n")
        sys.exit(2)


class _TqdmHandler(logging.StreamHandler):
    """Console lines printed through tqdm.write: a progress bar is cleared first and redrawn
    below, so a bar and a log line never share a line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # logging's contract: a failing handler reports, never raises
            self.handleError(record)


class _LogFile(logging.FileHandler):
    """The run's log file. A write that fails (disk full, folder made read-only mid-run) is said
    once on stderr and the file is then skipped: the console keeps the log, and the error that
    matters (a checkpoint or result that cannot be written) is not buried under logging tracebacks."""

    def __init__(self, path: str):
        super().__init__(path)
        self.failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        if not isinstance(err, OSError):
            super().handleError(record)
            return
        self.failed = True
        sys.stderr.write(f"warning: cannot write the log file {self.baseFilename} ({err.strerror or err}); "
                         "the log continues on the console only\n")


def _open_log(log_file: str) -> logging.Handler:
    """The log file's handler; a folder that cannot hold it is one error naming it, before any work."""
    try:
        os.makedirs(os.path.dirname(log_file) or ".", exist_ok=True)
        return _LogFile(log_file)
    except OSError as e:
        fix = "free space on that disk" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "make it writable"
        raise UserError(f"cannot write the log file {log_file} ({e.strerror or e}): {fix}, or set save_path "
                        "to another folder") from None


def setup_logging(log_file: str | None = None, level: int = logging.INFO, notes: Sequence[str] = (),
                  first: Sequence[tuple[int, str]] = ()) -> None:
    """Console plus an optional per-run log file; called by CLIs only, never on import. `first`
    ((level, message): the precision the run computes in, and why) opens the log, then `notes`
    (what the config loader mapped from another framework's form) are logged once."""
    handlers: list[logging.Handler] = [_TqdmHandler(sys.stdout)]
    if log_file:
        handlers.append(_open_log(log_file))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s",
                        handlers=handlers, force=True)
    logging.captureWarnings(True)  # library warnings reach the run's log file too
    for level_, message in first:
        log.log(level_, message)
    for note in notes:
        log.info("config: %s", note)


def run_cli(main: Callable[[list[str] | None], int]) -> None:
    """Exit with one clear line for user errors instead of a traceback."""
    try:
        code = main(None)
    except UserError as e:
        sys.stderr.write(f"error: {e}\n")
        _to_log_files(f"error: {e}")
        code = 2
    except KeyboardInterrupt as e:
        sys.stderr.write(f"interrupted: {e}\n" if str(e) else "interrupted\n")
        code = 130
    sys.exit(code or 0)


def _to_log_files(message: str) -> None:
    """The run's log file (if one is open) ends with the error the console showed."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and os.path.exists(handler.baseFilename):
            handler.emit(logging.LogRecord("error", logging.ERROR, __file__, 0, message, None, None))


def enable_determinism() -> None:
    """`deterministic: true`: deterministic kernels everywhere, an error where none exists.

    On the CPU every op this project uses is already deterministic. On CUDA the backward of
    bilinear upsampling and of adaptive average pooling use atomics: with this switch they
    run a slower deterministic path or fail, naming the op.
    """
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=False)
    torch.backends.cudnn.benchmark = False
