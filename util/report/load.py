"""Reading test results: every `results*.json` under a folder, reduced to what the tables need.

A file is `{"config": {...effective config...}, "metrics": Evaluator.compute(), optional
"seeds", "summary" | "mean"/"std"}` as test.py writes it. Runs are told apart by their
`Variant`, derived from the config keys the schema marks (docs/design.md §7).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from model.method import get_method
from util.config import SCHEMA, variant_keys
from util.engine.provenance import test_protocol
from util.errors import UserError
from util.evaluation.metrics import HEADLINE
from util.report.protocol import departures

log = logging.getLogger(__name__)


class Variant(NamedTuple):
    """What distinguishes runs of the same dataset/backbone/shot/split: the values of every
    config key the schema marks as a variant key and that matters for the run (schema order).
    The paper's switches have readable views (modules, negatives, ...); any other marked key
    shows in the label as key=value when it differs from its default."""

    values: tuple[tuple[str, Any], ...]

    def get(self, key: str) -> Any:
        return dict(self.values).get(key)

    @property
    def modules(self) -> str:
        """"baseline" or "+BGEM", "+BGEM+DOEM", ... from the use_* flags."""
        mods = [name for name, k in MODULES if self.get(k)]
        return "+" + "+".join(mods) if mods else "baseline"

    @property
    def negatives(self) -> str:
        """pcl_negatives ("-" when PCL is off)."""
        return str(self.get("pcl_negatives") or "-")

    @property
    def bg_dim(self) -> int | None:
        """BG prototype width (None when there is no BG branch)."""
        return self.get("bg_dim")

    @property
    def coco_style(self) -> str:
        return str(self.get("coco_fold_style") or "")

    @property
    def scnet(self) -> tuple[int, float, str] | None:
        """(scnet_clusters, scnet_lambda, scnet_prior) when SCNet's branch is on."""
        if not self.get("use_scnet"):
            return None
        return int(self.get("scnet_clusters")), float(self.get("scnet_lambda")), str(self.get("scnet_prior"))

    def without_scnet(self) -> "Variant":
        return Variant(tuple((k, v) for k, v in self.values if not k.startswith("scnet_") and k != "use_scnet"))

    def label(self) -> str:
        """Readable name, e.g. '+BGEM+DOEM+PCL D=640', 'baseline' or 'SCNet n=3 λ=0.5'."""
        parts = [self.modules]
        if self.scnet is not None:
            n, lam, prior = self.scnet
            branch = f"SCNet n={n} λ={lam:g}" + ("" if prior == "region" else f" prior={prior}")
            parts = [branch] if self.modules == "baseline" else [f"{self.modules}+{branch}"]
        if self.negatives not in ("-", "do"):
            parts.append(f"neg={self.negatives}")
        if self.bg_dim is not None:
            parts.append(f"D={self.bg_dim}")
        if self.coco_style and self.coco_style != "interleaved":
            parts.append(self.coco_style)
        if self.get("precision"):
            parts.append(f"[{self.get('precision')}]")  # computed in reduced precision (render.py's legend)
        parts += [f"{k}={v}" for k, v in self.values if k not in NAMED and v != SCHEMA[k].default]
        return " ".join(parts)


MODULES = (("BGEM", "use_bgem"), ("DOEM", "use_doem"), ("PCL", "use_pcl"))
# Keys the readable views above already show; every other variant key is shown generically.
NAMED = {k for _, k in MODULES} | {"use_scnet", "scnet_clusters", "scnet_lambda", "scnet_prior", "pcl_negatives",
                                   "bg_dim", "coco_fold_style", "precision"}


