"""QGNet's Table VII in the report: recall of the guided and prior region maps per threshold
(`recall_shot<K>.json`, written by test_recall.py), ours beside the paper's Recall_p,gt row.

The paper gives its row for PASCAL-5i fold 0; the backbone and shot are not stated, so it is
compared on the setting of its other ablations (ResNet-50, 1-shot), for QGNet runs with the
published pre-training. Its Recall_g,gt row is empty in the paper's text: no number is shown.
"""
from __future__ import annotations

import json
from pathlib import Path

from util.errors import UserError
from util.evaluation.recall import THRESHOLDS
from util.report import paper, qgnet
from util.report.load import Variant, precision_of, read_json, variant_of
from util.report.render import Cell, Table
from util.report.tables import _row_label, _setting_name

ROWS = (("guided", "Recall_g,gt (paper: not given)"), ("prior", "Recall_p,gt"))


def _load(path: Path) -> dict:
    try:
        data = read_json(path)
        cfg = data["config"]
        out = {"path": path, "mtime": path.stat().st_mtime, "dataset": str(cfg["dataset"]),
               "backbone": str(cfg["backbone"]), "shot": int(cfg["shot"]), "split": int(cfg["split"]),
               "target": "" if cfg.get("target") in (None, "", cfg["dataset"]) else str(cfg["target"]),
               "variant": variant_of(cfg, precision_of(data)),
               "thresholds": [float(t) for t in data["prior"]["thresholds"]]}
        for name, _ in ROWS:
            out[name] = [None if v is None else float(v) for v in data[name]["recall"]]
        return out
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path} is not a test_recall.py file ({type(e).__name__}: {e}); re-run test_recall.py "
                        "for that experiment or move the file out of the folder") from None


def _published(run: dict) -> tuple[float, ...] | None:
    """The paper's Recall_p,gt row for a QGNet run of its setting, else None."""
    v: Variant = run["variant"]
    on_paper = ((run["dataset"], run["backbone"], run["shot"]) == paper.QGNET_PRIOR_SETTING and run["split"] == 0
                and not run["target"] and v.modules == "baseline" and qgnet.published_pretraining(run["dataset"], v))
    return paper.QGNET_PRIOR_RECALL if on_paper else None


def recall_tables(root: str | Path) -> list[Table]:
    """One Table VII per (dataset, backbone, shot, fold, target, thresholds): two rows per run variant."""
    newest: dict[tuple, dict] = {}
    for run in sorted((_load(p) for p in Path(root).glob("**/recall_shot*.json")), key=lambda r: r["mtime"]):
        newest[(run["dataset"], run["backbone"], run["shot"], run["split"], run["target"], run["variant"])] = run
    tables: dict[tuple, Table] = {}
    for key, run in sorted(newest.items(), key=lambda kv: kv[0][:5] + (kv[0][5].label(),)):
        dataset, backbone, shot, split, target = key[:5]
        where = f"{dataset} -> {target}" if target else dataset
        cols = [f"{t:g}" for t in run["thresholds"]]
        table = tables.setdefault((*key[:5], tuple(cols)), Table(
            f"QGNet Table VII (region-map recall, %): {_setting_name(where, backbone, shot)}, fold {split}", cols,
            notes=["Recall = |{V > threshold} ∩ GT| / |GT| over all test episodes' pixels (eq. 16). The paper's "
                   "Recall_p,gt row is PASCAL-5i fold 0 (compared on ResNet-50 1-shot QGNet runs); its "
                   "Recall_g,gt row is empty in the paper's text."]))
        ref = _published(run) if tuple(run["thresholds"]) == THRESHOLDS else None
        for name, label in ROWS:
            refs = ref if ref is not None and name == "prior" else (None,) * len(cols)
            table.rows.append((f"{_row_label(backbone, run['variant'])} {label}",
                               [Cell(v, r) for v, r in zip(run[name], refs)]))
    return list(tables.values())
