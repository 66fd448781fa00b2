"""FS-CS report: results files -> 1-way / 2-way ER and mIoU beside iFSL's published numbers,
methods told apart (PFENet, NTRENet, ASNet, ASNet_w, Table 2c ablations), binary tables untouched."""
import json

import pytest

from util.config import load_config
from util.errors import UserError
from util.report.cli import make_report
from util.report.fscs import fscs_tables, load_fscs


def _write(root, name, way, split, er, miou, *keys):
    cfg = load_config(None, ["dataset", "pascal", "split", str(split), "ifsl", "true", "way", str(way), *keys])
    rec = {"config": dict(cfg), "task": "fscs", "metrics": {"er": er, "miou": miou},
           "summary": {"er": {"mean": er, "std": None}, "miou": {"mean": miou, "std": None},
                       "fbiou": {"mean": 50.0, "std": None}}}
    path = root / name / f"split{split}" / f"results_way{way}_shot1.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    return path


def test_tables_with_published_numbers(tmp_path):
    for s in range(4):
        _write(tmp_path, "asnet", 1, s, 80.0 + s, 50.0, "model", "asnet")
    _write(tmp_path, "asnet", 2, 0, 60.0, 40.0, "model", "asnet")
    _write(tmp_path, "asnet_w", 1, 0, 70.0, 10.0, "model", "asnet", "weak", "true")
    _write(tmp_path, "local", 1, 0, 75.0, 30.0, "model", "asnet", "asnet_attention", "local")
    _write(tmp_path, "pfenet", 1, 1, 81.0, 52.0, "model", "pfenet")
    _write(tmp_path, "ntrenet", 1, 1, 82.0, 53.0)
    md = make_report(tmp_path)["md"]
    assert "### FS-CS pascal, resnet50, 1-shot (iFSL Table 1)" in md
    # ASNet 1-way: ER mean of 80..83 = 81.5 vs 84.9; mIoU 50 vs 52.3; 2-way partial (one fold) vs 68.3 / 47.8
    assert "| ASNet | 81.5 (84.9, -3.4) | 50.0 (52.3, -2.3) | 60.0* (68.3) | 40.0* (47.8) |" in md
    assert "| ASNet_w | 70.0* (82.0) | 10.0* (15.0) | - (64.6) | - (15.1) |" in md
    assert "| ASNet asnet_attention=local | 75.0* (83.9) | 30.0* (44.6) | - | - |" in md
    assert "| PFENet | 81.0* (74.6) | 52.0* (43.0) |" in md and "| NTRENet | 82.0* | 53.0* | - | - |" in md
    assert "| ASNet | 80.0 (84.9, -4.9) | 81.0 (89.6, -8.6) |" in md  # per-fold table, 1-way
    assert "### FS-CS pascal, resnet50, 2-way 1-shot per fold" in md


def test_malformed_fscs_file_is_named(tmp_path):
    p = tmp_path / "results_way1_shot1.json"
    p.write_text(json.dumps({"task": "fscs", "config": {"dataset": "pascal"}}))
    with pytest.raises(UserError, match="not an FS-CS results file"):
        load_fscs(p)
    assert fscs_tables([]) == []
