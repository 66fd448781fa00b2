"""Region-map recall (QGNet's eq. 16, Table VII): pooled counts on hand-computed maps, the
ori_resize geometry, and the report's Table VII beside the paper's Recall_p,gt row."""
import json

import pytest
import torch

from util import report
from util.evaluation.recall import THRESHOLDS, RegionRecall, at_scoring_size, recall_counts
from util.errors import UserError
from util.report import paper
from tests.test_report import write_result
from tests.test_qgnet_report import QGNET

MAP = torch.tensor([[0.05, 0.15, 0.55],
                    [0.95, 0.50, 0.30]])
LABEL = torch.tensor([[1, 1, 1],
                      [1, 0, 255]])


def test_counts_by_hand():
    hits, gt = recall_counts(MAP, LABEL)
    # foreground values 0.05, 0.15, 0.55, 0.95; the 0.5 (background) and 0.3 (ignore) never count
    assert gt == 4
    assert hits.tolist() == [3, 2, 2, 2, 2, 1, 1, 1, 1]


def test_threshold_is_strict():
    hits, gt = recall_counts(torch.tensor([[0.5, 0.25]]), torch.tensor([[1, 1]]), thresholds=(0.25, 0.5))
    assert gt == 2 and hits.tolist() == [1, 0]                       # V > alpha: equal values are outside R


def test_image_without_foreground_adds_nothing():
    empty = RegionRecall()
    empty.update(MAP, torch.zeros(2, 3, dtype=torch.long))
    assert empty.gt_pixels == 0 and empty.episodes == 1 and empty.recall() == [None] * 9
    pooled = RegionRecall()
    pooled.update(MAP, LABEL)
    pooled.update(MAP, torch.tensor([[0, 0, 0], [0, 255, 255]]))
    assert pooled.episodes == 2 and pooled.gt_pixels == 4
    assert pooled.recall() == [75.0, 50.0, 50.0, 50.0, 50.0, 25.0, 25.0, 25.0, 25.0]


def test_pooled_sums_not_mean_of_ratios():
    rec = RegionRecall(thresholds=(0.9,))
    rec.update(MAP, LABEL)                                            # 1 of 4 foreground pixels above 0.9
    rec.update(torch.tensor([[0.99, 0.1]]), torch.tensor([[1, 0]]))   # 1 of 1
    assert rec.recall() == [40.0]                                     # 2 / 5, not (25 + 100) / 2
    state = rec.state()
    assert state["hits"] == [2] and state["gt_pixels"] == 5 and state["episodes"] == 2
    json.dumps(state)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="differ in shape"):
        recall_counts(MAP, LABEL[:1])
    with pytest.raises(ValueError, match=r"0/1/255; found \[7\]"):
        recall_counts(MAP, torch.tensor([[1, 7, 0], [0, 0, 0]]))


def test_scoring_size_follows_ori_resize():
    """A 2 x 2 map onto a 3 x 2 label: a 3 x 3 square, the map's columns 0, 0.5, 1 (bilinear,
    corners aligned), the label's third column padded with 255."""
    region = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    raw = torch.tensor([[0, 1], [1, 1], [0, 0]])
    values, target = at_scoring_size(region, raw)
    assert values.shape == target.shape == (3, 3)
    assert torch.allclose(values, torch.tensor([[0.0, 0.5, 1.0]] * 3))
    assert target[:, 2].tolist() == [255] * 3 and target[:, :2].tolist() == raw.tolist()
    hits, gt = recall_counts(values, target)
    assert gt == 3 and hits.tolist() == [2] * 4 + [0] * 5             # foreground values 0.5, 0.0, 0.5


def _write_recall(folder, prior, guided, **cfg):
    folder.mkdir(parents=True, exist_ok=True)
    config = {"dataset": "pascal", "backbone": "resnet50", "shot": 1, "split": 0, **QGNET, **cfg}
    rows = {name: {"thresholds": list(THRESHOLDS), "recall": vals} for name, vals in (("prior", prior),
                                                                                      ("guided", guided))}
    (folder / "recall_shot1.json").write_text(json.dumps({"config": config, **rows}))


def _cells(md, start):
    line = next(line for line in md.splitlines() if line.startswith(f"| {start} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def test_report_prints_table_vii(tmp_path):
    write_result(tmp_path, "split0_resnet50_qgnet", split=0, miou=61.0, flags=QGNET)
    prior = [99.0, 98.0, 97.0, 95.0, 90.0, 80.0, 50.0, 30.0, 5.0]
    guided = [90.0, 80.0, 70.0, 60.0, 50.0, 40.0, 30.0, 20.0, None]
    _write_recall(tmp_path / "split0_resnet50_qgnet" / "model", prior, guided)
    _write_recall(tmp_path / "split0_vgg_qgnet" / "model", prior, guided, backbone="vgg")
    md = report.make_report(tmp_path, "md")["md"]
    assert "QGNet Table VII (region-map recall, %): pascal, ResNet-50, 1-shot, fold 0" in md
    cells = _cells(md, "ResNet-50 QGNet Recall_p,gt")
    assert len(cells) == 9 and cells[0] == "99.0 (99.9, -0.9)" and cells[8] == "5.0 (6.6, -1.6)"
    assert [c.split(" (")[1].split(",")[0] for c in cells] == [f"{v:.1f}" for v in paper.QGNET_PRIOR_RECALL]
    assert _cells(md, "ResNet-50 QGNet Recall_g,gt (paper: not given)") == ["90.0", "80.0", "70.0", "60.0", "50.0",
                                                                           "40.0", "30.0", "20.0", "-"]
    assert _cells(md, "VGG-16 QGNet Recall_p,gt")[0] == "99.0"            # not the paper's setting: ours alone
    csv = report.make_report(tmp_path, "csv")["csv"]
    assert '"ResNet-50 QGNet Recall_p,gt",0.5,90.00,,89.70,0.30,0' in csv


def test_report_names_a_broken_recall_file(tmp_path):
    write_result(tmp_path, "split0_resnet50_qgnet", split=0, miou=61.0, flags=QGNET)
    (tmp_path / "split0_resnet50_qgnet" / "recall_shot1.json").write_text("{}")
    with pytest.raises(UserError, match="not a test_recall.py file"):
        report.make_report(tmp_path, "md")
