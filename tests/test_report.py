"""The report tool on fake results files with test.py's structure."""
import csv
import io
import json
import logging
import os

import pytest

from util import report
from util.errors import UserError

FULL = {"use_bgem": True, "use_doem": True, "use_pcl": True, "pcl_negatives": "do", "bg_dim": 256}
BASE = {"use_bgem": False, "use_doem": False, "use_pcl": False}
BGEM = {"use_bgem": True, "use_doem": False, "use_pcl": False, "bg_dim": 256}


def write_result(root, name, *, split, miou, fbiou=75.0, precision=70.0, shot=1, backbone="resnet50",
                 dataset="pascal", flags=FULL, seeds=None, mtime=None):
    cfg = {"dataset": dataset, "backbone": backbone, "split": split, "shot": shot,
           "test_num": 4000 if dataset == "coco" else 1000, **flags}  # test.py records the whole config
    metrics = {"miou": miou, "fbiou": fbiou, "precision": precision, "fg_iou": 1.0, "bg_iou": 1.0,
               "episodes": 1000, "per_class": []}
    record = {"config": cfg, "metrics": metrics, "seeds": [metrics] * (len(seeds) if seeds else 1)}
    if seeds:
        record["summary"] = {"miou": {"mean": sum(seeds) / len(seeds), "std": 0.5},
                             "fbiou": {"mean": fbiou, "std": 0.1}}
    path = root / name / f"results_shot{shot}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def tree(tmp_path):
    for split, miou in [(0, 63.1), (1, 70.0), (2, 60.0)]:  # fold 3 missing
        write_result(tmp_path, f"split{split}_resnet50", split=split, miou=miou)
    write_result(tmp_path, "split0_resnet50_base", split=0, miou=61.0, precision=60.0, flags=BASE)
    write_result(tmp_path, "split0_resnet50_bgem", split=0, miou=62.0, precision=61.0, flags=BGEM)
    return tmp_path


def test_markdown_main_table_ours_paper_diff(tree):
    md = report.make_report(tree, "md")["md"]
    assert "Table 1 (PASCAL-5i)" in md
    row = next(line for line in md.splitlines() if line.startswith("| ResNet-50 NTRENet"))
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    assert cells[:4] == ["63.1 (65.4, -2.3)", "70.0 (72.3, -2.3)", "60.0 (59.4, +0.6)", "- (59.8)"]
    assert cells[4] == "64.4* (64.2)"  # partial mean over 3 folds: no difference given
    assert cells[5] == "75.0* (77.0)"
    base = next(line for line in md.splitlines() if line.startswith("| ResNet-50 baseline (PFENet)"))
    assert "61.0 (61.7, -0.7)" in base  # PFENet's published R50 fold-0


def test_markdown_ablation_table(tree):
    md = report.make_report(tree, "md")["md"]
    assert "Table 3 (module ablation): pascal, ResNet-50, 1-shot" in md
    lines = md.split("Table 3")[1].splitlines()
    rows = [line for line in lines if line.startswith("| ")][1:]
    assert rows[0].startswith("| baseline |") and "61.0 (60.8, +0.2)" in rows[0]
    assert rows[0].rstrip(" |").endswith("60.0* (61.9)")  # precision over the available folds
    assert rows[1].startswith("| +BGEM D=256 |") and "62.0 (63.2, -1.2)" in rows[1]
    assert rows[2].startswith("| +BGEM+DOEM+PCL D=256 |")


def test_csv_parses_with_numbers(tree):
    rows = list(csv.DictReader(io.StringIO(report.make_report(tree, "csv")["csv"])))
    cell = next(r for r in rows if r["row"].startswith("ResNet-50 NTRENet") and r["column"] == "1-shot Fold-0")
    assert (cell["ours"], cell["paper"], cell["diff"]) == ("63.10", "65.40", "-2.30")
    missing = next(r for r in rows if r["row"].startswith("ResNet-50 NTRENet") and r["column"] == "1-shot Fold-3")
    assert (missing["ours"], missing["paper"], missing["diff"]) == ("", "59.80", "")


def test_newest_duplicate_wins_with_warning(tree, caplog):
    write_result(tree, "old_copy", split=0, miou=50.0, mtime=1_000_000)
    write_result(tree, "new_copy", split=0, miou=66.0)
    with caplog.at_level(logging.WARNING):
        md = report.make_report(tree, "md")["md"]
    assert "66.0 (65.4, +0.6)" in md and "50.0" not in md
    assert "same experiment" in caplog.text


