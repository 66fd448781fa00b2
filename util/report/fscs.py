"""FS-CS tables ("Integrative Few-Shot Learning for Classification and Segmentation", Tables 1,
2 and 2c): test.py's `results_way<N>_shot<K>.json` files beside the published ER and mIoU.

One summary table per (dataset, backbone, shot) with 1-way and 2-way ER / mIoU averaged over the
folds, and one per-fold table per way. Rows are methods: the `model` (weak labels `_w`) and any
other variant key that differs from its default (the Table 2c switches, NTRENet's modules, ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from util.config import SCHEMA
from util.errors import UserError
from util.report.load import Variant, precision_of, read_json, variant_of
from util.report.render import Cell, Table

# PASCAL-5i, ResNet-50, 1-shot: (method, way) -> ((ER fold 0..3, mean), (mIoU fold 0..3, mean))
PASCAL = {
    ("PANet", 1): ((69.9, 67.7, 68.8, 69.4, 69.0), (32.8, 45.8, 31.0, 35.1, 36.2)),
    ("PFENet", 1): ((69.8, 82.4, 68.1, 77.9, 74.6), (38.3, 54.7, 35.1, 43.8, 43.0)),
    ("HSNet", 1): ((86.6, 84.8, 76.9, 86.3, 83.7), (49.1, 59.7, 41.0, 49.0, 49.7)),
    ("ASNet_w", 1): ((86.4, 86.3, 70.9, 84.5, 82.0), (10.8, 20.2, 13.1, 16.1, 15.0)),
    ("ASNet", 1): ((84.9, 89.6, 79.0, 86.2, 84.9), (51.7, 61.5, 43.3, 52.8, 52.3)),
    ("PANet", 2): ((56.2, 47.5, 44.6, 55.4, 50.9), (33.3, 46.0, 31.2, 38.4, 37.2)),
    ("PFENet", 2): ((22.5, 61.7, 40.3, 39.5, 41.0), (31.1, 47.3, 30.8, 32.2, 35.3)),
    ("HSNet", 2): ((68.0, 73.2, 57.0, 70.9, 67.3), (42.4, 53.7, 34.0, 43.9, 43.5)),
    ("ASNet_w", 2): ((71.6, 72.4, 46.4, 68.0, 64.6), (11.4, 20.8, 12.5, 15.9, 15.1)),
    ("ASNet", 2): ((68.5, 76.2, 58.6, 70.0, 68.3), (48.5, 58.3, 36.3, 48.3, 47.8)),
}
# COCO-20i, ResNet-50, 1-shot, fold means only: (method, way) -> (ER, mIoU)
COCO = {("PANet", 1): (66.7, 25.2), ("PFENet", 1): (71.4, 31.9), ("HSNet", 1): (77.0, 34.3),
        ("ASNet", 1): (78.6, 35.8), ("PANet", 2): (48.5, 23.6), ("PFENet", 2): (36.5, 22.6),
        ("HSNet", 2): (62.5, 29.5), ("ASNet", 2): (63.1, 31.6)}
# Table 2c, PASCAL-5i 1-way 1-shot fold means: ablation row -> (ER, mIoU)
ABLATIONS = {"ASNet asnet_attention=local": (83.9, 44.6), "ASNet asnet_masked_attention=False": (83.8, 50.8),
             "ASNet asnet_fusion=False": (83.1, 51.6)}
PUBLISHED_SETTING = ("resnet50", 1)
FULL_NTRENET = "+BGEM+DOEM+PCL"
SHOWN_ELSEWHERE = {"model", "ifsl", "way", "weak"}


@dataclass
class FSCSResult:
    path: Path
    dataset: str
    backbone: str
    shot: int
    way: int
    split: int
    method: str
    er: float
    miou: float


def method_name(variant: Variant, cfg: dict) -> str:
    """'ASNet', 'ASNet_w', 'HSNet', 'PFENet', 'NTRENet' (+ its modules when not all on), then key=value of
    the method's other variant keys that differ from their defaults."""
    model = str(cfg.get("model", "ntrenet"))
    if model == "asnet":
        name = "ASNet" + ("_w" if cfg.get("weak") else "")
        keys = {k for k, _ in variant.values if k.startswith("asnet_")}
    elif model == "hsnet":
        name, keys = "HSNet", set()
    else:
        modules = variant.modules
        name = "PFENet" if modules == "baseline" else "NTRENet" + ("" if modules == FULL_NTRENET else f" {modules}")
        keys = {k for k, _ in variant.values if not k.startswith("asnet_") and k not in SHOWN_ELSEWHERE
                and not k.startswith("use_")}
    extra = [f"{k}={v}" for k, v in variant.values if k in keys and k in SCHEMA and v != SCHEMA[k].default]
    reduced = [f"[{variant.get('precision')}]"] if variant.get("precision") else []  # not fp32
    return " ".join([name, *extra, *reduced])


