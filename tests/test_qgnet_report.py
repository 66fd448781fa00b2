"""QGNet in the report: QGNet rows beside its published numbers (Tables I and III), NTRENet with
the prior channel as its own row, Tables V-VI from runs that differ in their pre-training, and
NTRENet's ablation tables untouched by prior-map runs."""
from util import report
from tests.test_report import BASE, FULL, write_result

PRIOR = {"qgnet_prior": True, "prior_patches": "slic", "prior_epochs": 1000, "prior_global": True,
         "prior_local": True}
QGNET = {"model": "qgnet", **BASE, **PRIOR}


def _row(md: str, start: str, after: str = "") -> list[str]:
    text = md[md.index(after):] if after else md
    line = next(line for line in text.splitlines() if line.startswith(f"| {start} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def test_qgnet_rows_beside_the_published_numbers(tmp_path):
    for split, miou in enumerate((64.0, 70.0, 56.0, 58.0)):
        write_result(tmp_path, f"split{split}_resnet50_qgnet", split=split, miou=miou, fbiou=72.0, flags=QGNET)
    write_result(tmp_path, "split0_resnet50_base", split=0, miou=61.0, flags=BASE)
    write_result(tmp_path, "split0_resnet50_ntre_prior", split=0, miou=66.0, flags={**FULL, **PRIOR})
    md = report.make_report(tmp_path, "md")["md"]
    cells = _row(md, "ResNet-50 QGNet")
    assert cells[0] == "64.0 (63.4, +0.6)" and cells[3] == "58.0 (58.4, -0.4)"
    assert cells[4] == "62.0 (61.6, +0.4)" and cells[5] == "72.0 (72.2, -0.2)"
    assert _row(md, "ResNet-50 baseline (PFENet)")[0] == "61.0 (61.7, -0.7)"
    assert _row(md, "ResNet-50 NTRENet + QGNet prior")[0] == "66.0"      # no published number
    assert "Table 3 (module ablation)" not in md                      # prior-map runs stay out of NTRENet's tables


def test_coco_qgnet_uses_its_200_epoch_pretraining(tmp_path):
    flags = {**QGNET, "prior_epochs": 200}
    write_result(tmp_path, "coco_split1_qgnet", dataset="coco", split=1, miou=40.0, flags=flags)
    md = report.make_report(tmp_path, "md")["md"]
    assert _row(md, "ResNet-50 QGNet")[1] == "40.0 (41.4, -1.4)"


def test_pretraining_ablations_give_tables_v_vi(tmp_path):
    variants = {"slic": ({}, 61.0), "fz1000": ({"prior_patches": "felzenszwalb"}, 60.0),
                "fz2000": ({"prior_patches": "felzenszwalb", "prior_epochs": 2000}, 60.5),
                "global": ({"prior_local": False}, 59.0), "local": ({"prior_global": False}, 60.2)}
    for name, (extra, miou) in variants.items():
        write_result(tmp_path, f"split0_{name}", split=0, miou=miou, flags={**QGNET, **extra})
    md = report.make_report(tmp_path, "md")["md"]
    title = "QGNet Tables V-VI (prior extractor pre-training): pascal, ResNet-50, 1-shot"
    assert title in md
    assert _row(md, "felzenszwalb 2000 ep, local+global", title)[0] == "60.5 (62.7, -2.2)"
    assert _row(md, "slic 1000 ep, global", title)[0] == "59.0 (62.2, -3.2)"
    assert _row(md, "slic 1000 ep, local", title)[0] == "60.2 (63.2, -3.0)"
    main = md[:md.index(title)]
    assert main.count("| ResNet-50 QGNet |") == 1                      # only the published pre-training
