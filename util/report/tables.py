"""Assemble the paper's tables from test results: `python -m util.report DIR [--format md|csv|both] [--out FILE]`.

Reads every `results*.json` under DIR (test.py writes `results_shot{K}.json`), each
`{"config": {...effective config...}, "metrics": Evaluator.compute(), optional "seeds",
"mean", "std"}`, and lays them out like the paper: Table 1/2 (folds, mean, FB-IoU per
shot), Table 3 (module ablation with precision), Table 4 (PCL negatives) and Fig. 6 (BG
prototype width), each of our cells beside the paper's number and the difference. Runs with
SCNet's query branch (`use_scnet`) get SCNet rows in Tables 1/2 (beside SCNet's published
numbers) and SCNet's Tables 3 (clusters n) and 5 (lambda) when they sweep those.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence

from util.report import paper
from util.config import SCHEMA
from util.errors import UserError

log = logging.getLogger(__name__)
FULL = "+BGEM+DOEM+PCL"
FOLD_COLS = ["Fold-0", "Fold-1", "Fold-2", "Fold-3"]


class Variant(NamedTuple):
    """What distinguishes runs of the same dataset/backbone/shot/split."""

    modules: str  # "baseline" or "+BGEM", "+BGEM+DOEM", ... from the use_* flags
    negatives: str  # pcl_negatives ("-" when PCL is off)
    bg_dim: int | None  # BG prototype width (None when no BG branch)
    coco_style: str  # coco_fold_style ("" unless COCO)
    scnet: tuple[int, float, str] | None = None  # (scnet_clusters, scnet_lambda, scnet_prior) when on

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
        return " ".join(parts)


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

    @property
    def key(self) -> tuple:
        return (self.dataset, self.backbone, self.shot, self.split, self.variant)


class Cell(NamedTuple):
    ours: float | None
    paper: float | None = None
    std: float | None = None
    partial: bool = False


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[tuple[str, list[Cell]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- loading ----------------------------------------------------------------------------
def find_results(root: str | os.PathLike) -> list[Path]:
    """All results JSON files under root, sorted; UserError when there are none."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"results folder not found: {root}; pass the experiment folder (e.g. exp/pascal)")
    files = sorted(p for p in root.glob("**/results*.json") if p.is_file())
    if not files:
        raise UserError(f"no results*.json under {root}; run test.sh for an experiment first")
    return files


def _get(d: dict, key: str, path: Path, where: str):
    if not isinstance(d, dict) or key not in d:
        raise UserError(f"{path}: missing '{where}{key}'; this is not a test.py results file: "
                        "re-run test.sh for that experiment or move the file out of the folder")
    return d[key]


def _variant(cfg: dict) -> Variant:
    """Variant from the config flags; absent keys take the schema defaults."""
    def val(k: str):
        return cfg.get(k, SCHEMA[k].default)
    mods = [name for name, k in (("BGEM", "use_bgem"), ("DOEM", "use_doem"), ("PCL", "use_pcl")) if val(k)]
    modules = "+" + "+".join(mods) if mods else "baseline"
    negatives = str(val("pcl_negatives")) if val("use_pcl") else "-"
    has_bg = val("use_bgem") or val("use_doem")
    style = str(val("coco_fold_style")) if cfg.get("dataset") == "coco" else ""
    scnet = (int(val("scnet_clusters")), float(val("scnet_lambda")), str(val("scnet_prior"))) \
        if val("use_scnet") else None
    return Variant(modules, negatives, int(val("bg_dim")) if has_bg else None, style, scnet)


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
    try:
        data = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e}); re-run test.sh for that experiment "
                        "or delete the file") from None
    cfg = _get(data, "config", path, "")
    met = _get(data, "metrics", path, "")
    vals = {k: _get(cfg, k, path, "config.") for k in ("dataset", "backbone", "shot", "split")}
    _get(met, "miou", path, "metrics.")
    mean, std = _seed_stats(data)
    single = isinstance(data.get("seeds"), list) and len(data["seeds"]) <= 1
    try:
        pick = {k: _opt_float(mean.get(k, met.get(k))) for k in ("miou", "fbiou", "precision")}
        return Result(Path(path), os.path.getmtime(path), str(vals["dataset"]), str(vals["backbone"]),
                      int(vals["shot"]), int(vals["split"]), _variant(cfg), pick["miou"], pick["fbiou"],
                      pick["precision"], None if single else _opt_float(std.get("miou")))
    except (TypeError, ValueError) as e:
        raise UserError(f"{path}: a value has the wrong type ({e}); re-run test.sh for that experiment "
                        "or move the file out of the folder") from None


