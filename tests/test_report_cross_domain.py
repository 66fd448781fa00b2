"""util.report's cross-domain tables: results of `target` tests sit beside the published numbers
and never mix with the in-domain tables of the same run."""
import json

import pytest

from util.report import make_report


PFENET = {"model": "pfenet", "use_bgem": False, "use_doem": False, "use_pcl": False}


def _write(folder, name, miou, **cfg):
    folder.mkdir(parents=True, exist_ok=True)
    config = {"backbone": "resnet50", "shot": 1, "split": 0, **cfg}
    (folder / name).write_text(json.dumps({"config": config, "metrics": {"miou": miou, "fbiou": 50.0}}))


def test_cross_domain_tables(tmp_path):
    run = tmp_path / "pascal/split0_resnet50/model"
    _write(run, "results_shot1.json", 61.0, dataset="pascal", **PFENET)
    _write(run, "results_shot1_deepglobe.json", 20.0, dataset="pascal", **PFENET, target="deepglobe")
    _write(run, "results_shot1_isic.json", 30.0, dataset="pascal", **PFENET, target="isic")
    for split, miou in enumerate((60.0, 64.0, 66.0, 70.0)):
        _write(tmp_path / f"coco/split{split}_mmt/model", "results_shot1_pascal.json", miou, dataset="coco",
               split=split, use_mmt=True, target="pascal")
    _write(tmp_path / "coco/x/model", "results_shot1_suim.json", 33.0, dataset="coco", use_mmt=True, target="suim")
    _write(tmp_path / "toy/x/model", "results_shot1_toyshift.json", 12.5, dataset="toy", target="toyshift")
    md = make_report(tmp_path)["md"]
    in_domain = md.split("### Table 1")[1].split("###")[0]
    assert "61.0 (61.7, -0.7)" in in_domain and "20.0" not in in_domain  # PFENet's R50 fold 0: in-domain only
    suite = md.split("### PATNet's cross-domain table")[1].split("###")[0]
    assert "20.0 (16.9, +3.1)" in suite and "30.0 (23.5, +6.5)" in suite and "25.0* (34.6)" in suite
    assert "- (37.9)" in suite and "- (78.6)" in suite  # PATNet's published row
    c2p = md.split("### COCO-20i -> PASCAL-5i")[1].split("###")[0]
    assert "MMT (d) Cons+MEnS+MEnT" in c2p and "| 65.0 (65.6, -0.6) |" in c2p
    suim = md.split("### COCO-20i -> SUIM")[1].split("###")[0]
    assert "33.0 (30.5, +2.5)" in suim and "33.0* (37.1)" in suim
    assert "### toy -> toy (second domain), 1-shot" in md and "12.5" in md


@pytest.mark.parametrize("table", ["PATNET", "PFENET_SUITE"])
def test_published_suite_rows_agree_with_their_own_means(table):
    """The four targets of each published row average to the row's published mean (to the
    rounding of the paper): a typo in one transcribed cell would break this."""
    from util.report import cross_domain_paper as paper
    rows = getattr(paper, table)
    for shot in (1, 5):
        mean = sum(rows[t][shot] for t in paper.SUITE_TARGETS) / len(paper.SUITE_TARGETS)
        assert abs(mean - rows["mean"][shot]) <= 0.006
