"""BAM's tables: the standard protocol (class mIoU per fold beside BAM's published means) and
the generalized FSS protocol (mIoU of base, novel, all classes and the base/novel mean per fold).

Published numbers: the fold-averaged 1- and 5-shot class mIoU of the BAM release's README
("Learning What Not to Segment", CVPR 2022), PASCAL-5i and COCO-20i, VGG-16 and ResNet-50.
Per-fold and generalized-FSS numbers are not among the sources this project cites, so those
cells show ours alone.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from util.errors import UserError
from util.report.load import Result, read_json
from util.report.render import Cell, Table
from util.report.tables import FOLD_COLS, _avg_cell, _fold_cells

# (dataset, backbone, shot) -> fold-averaged class mIoU (%)
BAM_PUBLISHED: dict[tuple[str, str, int], float] = {
    ("pascal", "vgg", 1): 64.41, ("pascal", "vgg", 5): 68.76,
    ("pascal", "resnet50", 1): 67.81, ("pascal", "resnet50", 5): 70.91,
    ("coco", "vgg", 1): 43.50, ("coco", "vgg", 5): 49.34,
    ("coco", "resnet50", 1): 46.23, ("coco", "resnet50", 5): 51.16,
}
GFSS_METRICS = (("miou_base", "base"), ("miou_novel", "novel"), ("miou_total", "all"), ("miou_mean", "mean b/n"))
BAM_KEYS = ("meta_learner", "low_layer", "bam_output")  # the variant keys that tell BAM runs apart


def is_bam(r: Result) -> bool:
    return r.variant.get("model") == "bam"


def bam_label(r: Result) -> str:
    extra = [f"{k}={r.variant.get(k)}" for k in BAM_KEYS if r.variant.get(k) not in (None, "bam", "layer2", "final")]
    return " ".join(["BAM", *extra])


def bam_tables(results: Sequence[Result]) -> list[Table]:
    """Per dataset: BAM rows (by backbone and BAM variant), folds, mean beside BAM's published mean."""
    tables = []
    for dataset in sorted({r.dataset for r in results if is_bam(r)}):
        runs = [r for r in results if is_bam(r) and r.dataset == dataset]
        shots = sorted({r.shot for r in runs})
        cols = [f"{k}-shot {c}" for k in shots for c in FOLD_COLS + ["Mean", "FB-IoU"]]
        table = Table(f"BAM on {dataset}: class mIoU per fold, mean, FB-IoU", cols)
        for bb, label in sorted({(r.backbone, bam_label(r)) for r in runs}):
            group = [r for r in runs if r.backbone == bb and bam_label(r) == label]
            cells: list[Cell] = []
            for k in shots:
                shot_runs = [r for r in group if r.shot == k]
                ref = BAM_PUBLISHED.get((dataset, bb, k)) if label == "BAM" else None
                cells += _fold_cells(shot_runs, None, ref) + [_avg_cell(shot_runs, "fbiou", None)]
            table.rows.append((f"{bb} {label}", cells))
        table.notes.append("Means compare with the BAM release's published fold averages (no per-fold "
                           "numbers or FB-IoU are cited); bam_output=meta rows are the meta learner alone.")
        tables.append(table)
    return tables


def _load_gfss(path: Path) -> dict:
    try:
        data = read_json(path)
        cfg, res = data["config"], data["gfss"]
        return {"dataset": cfg["dataset"], "backbone": cfg["backbone"], "shot": int(cfg["shot"]),
                "split": int(cfg["split"]), **{k: float(res[k]) for k, _ in GFSS_METRICS}}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path} is not a test_gfss.py results file ({type(e).__name__}: {e}); re-run "
                        "test_gfss.py for that experiment or move the file out of the folder") from None


def gfss_tables(root: str | Path) -> list[Table]:
    """Generalized FSS: one row per dataset, backbone and shot; base/novel/all/mean per fold and averaged."""
    rows = [_load_gfss(p) for p in sorted(Path(root).glob("**/gfss_shot*.json"))]
    if not rows:
        return []
    table = Table("BAM generalized FSS: mIoU of base, novel, all classes and the base/novel mean",
                  [f"{c} {name}" for c in FOLD_COLS + ["Mean"] for _, name in GFSS_METRICS])
    for key in sorted({(r["dataset"], r["backbone"], r["shot"]) for r in rows}):
        by_split = {r["split"]: r for r in rows if (r["dataset"], r["backbone"], r["shot"]) == key}
        cells = [Cell(by_split[s][m] if s in by_split else None) for s in range(4) for m, _ in GFSS_METRICS]
        got = list(by_split.values())
        cells += [Cell(sum(r[m] for r in got) / len(got), partial=len(got) < 4) for m, _ in GFSS_METRICS]
        table.rows.append((f"{key[0]} {key[1]} {key[2]}-shot", cells))
    table.notes.append("No published generalized-FSS numbers are cited here: ours alone.")
    return [table]