def _opt_float(v) -> float | None:
    return None if v is None else float(v)


def dedupe(results: Sequence[Result]) -> list[Result]:
    """Keep the newest file per (dataset, backbone, shot, split, variant), warning on repeats."""
    best: dict[tuple, Result] = {}
    for r in sorted(results, key=lambda r: (r.mtime, str(r.path))):
        if r.key in best:
            log.warning("%s and %s hold the same experiment (%s %s %d-shot split %d %s): using the newer %s",
                        best[r.key].path, r.path, r.dataset, r.backbone, r.shot, r.split,
                        r.variant.label(), r.path)
        best[r.key] = r
    return sorted(best.values(), key=lambda r: r.key[:4] + (r.variant.label(),))


# --- building tables --------------------------------------------------------------------
def _group(results: Sequence[Result], *attrs: str) -> dict[tuple, list[Result]]:
    out: dict[tuple, list[Result]] = {}
    for r in results:
        out.setdefault(tuple(getattr(r, a) for a in attrs), []).append(r)
    return out


def _fold_cells(runs: Sequence[Result], ref_folds: Sequence[float | None] | None,
                ref_mean: float | None) -> list[Cell]:
    """Fold-0..3 and Mean cells; the mean is partial (marked *) unless all folds exist."""
    by_split = {r.split: r for r in runs}
    ref_folds = ref_folds or (None,) * 4
    cells = [Cell(by_split[s].miou if s in by_split else None, ref_folds[s],
                  by_split[s].miou_std if s in by_split else None) for s in range(4)]
    got = [c.ours for c in cells if c.ours is not None]
    mean = sum(got) / len(got) if got else None
    return cells + [Cell(mean, ref_mean, partial=0 < len(got) < 4)]


def _avg_cell(runs: Sequence[Result], attr: str, ref: float | None) -> Cell:
    """Fold-averaged FB-IoU or precision (the paper reports only the average)."""
    vals = [getattr(r, attr) for r in runs if getattr(r, attr) is not None and r.split in range(4)]
    splits = {r.split for r in runs}
    mean = sum(vals) / len(vals) if vals else None
    return Cell(mean, ref, partial=bool(vals) and len(splits) < 4)


def _row_label(backbone: str, variant: Variant) -> str:
    name = paper.BACKBONE_NAMES.get(backbone, backbone)
    kind = "NTRENet" if variant.modules == FULL else "baseline (PFENet)"
    if variant.scnet is not None:
        kind = "NTRENet+SCNet" if variant.modules == FULL else "SCNet"
    rest = variant._replace(scnet=None).label().replace(FULL, "").replace("baseline", "").strip()
    if variant.scnet is not None and variant.scnet[2] != "region":
        rest = f"{rest} prior={variant.scnet[2]}".strip()
    return f"{name} {kind}" + (f" {rest}" if rest else "")


def _row_order(key: tuple[str, Variant]) -> tuple:
    """Paper order of backbones (VGG-16, ResNet-50, ResNet-101), NTRENet before baseline, each
    without SCNet's branch before with it."""
    bb, var = key
    known = list(paper.BACKBONE_NAMES)
    return (known.index(bb) if bb in known else len(known), bb, var.modules != FULL, var.scnet is not None,
            var.label())


def _main_reference(variant: Variant) -> dict:
    """Published rows a Table 1/2 row compares with: NTRENet, PFENet, SCNet, none (NTRENet+SCNet)."""
    if variant.scnet is not None:
        return paper.SCNET if variant.modules == "baseline" else {}
    return paper.NTRENET if variant.modules == FULL else paper.PFENET