def is_fscs(path: Path) -> bool:
    """True for an FS-CS results file (test.py writes task 'fscs' into it)."""
    try:
        return read_json(path).get("task") == "fscs"
    except (UserError, AttributeError):
        return False  # the binary loader reports malformed files


def load_fscs(path: Path) -> FSCSResult:
    data = read_json(path)
    try:
        cfg, summary = data["config"], data["summary"]
        return FSCSResult(Path(path), str(cfg["dataset"]), str(cfg["backbone"]), int(cfg["shot"]), int(cfg["way"]),
                          int(cfg["split"]), method_name(variant_of(cfg, precision_of(data)), cfg),
                          float(summary["er"]["mean"]),
                          float(summary["miou"]["mean"]))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path}: not an FS-CS results file of test.py ({e!r} missing or wrong); re-run "
                        "test.sh for that experiment or move the file out of the folder") from None


def _reference(dataset: str, backbone: str, shot: int, method: str, way: int) -> tuple[tuple, tuple] | None:
    """((ER folds, mean), (mIoU folds, mean)) as published, or None."""
    if (backbone, shot) != PUBLISHED_SETTING:
        return None
    if dataset == "pascal":
        if (method, way) in PASCAL:
            return PASCAL[(method, way)]
        if way == 1 and method in ABLATIONS:
            er, miou = ABLATIONS[method]
            return (None,) * 4 + (er,), (None,) * 4 + (miou,)
    if dataset == "coco" and (method, way) in COCO:
        er, miou = COCO[(method, way)]
        return (None,) * 4 + (er,), (None,) * 4 + (miou,)
    return None


def _fold_cells(runs: Sequence[FSCSResult], attr: str, ref: tuple | None) -> list[Cell]:
    by_split = {r.split: getattr(r, attr) for r in runs}
    ref = ref or (None,) * 5
    cells = [Cell(by_split.get(s), ref[s]) for s in range(4)]
    got = [c.ours for c in cells if c.ours is not None]
    return cells + [Cell(sum(got) / len(got) if got else None, ref[4], partial=0 < len(got) < 4)]


def fscs_tables(results: Sequence[FSCSResult]) -> list[Table]:
    """Summary (1-way / 2-way ER and mIoU, fold means) and per-fold tables per setting."""
    latest: dict[tuple, FSCSResult] = {}
    for r in sorted(results, key=lambda r: (Path(r.path).stat().st_mtime, str(r.path))):
        latest[(r.dataset, r.backbone, r.shot, r.way, r.split, r.method)] = r
    tables = []
    for dataset, backbone, shot in sorted({k[:3] for k in latest}):
        runs = [r for k, r in latest.items() if k[:3] == (dataset, backbone, shot)]
        methods = sorted({r.method for r in runs})
        summary = Table(f"FS-CS {dataset}, {backbone}, {shot}-shot (iFSL Table {1 if dataset != 'coco' else 2})",
                        ["1-way ER", "1-way mIoU", "2-way ER", "2-way mIoU"])
        for m in methods:
            cells = []
            for way in (1, 2):
                mine = [r for r in runs if r.method == m and r.way == way]
                ref = _reference(dataset, backbone, shot, m, way)
                cells += [_fold_cells(mine, "er", ref and ref[0])[4], _fold_cells(mine, "miou", ref and ref[1])[4]]
            summary.rows.append((m, cells))
        tables.append(summary)
        for way in sorted({r.way for r in runs}):
            per = Table(f"FS-CS {dataset}, {backbone}, {way}-way {shot}-shot per fold",
                        [f"ER F{s}" for s in range(4)] + ["ER mean"] + [f"mIoU F{s}" for s in range(4)] + ["mIoU mean"])
            for m in methods:
                mine = [r for r in runs if r.method == m and r.way == way]
                if mine:
                    ref = _reference(dataset, backbone, shot, m, way)
                    per.rows.append((m, _fold_cells(mine, "er", ref and ref[0])
                                     + _fold_cells(mine, "miou", ref and ref[1])))
            tables.append(per)
    return tables
