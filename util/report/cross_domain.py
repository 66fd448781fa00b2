"""Cross-domain tables from results of `test.py ... target NAME`: PATNet's four-target table
(PASCAL -> Deepglobe, ISIC, Chest X-ray, FSS-1000), the meta-memory paper's COCO -> SUIM and
PASCAL -> SUIM tables and its COCO -> PASCAL ablation, each of our cells beside the published
number where one exists (util/report/cross_domain_paper.py)."""
from __future__ import annotations

from typing import Sequence

from util.data.benchmarks import get_benchmark
from util.report import cross_domain_paper as published
from util.report.load import Result, Variant
from util.report.paper import BACKBONE_NAMES
from util.report.render import Cell, Table
from util.report.tables import FOLD_COLS, _fold_cells, _group, _row_label

REF_BACKBONE = "resnet50"


def _mmt_switches(v: Variant) -> tuple[bool, bool, bool] | None:
    """(Cons, MEnS, MEnT) of a run with MMT, None without."""
    if not v.get("use_mmt"):
        return None
    return bool(v.get("mmt_contrast")), bool(v.get("mmt_enhance_train")), bool(v.get("mmt_enhance_test"))


def _label(backbone: str, v: Variant) -> str:
    mmt = _mmt_switches(v)
    base = _row_label(backbone, Variant(tuple((k, x) for k, x in v.values if not k.startswith(("mmt_", "use_mmt")))))
    return base if mmt is None else f"{base} + MMT {published.MMT_ABLATION_ROWS.get(mmt, mmt)}"


def suite_table(results: Sequence[Result]) -> Table | None:
    """PASCAL -> the four targets; one row per (backbone, variant, PASCAL fold)."""
    runs = [r for r in results if r.dataset == "pascal" and r.target in published.SUITE_TARGETS]
    if not runs:
        return None
    shots = sorted({r.shot for r in runs})
    names = [get_benchmark(t).title for t in published.SUITE_TARGETS]
    table = Table("PATNet's cross-domain table: PASCAL-5i -> four targets, class mIoU",
                  [f"{k}-shot {n}" for k in shots for n in names + ["Mean"]])
    for (bb, var, split), group in sorted(_group(runs, "backbone", "variant", "split").items(),
                                          key=lambda kv: (kv[0][0], kv[0][1].label(), kv[0][2])):
        ref = published.PFENET_SUITE if bb == REF_BACKBONE and var.modules == "baseline" \
            and _mmt_switches(var) is None else {}
        cells = []
        for k in shots:
            got = {r.target: r.miou for r in group if r.shot == k}
            row = [Cell(got.get(t), ref.get(t, {}).get(k)) for t in published.SUITE_TARGETS]
            have = [c.ours for c in row if c.ours is not None]
            mean = sum(have) / len(have) if have else None
            cells += row + [Cell(mean, ref.get("mean", {}).get(k), partial=0 < len(have) < len(row))]
        table.rows.append((f"{_label(bb, var)}, fold {split}", cells))
    table.rows.append(("PATNet (published, ResNet-50)", [Cell(None, published.PATNET[t][k])
                                                        for k in shots for t in (*published.SUITE_TARGETS, "mean")]))
    table.notes.append("PATNet trains one model on all PASCAL classes; ours are per PASCAL-5i fold. The PFENet "
                       "baseline rows (ResNet-50) compare with PFENet's numbers as PATNet's table reports them.")
    return table


def suim_tables(results: Sequence[Result]) -> list[Table]:
    """COCO-20i -> SUIM and PASCAL-5i -> SUIM: folds of the source, mean."""
    tables = []
    for (source, shot), runs in sorted(_group([r for r in results if r.target == "suim"], "dataset", "shot").items()):
        table = Table(f"{get_benchmark(source).title} -> SUIM, {shot}-shot, class mIoU", FOLD_COLS + ["Mean"])
        for (bb, var), group in sorted(_group(runs, "backbone", "variant").items(), key=lambda kv: kv[0][1].label()):
            ref = published.MMT_SUIM.get(source) if (bb == REF_BACKBONE and shot == 1 and _mmt_switches(var)
                                                      == (True, True, True)) else None
            table.rows.append((_label(bb, var), _fold_cells(group, ref[0] if ref else None, ref[1] if ref else None)))
        table.notes.append("Rows with every MMT switch on (ResNet-50, 1-shot) compare with the meta-memory "
                           "paper's own numbers.")
        tables.append(table)
    return tables


def coco_to_pascal_table(results: Sequence[Result]) -> list[Table]:
    """COCO-20i -> PASCAL-5i: folds and mean per MMT ablation row."""
    tables = []
    runs = [r for r in results if r.dataset == "coco" and r.target == "pascal"]
    for (bb, shot), group in sorted(_group(runs, "backbone", "shot").items()):
        table = Table(f"COCO-20i -> PASCAL-5i ({BACKBONE_NAMES.get(bb, bb)}, {shot}-shot): MMT ablation, class mIoU",
                      FOLD_COLS + ["Mean"])
        for var, rows in sorted(_group(group, "variant").items(), key=lambda kv: kv[0][0].label()):
            key = _mmt_switches(var[0])
            # BS is the meta-memory paper's own baseline, which its slides do not identify: only MMT rows compare
            ref = published.MMT_ABLATION.get(key) if key is not None and bb == REF_BACKBONE and shot == 1 else None
            table.rows.append((_label(bb, var[0]), _fold_cells(rows, None, ref)))
        table.notes.append("The published ablation gives only the mean (ResNet-50, 1-shot): BS 57.4, (a) Cons 62.8, "
                           "(b) Cons+MEnS 63.5, (c) MEnS+MEnT 62.5, (d) all 65.6. BS is that paper's own baseline, "
                           "which it does not identify as NTRENet or PFENet: rows without MMT are not set beside it.")
        tables.append(table)
    return tables


def cross_domain_tables(results: Sequence[Result]) -> list[Table]:
    """Every cross-domain table the results support, and one table per other (source, target)."""
    known = [t for t in [suite_table(results)] if t] + suim_tables(results) + coco_to_pascal_table(results)
    covered = {(r.dataset, r.target) for r in results
               if (r.dataset == "pascal" and r.target in published.SUITE_TARGETS) or r.target == "suim"
               or (r.dataset == "coco" and r.target == "pascal")}
    for (source, target), runs in sorted(_group(results, "dataset", "target").items()):
        if (source, target) in covered:
            continue
        for shot, group in sorted(_group(runs, "shot").items()):
            table = Table(f"{get_benchmark(source).title} -> {get_benchmark(target).title}, {shot[0]}-shot, "
                          "class mIoU (no published numbers)", FOLD_COLS + ["Mean"])
            for (bb, var), rows in sorted(_group(group, "backbone", "variant").items(), key=lambda kv: kv[0][1].label()):
                table.rows.append((_label(bb, var), _fold_cells(rows, None, None)))
            known.append(table)
    return known