def _published_scnet(variant: Variant) -> bool:
    """No branch, or the branch as in SCNet's Tables 1 and 2 (n = 3, lambda = 0.5)."""
    return variant.scnet is None or variant.scnet[:2] == paper.SCNET_PUBLISHED


def main_table(dataset: str, results: Sequence[Result]) -> Table | None:
    """Table 1 (PASCAL) / Table 2 (COCO) layout: full model vs NTRENet, baseline vs PFENet."""
    runs = [r for r in results if r.dataset == dataset and r.variant.negatives in ("do", "-")
            and r.variant.modules in (FULL, "baseline") and _published_scnet(r.variant)]
    if not runs:
        return None
    shots = sorted({r.shot for r in runs})
    cols = [f"{k}-shot {c}" for k in shots for c in FOLD_COLS + ["Mean", "FB-IoU"]]
    name = {"pascal": "Table 1 (PASCAL-5i)", "coco": "Table 2 (COCO-20i)"}.get(dataset, dataset)
    table = Table(f"{name}: class mIoU per fold, mean, FB-IoU", cols)
    groups = _group(runs, "backbone", "variant")
    for bb, var in sorted(groups, key=_row_order):
        group = groups[(bb, var)]
        ref_table = _main_reference(var)
        cells: list[Cell] = []
        for k in shots:
            ref = ref_table.get((dataset, bb, k))
            shot_runs = [r for r in group if r.shot == k]
            cells += _fold_cells(shot_runs, ref.folds if ref else None, ref.mean if ref else None)
            cells.append(_avg_cell(shot_runs, "fbiou", ref.fbiou if ref else None))
        table.rows.append((_row_label(bb, var), cells))
    table.notes.append("NTRENet rows compare with the paper's NTRENet numbers, baseline rows with "
                       "PFENet's published numbers (as cited in the paper's table).")
    if any(var.scnet is not None for _, var in groups):
        table.notes.append("SCNet rows (PFENet + SCNet's branch, n = 3, λ = 0.5) compare with SCNet's published "
                           "numbers (its Tables 1 and 2, no FB-IoU reported); NTRENet+SCNet has none.")
    return table


_ABLATION_ORDER = ["baseline", "+BGEM", "+BGEM+DOEM", FULL]


def _ablation_order(v: Variant) -> tuple:
    return (_ABLATION_ORDER.index(v.modules) if v.modules in _ABLATION_ORDER else len(_ABLATION_ORDER), v.label())


def _variant_table(title: str, runs: Sequence[Result], ref_fn, extra: tuple[str, str] | None,
                   order_key=_ablation_order, label_fn=Variant.label) -> Table:
    """Rows = variants of one (dataset, backbone, shot); columns folds, Mean, [extra]."""
    cols = FOLD_COLS + ["Mean"] + ([extra[1]] if extra else [])
    table = Table(title, cols)
    groups = {key[0]: group for key, group in _group(runs, "variant").items()}
    for var in sorted(groups, key=order_key):
        ref = ref_fn(var)  # (folds, mean, extra) or None
        cells = _fold_cells(groups[var], ref[0] if ref else None, ref[1] if ref else None)
        if extra:
            cells.append(_avg_cell(groups[var], extra[0], ref[2] if ref else None))
        table.rows.append((label_fn(var), cells))
    return table


def _setting_name(dataset: str, backbone: str, shot: int) -> str:
    return f"{dataset}, {paper.BACKBONE_NAMES.get(backbone, backbone)}, {shot}-shot"


def ablation_tables(results: Sequence[Result]) -> list[Table]:
    """Table 3 layout for every setting with at least two module combinations."""
    runs = [r for r in results if r.variant.negatives in ("do", "-") and r.variant.scnet is None]
    tables = []
    for setting, group in _group(runs, "dataset", "backbone", "shot").items():
        if len({r.variant.modules for r in group}) < 2:
            continue
        on_paper = setting == paper.ABLATION_SETTING
        ref_fn = (lambda v: paper.ABLATION.get(v.modules)) if on_paper else (lambda v: None)
        tables.append(_variant_table(f"Table 3 (module ablation): {_setting_name(*setting)}",
                                     group, ref_fn, ("precision", "Precision")))
    return tables


