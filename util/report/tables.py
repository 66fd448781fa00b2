"""The paper's tables from loaded results (util/report/load.py): Table 1/2 (folds, mean,
FB-IoU per shot), Table 3 (module ablation with precision), Table 4 (PCL negatives) and
Fig. 6 (BG prototype width), each of our cells beside the paper's number and the difference.
Runs with SCNet's query branch (`use_scnet`) get SCNet rows in Tables 1/2 (beside SCNet's
published numbers) and SCNet's Tables 3 (clusters n) and 5 (lambda) when they sweep those.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

from util.report import paper, qgnet
from util.report.load import Result, Variant
from util.report.render import Cell, Table

FULL = "+BGEM+DOEM+PCL"
FOLD_COLS = ["Fold-0", "Fold-1", "Fold-2", "Fold-3"]


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
                  by_split[s].miou_std if s in by_split else None,
                  other_protocol=s in by_split and bool(by_split[s].departures)) for s in range(4)]
    got = [c.ours for c in cells if c.ours is not None]
    mean = sum(got) / len(got) if got else None
    return cells + [Cell(mean, ref_mean, partial=0 < len(got) < 4, other_protocol=any(c.other_protocol for c in cells))]


def _avg_cell(runs: Sequence[Result], attr: str, ref: float | None) -> Cell:
    """Fold-averaged FB-IoU or precision (the paper reports only the average)."""
    vals = [getattr(r, attr) for r in runs if getattr(r, attr) is not None and r.split in range(4)]
    splits = {r.split for r in runs}
    mean = sum(vals) / len(vals) if vals else None
    return Cell(mean, ref, partial=bool(vals) and len(splits) < 4, other_protocol=any(r.departures for r in runs))


def _row_label(backbone: str, variant: Variant) -> str:
    name = paper.BACKBONE_NAMES.get(backbone, backbone)
    if qgnet.has_prior(variant):
        return f"{name} {qgnet.row_kind(variant, FULL)}"
    kind = "NTRENet" if variant.modules == FULL else "baseline (PFENet)"
    if variant.scnet is not None:
        kind = "NTRENet+SCNet" if variant.modules == FULL else "SCNet"
    rest = variant.without_scnet().label().replace(FULL, "").replace("baseline", "").strip()
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
            and r.variant.modules in (FULL, "baseline") and _published_scnet(r.variant)
            and r.variant.get("model") != "bam"  # BAM: util/report/bam.py
            and qgnet.in_main_table(dataset, r.variant)]
    if not runs:
        return None
    shots = sorted({r.shot for r in runs})
    cols = [f"{k}-shot {c}" for k in shots for c in FOLD_COLS + ["Mean", "FB-IoU"]]
    name = {"pascal": "Table 1 (PASCAL-5i)", "coco": "Table 2 (COCO-20i)"}.get(dataset, dataset)
    table = Table(f"{name}: class mIoU per fold, mean, FB-IoU", cols)
    groups = _group(runs, "backbone", "variant")
    for bb, var in sorted(groups, key=_row_order):
        group = groups[(bb, var)]
        ref_table = qgnet.reference(dataset, var) if qgnet.has_prior(var) else _main_reference(var)
        cells: list[Cell] = []
        for k in shots:
            ref = ref_table.get((dataset, bb, k))
            shot_runs = [r for r in group if r.shot == k]
            cells += _fold_cells(shot_runs, ref.folds if ref else None, ref.mean if ref else None)
            cells.append(_avg_cell(shot_runs, "fbiou", ref.fbiou if ref else None))
        table.rows.append((_row_label(bb, var), cells))
    table.notes.append("NTRENet rows compare with the paper's NTRENet numbers, baseline rows with "
                       "PFENet's published numbers (as cited in the paper's table).")
    if any(qgnet.has_prior(var) for _, var in groups):
        table.notes.append("QGNet rows compare with QGNet's published 473 x 473 numbers (its Tables I-IV); "
                           "NTRENet + QGNet prior has none.")
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


def qgnet_pretraining_tables(results: Sequence[Result]) -> list[Table]:
    """QGNet Tables V-VI for every setting with QGNet runs of two or more prior extractor pre-trainings."""
    runs = [r for r in results if qgnet.has_prior(r.variant) and r.variant.modules == "baseline"]
    tables = []
    for setting, group in _group(runs, "dataset", "backbone", "shot").items():
        if len({qgnet.pretraining(r.variant) for r in group}) < 2:
            continue
        table = _variant_table(f"QGNet Tables V-VI (prior extractor pre-training): {_setting_name(*setting)}", group,
                               lambda v: qgnet.pretraining_reference(setting, v), None,
                               order_key=qgnet.pretraining_label, label_fn=qgnet.pretraining_label)
        if setting == paper.QGNET_PRIOR_SETTING:
            table.notes.append("Table VI's first row has no check mark in the paper's text; it is read as local only.")
        tables.append(table)
    return tables


def build_tables(results: Sequence[Result]) -> list[Table]:
    """Every table the results support, main tables first (NTRENet's and SCNet's tables leave out
    runs with QGNet's prior map, which have their own)."""
    tables = [main_table(d, results) for d in sorted({r.dataset for r in results})]
    plain = [r for r in results if not qgnet.has_prior(r.variant)]
    return [t for t in tables if t] + ablation_tables(plain) + negatives_tables(plain) + bg_dim_tables(plain) \
        + scnet_tables(plain) + qgnet_pretraining_tables(results)