def variant_of(cfg: dict, precision: str = "fp32") -> Variant:
    """Variant of a run's recorded config; absent keys (older files) take the schema defaults,
    and `model` counts by the network it builds (pfenet and ntrenet with modules off are one).
    A result computed in reduced precision (bf16, fp16) is a variant of its own, so its figures
    never average with fp32 folds and its row says so."""
    full = {k: cfg.get(k, key.default) for k, key in SCHEMA.items()}
    values = []
    for k in variant_keys(full):
        v = full[k]
        if k == "model":
            v = _network(v)
        values.append((k, tuple(v) if isinstance(v, list) else v))
    if precision != "fp32":
        values.append(("precision", precision))
    return Variant(tuple(values))


def precision_of(data: dict) -> str:
    """The results file's `precision` (fp32, bf16, fp16); older files without it: bf16/fp16 when
    their config's `amp` asked for it, else fp32."""
    recorded = data.get("precision")
    if recorded is None:
        amp = data.get("config", {}).get("amp")
        return amp if amp in ("bf16", "fp16") else "fp32"
    return str(recorded)


def _network(name: str) -> str:
    try:
        return get_method(name).network
    except UserError:
        return name  # a method this checkout does not know: its own row


@dataclass
class Result:
    """One results file, reduced to what the tables need."""

    path: Path
    mtime: float
    dataset: str
    backbone: str
    shot: int
    split: int
    variant: Variant
    miou: float | None
    fbiou: float | None
    precision: float | None
    miou_std: float | None = None
    target: str = ""  # the benchmark tested on when it is not `dataset` (a cross-domain test)
    departures: tuple[str, ...] = ()  # how the test departs from the published protocol (report/protocol.py)
    protocol: dict | None = None  # episodes, seeds, size, ... the figures were measured under
    trained: dict | None = None  # the run's other config values (training length, rates, ...)

    @property
    def key(self) -> tuple:
        return (self.dataset, self.backbone, self.shot, self.split, self.variant, self.target)


def find_results(root: str | os.PathLike) -> list[Path]:
    """All results JSON files under root, sorted; UserError when there are none."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"results folder not found: {root}; pass the experiment folder (e.g. exp/pascal)")
    files = sorted(p for p in root.glob("**/results*.json") if p.is_file())
    if not files:
        raise UserError(f"no results*.json under {root}; run test.sh for an experiment first")
    return files


class LeftOut(UserError):
    """A results file the report leaves out of its tables and names in the Sources table: a link
    to a file that is gone, or a figure that is not a number (NaN, Infinity)."""


def _no_constant(name: str):
    raise LeftOut(f"it holds {name}, which is no figure (a file edited or damaged): re-run test.sh for that "
                  "experiment, or move the file out of the folder")


def read_json(path: Path) -> Any:
    """The one reader of the files the report opens: an unreadable file (a dangling link, no
    permission) or a JSON `NaN` / `Infinity` is one UserError naming the file (LeftOut for the
    latter), never a traceback or an `inf` cell."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=_no_constant)
    except OSError as e:
        raise UserError(f"{path} cannot be read ({e.strerror or e}); restore it or move it out of the folder") from None
    except LeftOut as e:
        raise LeftOut(f"{path}: {e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e}); re-run test.sh for that experiment "
                        "or delete the file") from None


def dangling_links(root: str | os.PathLike) -> list[tuple[Path, str]]:
    """results*.json links under root whose file is gone, each with the note Sources shows."""
    return [(p, f"a link to {os.readlink(p)}, which does not exist") for p in sorted(Path(root).glob("**/results*.json"))
            if p.is_symlink() and not p.exists()]


def load_results(paths: Sequence[Path]) -> tuple[list[Result], list[tuple[Path, str]]]:
    """Every file parsed; those LeftOut (not a number) come back as (path, why) for Sources."""
    results, left_out = [], []
    for path in paths:
        try:
            results.append(load_result(path))
        except LeftOut as e:
            log.warning("%s", e)
            left_out.append((path, str(e).split(": ", 1)[-1]))
    return results, left_out


def _get(d: dict, key: str, path: Path, where: str):
    if not isinstance(d, dict) or key not in d:
        raise UserError(f"{path}: missing '{where}{key}'; this is not a test.py results file: "
                        "re-run test.sh for that experiment or move the file out of the folder")
    return d[key]