def negatives_tables(results: Sequence[Result]) -> list[Table]:
    """Table 4 layout (PCL negatives) where a full-model run used other negatives than DO."""
    runs = [r for r in results if r.variant.modules == FULL and r.variant.scnet is None]
    tables = []
    for setting, group in _group(runs, "dataset", "backbone", "shot").items():
        if {r.variant.negatives for r in group} <= {"do"}:
            continue
        on_paper = setting == paper.PCL_NEGATIVES_SETTING

        def ref_fn(v: Variant, on_paper: bool = on_paper):
            row = paper.PCL_NEGATIVES.get(v.negatives) if on_paper else None
            return (row.folds, row.mean, None) if row else None
        tables.append(_variant_table(f"Table 4 (PCL negatives): {_setting_name(*setting)}", group, ref_fn, None))
    return tables


def bg_dim_tables(results: Sequence[Result]) -> list[Table]:
    """Fig. 6 sweep (BG prototype width) where full-model runs differ only in bg_dim."""
    runs = [r for r in results if r.variant.modules == FULL and r.variant.negatives == "do" and r.variant.scnet is None]
    tables = []
    for setting, group in _group(runs, "dataset", "backbone", "shot").items():
        if len({r.variant for r in group}) < 2:
            continue
        table = _variant_table(f"Fig. 6 (BG prototype width D): {_setting_name(*setting)}", group,
                               lambda v: None, ("fbiou", "FB-IoU"))
        table.notes.append(paper.BG_DIM_NOTE)
        tables.append(table)
    return tables


class _Sweep(NamedTuple):
    """One of SCNet's hyper-parameter tables: which value it sweeps and which it holds."""

    title: str
    swept: int        # index in Variant.scnet of the swept value
    held: float       # the other value (n = 3 or lambda = 0.5)
    off_value: float  # what a run without the branch counts as (n = 0, lambda = 0)
    name: str
    published: dict


_SWEEPS = (_Sweep("SCNet Table 3 (background clusters n, λ = 0.5)", 0, 0.5, 0, "n", paper.SCNET_CLUSTERS),
           _Sweep("SCNet Table 5 (loss weight λ, n = 3)", 1, 3, 0.0, "λ", paper.SCNET_LAMBDA))


def _sweep_value(sweep: _Sweep, v: Variant) -> float | None:
    """The swept value of a run in this sweep, None when the run is not part of it."""
    if v.scnet is None:
        return sweep.off_value
    n, lam, _ = v.scnet
    if sweep.swept == 0:
        return n if lam == sweep.held else None
    return lam if n == sweep.held else None


def scnet_tables(results: Sequence[Result]) -> list[Table]:
    """SCNet Tables 3 and 5 for every (setting, modules) where branch runs take two or more values of
    n (at lambda 0.5) or lambda (at n = 3); runs without the branch are the n = 0 / lambda = 0 row."""
    tables = []
    for sweep in _SWEEPS:
        runs = [r for r in results if r.variant.negatives in ("do", "-") and _sweep_value(sweep, r.variant) is not None
                and (r.variant.scnet is None or r.variant.scnet[2] == "region")]
        for setting, group in _group(runs, "dataset", "backbone", "shot").items():
            for modules in sorted({r.variant.modules for r in group}):
                sub = [r for r in group if r.variant.modules == modules]
                if len({_sweep_value(sweep, r.variant) for r in sub if r.variant.scnet}) > 1:  # a sweep, not on/off
                    tables.append(_sweep_table(sweep, setting, modules, sub))
    return tables