def test_seed_summary_and_other_tables(tmp_path):
    write_result(tmp_path, "a", split=0, miou=60.0, seeds=[60.0, 61.0])
    write_result(tmp_path, "b", split=0, miou=59.0, flags={**FULL, "pcl_negatives": "bg"})
    write_result(tmp_path, "c", split=0, miou=58.0, flags={**FULL, "bg_dim": 640})
    write_result(tmp_path, "d", split=1, miou=30.0, dataset="coco", shot=5, backbone="resnet101")
    md = report.make_report(tmp_path, "md")["md"]
    assert "60.5±0.5 (65.4, -4.9)" in md
    assert "Table 4 (PCL negatives)" in md and "59.0 (64.4, -5.4)" in md
    assert "Fig. 6 (BG prototype width D)" in md and "Fig. 6 gives no numbers" in md
    assert "Table 2 (COCO-20i)" in md and "30.0 (44.4, -14.4)" in md


def test_cli_errors_exit_2(tmp_path, capsys):
    assert report.main([str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err
    assert report.main([str(tmp_path)]) == 2
    assert "no results" in capsys.readouterr().err
    bad = tmp_path / "x" / "results_shot1.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    assert report.main([str(tmp_path)]) == 2
    assert str(bad) in capsys.readouterr().err
    bad.write_text(json.dumps({"config": {"dataset": "pascal"}, "metrics": {}}))
    with pytest.raises(UserError, match="config.backbone"):
        report.make_report(tmp_path)


def test_cli_writes_both_formats(tree, tmp_path):
    out = tmp_path / "out" / "tables.md"
    assert report.main([str(tree), "--format", "both", "--out", str(out)]) == 0
    assert "63.1 (65.4, -2.3)" in out.read_text()
    assert "table,row,column" in out.with_suffix(".csv").read_text()


def test_variant_comes_from_the_schema_marks(tmp_path, monkeypatch):
    """A newly marked key splits runs that differ only in it; unmarked keys do not."""
    from util import config
    from util.report.load import variant_of

    monkeypatch.setitem(config.SCHEMA, "use_extra", config.Key(bool, False, "an added switch", variant=True))
    write_result(tmp_path, "a", split=0, miou=60.0, flags={**FULL, "use_extra": False, "base_lr": 0.1})
    write_result(tmp_path, "b", split=0, miou=61.0, flags={**FULL, "use_extra": True, "base_lr": 0.2})
    md = report.make_report(tmp_path, "md")["md"]
    assert any(r.startswith("| ResNet-50 NTRENet D=256 use_extra=True |") for r in md.splitlines())
    assert any(r.startswith("| ResNet-50 NTRENet D=256 |") for r in md.splitlines())
    # keys that do not matter for a run are left out: no PCL -> no negatives, no BG branch -> no D
    assert variant_of({**BASE, "pcl_negatives": "bg", "bg_dim": 64}) == variant_of(BASE)
    assert variant_of({**BASE, "model": "pfenet"}) == variant_of(BASE)  # one network, one row


def test_metric_vocabulary_is_what_test_writes():
    from util.evaluation.evaluator import Evaluator
    from util.evaluation.metrics import HEADLINE

    assert set(HEADLINE) <= set(Evaluator([1], "pascal").compute())


def test_reduced_precision_rows_are_marked_and_kept_apart(tmp_path):
    """A result computed in bf16 (its `precision`, or an older file's `amp bf16`) gets a row of its
    own marked [bf16]: its figure never averages with fp32 folds."""
    write_result(tmp_path, "split0", split=0, miou=63.1)
    write_result(tmp_path, "split1", split=1, miou=70.0)
    for name, split, key in (("split2_bf16", 2, "precision"), ("split3_old", 3, "amp")):
        path = write_result(tmp_path, name, split=split, miou=50.0)
        record = json.loads(path.read_text())
        if key == "precision":
            record["precision"] = "bf16"
        else:
            record["config"]["amp"] = "bf16"
        path.write_text(json.dumps(record))
    md = report.make_report(tmp_path, "md")["md"]
    rows = {line.split("|")[1].strip(): line for line in md.split("Table 1")[1].splitlines()
            if line.startswith("| ResNet-50")}
    assert set(rows) == {"ResNet-50 NTRENet D=256", "ResNet-50 NTRENet D=256 [bf16]"}
    assert "66.5* (64.2)" in rows["ResNet-50 NTRENet D=256"]  # fp32 folds 0 and 1 only
    assert "50.0*† (64.2)" in rows["ResNet-50 NTRENet D=256 [bf16]"]  # reduced precision: another protocol too
    assert "[bf16] / [fp16] in a row name" in md