def _seed_stats(data: dict) -> tuple[dict, dict]:
    """Across-seed means and stds: test.py's `summary: {metric: {mean, std}}`, or top-level
    `mean: {metric: v}` / `std: {metric: v}`; empty when the file has a single run."""
    summary = data.get("summary")
    if isinstance(summary, dict):
        stats = {k: v for k, v in summary.items() if isinstance(v, dict)}
        return ({k: v.get("mean") for k, v in stats.items()}, {k: v.get("std") for k, v in stats.items()})
    def as_dict(v):
        return v if isinstance(v, dict) else {}
    return as_dict(data.get("mean")), as_dict(data.get("std"))


def load_result(path: Path) -> Result:
    """Parse one results file; UserError naming the file when it is malformed."""
    data = read_json(path)
    cfg = _get(data, "config", path, "")
    met = _get(data, "metrics", path, "")
    vals = {k: _get(cfg, k, path, "config.") for k in ("dataset", "backbone", "shot", "split")}
    _get(met, "miou", path, "metrics.")
    mean, std = _seed_stats(data)
    single = isinstance(data.get("seeds"), list) and len(data["seeds"]) <= 1
    try:
        pick = {k: _opt_float(mean.get(k, met.get(k))) for k in HEADLINE}  # the metric vocabulary
        precision = precision_of(data)  # one reading for the row's variant and its protocol mark
        return Result(Path(path), os.path.getmtime(path), str(vals["dataset"]), str(vals["backbone"]),
                      int(vals["shot"]), int(vals["split"]), variant_of(cfg, precision), pick["miou"],
                      pick["fbiou"],
                      pick["precision"], None if single else _opt_float(std.get("miou")),
                      "" if cfg.get("target") in (None, "", vals["dataset"]) else str(cfg["target"]),
                      departures(cfg, precision), data.get("protocol") or test_protocol(cfg), cfg)
    except (TypeError, ValueError) as e:
        raise UserError(f"{path}: a value has the wrong type ({e}); re-run test.sh for that experiment "
                        "or move the file out of the folder") from None


def _opt_float(v) -> float | None:
    return None if v is None else float(v)


# config keys that never change a figure: where files are, how the run was watched
NOT_RUN_DEFINING = frozenset({"save_path", "resume", "weight", "overwrite", "data_root", "initmodel_dir", "device",
                              "num_workers", "print_freq", "image_every", "val_every", "save_every_iters",
                              "vis", "baselines", "train_list", "val_list", "target_root", "target_list"})


def config_differences(a: Result, b: Result) -> list[str]:
    """`key a -> b` for every run-defining config value in which two results differ."""
    ca, cb = a.trained or {}, b.trained or {}
    keys = sorted((set(ca) | set(cb)) - NOT_RUN_DEFINING)
    return [f"{k} {ca.get(k)!r} -> {cb.get(k)!r}" for k in keys if ca.get(k) != cb.get(k)]


def dedupe(results: Sequence[Result]) -> tuple[list[Result], list[tuple[Result, str]]]:
    """The newest file per (dataset, backbone, shot, split, variant, target), and every other
    file with why it was skipped (the kept file, and how their configs differ): runs whose
    variant keys differ never share a key, so they are never merged."""
    best: dict[tuple, Result] = {}
    skipped: list[tuple[Result, str]] = []
    for r in sorted(results, key=lambda r: (r.mtime, str(r.path))):
        if r.key in best:
            old = best[r.key]
            differ = config_differences(old, r)
            why = f"the same experiment (one table cell) as the newer {r.path}" + (
                f" (differs in {', '.join(differ)})" if differ else "")
            log.warning("%s skipped: %s", old.path, why)
            skipped.append((old, why))
        best[r.key] = r
    return sorted(best.values(), key=lambda r: r.key[:4] + (r.variant.label(),)), skipped