def _sweep_table(sweep: _Sweep, setting: tuple, modules: str, runs: Sequence[Result]) -> Table:
    on_paper = setting == paper.SCNET_ABLATION_SETTING and modules == "baseline"

    def ref_fn(v: Variant):
        row = sweep.published.get(_sweep_value(sweep, v)) if on_paper else None
        return (row.folds, row.mean, None) if row else None

    def label(v: Variant) -> str:
        return f"{sweep.name}={_sweep_value(sweep, v):g}" + (" (no branch)" if v.scnet is None else "")
    base = "PFENet baseline" if modules == "baseline" else f"{modules} (NTRENet)" if modules == FULL else modules
    table = _variant_table(f"{sweep.title}: {_setting_name(*setting)}, {base}", runs, ref_fn, None,
                           order_key=lambda v: _sweep_value(sweep, v), label_fn=label)
    if on_paper and sweep.swept == 1:
        table.notes.append(paper.SCNET_LAMBDA_NOTE)
    return table


def build_tables(results: Sequence[Result]) -> list[Table]:
    """Every table the results support, main tables first."""
    tables = [main_table(d, results) for d in sorted({r.dataset for r in results})]
    return [t for t in tables if t] + ablation_tables(results) + negatives_tables(results) + bg_dim_tables(results) \
        + scnet_tables(results)


# --- rendering --------------------------------------------------------------------------
def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def format_cell(c: Cell) -> str:
    """'63.1 (65.4, -2.3)': ours (paper, ours - paper); '-' when we have no number;
    '*' marks a mean over fewer than four folds (no difference is given for it)."""
    ours = _num(c.ours) + (f"±{c.std:.1f}" if c.std is not None and c.ours is not None else "")
    ours += "*" if c.partial else ""
    if c.paper is None:
        return ours
    if c.ours is None or c.partial:
        return f"{ours} ({c.paper:.1f})"
    return f"{ours} ({c.paper:.1f}, {c.ours - c.paper:+.1f})"


def render_markdown(tables: Sequence[Table]) -> str:
    """All tables as Markdown, with a legend."""
    out = ["Cells: ours (paper, ours - paper), class mIoU / FB-IoU / precision in %. "
           "'-': no result; '*': mean over fewer than 4 folds; '±': std over seeds.", ""]
    for t in tables:
        out += [f"### {t.title}", "", "| | " + " | ".join(t.columns) + " |",
                "|---|" + "---|" * len(t.columns)]
        out += ["| " + label + " | " + " | ".join(format_cell(c) for c in cells) + " |" for label, cells in t.rows]
        out += [""] + [f"_{n}_" for n in t.notes] + ([""] if t.notes else [])
    return "\n".join(out).rstrip() + "\n"


def render_csv(tables: Sequence[Table]) -> str:
    """Long format: one line per cell (table, row, column, ours, std, paper, diff, partial)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "row", "column", "ours", "ours_std", "paper", "diff", "partial"])
    for t in tables:
        for label, cells in t.rows:
            for col, c in zip(t.columns, cells):
                diff = c.ours - c.paper if None not in (c.ours, c.paper) and not c.partial else None
                w.writerow([t.title, label, col, _csv_num(c.ours), _csv_num(c.std), _csv_num(c.paper),
                            _csv_num(diff), int(c.partial)])
    return buf.getvalue()


def _csv_num(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def make_report(root: str | os.PathLike, fmt: str = "md") -> dict[str, str]:
    """{'md': text} / {'csv': text} / both, from every results file under root."""
    results = dedupe([load_result(p) for p in find_results(root)])
    tables = build_tables(results)
    out = {}
    if fmt in ("md", "both"):
        out["md"] = render_markdown(tables)
    if fmt in ("csv", "both"):
        out["csv"] = render_csv(tables)
    return out


# --- command line -----------------------------------------------------------------------
def _write(texts: dict[str, str], out: str | None) -> None:
    """To stdout, or to FILE (with --format both: FILE's stem + .md and .csv)."""
    if not out:
        sys.stdout.write("\n".join(texts.values()))
        return
    for fmt, text in texts.items():
        path = Path(out).with_suffix(f".{fmt}") if len(texts) > 1 else Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        log.info("wrote %s", path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m util.report", description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="folder searched recursively for results*.json (e.g. exp/pascal)")
    parser.add_argument("--format", choices=("md", "csv", "both"), default="md")
    parser.add_argument("--out", help="write here instead of stdout (both: FILE.md and FILE.csv)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        _write(make_report(args.dir, args.format), args.out)
    except UserError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    return 0

