"""BAM's stage-1 labels and metric, the generalized FSS prediction and scores on hand-made
counts, and stage 1 -> stage 2 -> both tests on the tiny toy tree."""
import json
import os

import numpy as np
import pytest
import torch

import test as test_cli
import test_gfss
import train as train_cli
import train_base
from conftest import toy_overrides
from util.config import load_config
from util.data.base_dataset import BaseClassDataset, base_label
from util.data.gfss import choose_class, gfss_label
from util.evaluation.gfss import GFSSScores, gfss_prediction
from util.evaluation.semantic import ClassCounts
from util.errors import UserError
from util.report.cli import make_report

BASE0 = list(range(6, 21))  # fold 0's base classes


def test_base_label_hides_every_novel_class():
    label = np.array([[0, 1, 5, 6], [7, 20, 255, 3]], dtype=np.uint8)
    assert base_label(label, BASE0).tolist() == [[0, 0, 0, 1], [2, 15, 255, 0]]


def test_stage1_dataset_never_shows_a_novel_pixel(toy_tree):
    cfg = load_config("config/toy/toy_split0_vgg_pspnet.yaml", toy_overrides(toy_tree))
    ds = BaseClassDataset(cfg.replace(train_h=33, train_w=33, scale_min=1.0, scale_max=1.0), "val")
    seen_novel = 0
    for i in range(len(ds.items)):
        raw = ds.bench.read_label(ds.items[i][1])
        novel = np.isin(raw, [1, 2, 3, 4, 5])
        seen_novel += int(novel.sum())
        mapped = base_label(raw, ds.base_classes)
        assert (mapped[novel] == 0).all() and set(np.unique(mapped)) <= set(range(16)) | {255}
        assert ds[i]["label"].max() <= 255
    assert seen_novel > 0  # the tree does hold novel pixels


def test_class_counts_by_hand():
    c = ClassCounts(3)
    c.update(torch.tensor([[0, 1, 1], [2, 2, 0]]), torch.tensor([[0, 1, 2], [2, 255, 1]]))
    # class 0: I 1, U 2 (pred {0,0}, label {0,1}); class 1: I 1, U 3; class 2: I 1, U 2
    assert c.inter.tolist() == [1, 1, 1] and c.union.tolist() == [2, 3, 2]
    assert c.iou() == pytest.approx([50.0, 100 / 3, 50.0])
    assert c.mean_iou([1, 2]) == pytest.approx((100 / 3 + 50) / 2)


def test_gfss_label_and_class_choice():
    base, novel = [3, 4], [1, 2]
    label = np.array([[0, 1, 2, 3, 4, 255]], dtype=np.uint8)
    assert gfss_label(label, base, novel, chosen=2).tolist() == [[0, 0, 4, 1, 2, 255]]
    rng = np.random.default_rng(0)
    assert {choose_class([2], {3, 4}, novel, rng) for _ in range(20)} == {2}        # only novel: its own
    assert {choose_class([2, 3], {3, 4}, novel, rng) for _ in range(40)} == {1, 2}  # any novel class


def test_gfss_prediction_and_scores_by_hand():
    # 2 x 2 episode, 1 base class, novel slot 2; final fg prob > 0.9 only at (0, 0)
    final = torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[5.0, 0.0], [0.0, 0.0]]])
    base = torch.tensor([[[0.0, 0.0], [0.0, 3.0]], [[0.0, 1.0], [1.0, 0.0]]])
    pred = gfss_prediction(final, base, slot=2, tau=0.9, side=2)
    assert pred.tolist() == [[2, 1], [1, 0]]
    s = GFSSScores(num_base=1, num_novel=1)
    s.update(final, base, torch.tensor([[2, 1], [0, 0]]), slot=2, tau=0.9)
    r = s.compute()
    # base class 1: I 1, U 2 -> 50; novel slot 2: I 1, U 1 -> 100
    assert r["miou_base"] == pytest.approx(50.0) and r["miou_novel"] == pytest.approx(100.0)
    assert r["miou_total"] == pytest.approx(75.0) and r["miou_mean"] == pytest.approx(75.0)


def test_stage1_to_stage2_to_tests(toy_tree, tmp_path):
    common = [*toy_overrides(toy_tree), "epochs", "1", "image_every", "0", "reduce_dim", "16", "val_num", "4",
              "test_num", "4"]
    s1 = tmp_path / "s1"
    assert train_base.main(["--config", "config/toy/toy_split0_vgg_pspnet.yaml", *common, "save_path", str(s1)]) == 0
    saved = torch.load(s1 / "model/best.pth", weights_only=True)
    assert saved["config"]["split"] == 0 and "base_learner.cls.4.weight" in saved["model"]
    stage2 = ["--config", "config/toy/toy_split0_vgg_bam.yaml", *common, "save_path", str(tmp_path / "s2")]
    with pytest.raises(UserError, match="stage-1 base learner not found: .*train_base.py"):
        train_cli.main([*stage2, "base_weight", str(tmp_path / "none.pth")])
    stage2 += ["base_weight", str(s1 / "model/best.pth")]
    assert train_cli.main(stage2) == 0
    s2 = torch.load(tmp_path / "s2/model/last.pth", weights_only=True)["model"]
    assert torch.equal(s2["base_learner.cls.4.weight"], saved["model"]["base_learner.cls.4.weight"])  # frozen
    assert test_cli.main(stage2) == 0
    assert test_gfss.main(stage2) == 0
    res = json.loads((tmp_path / "s2/model/gfss_shot1.json").read_text())["gfss"]
    assert set(res) >= {"miou_base", "miou_novel", "miou_total", "miou_mean"} and len(res["iou"]) == 21
    record = json.loads((tmp_path / "s2/model/gfss_shot1.json").read_text())
    assert record["protocol"]["episodes"] == 4 and record["protocol"]["gfss_tau"] == record["config"]["gfss_tau"]
    assert record["protocol"]["precision"] == record["precision"] and record["provenance"]["torch"] == torch.__version__
    with pytest.raises(UserError, match=r"gfss_shot1.json holds results under another protocol \(episodes 4 -> 2\)"
                                        ".*overwrite true"):
        test_gfss.main([*stage2, "test_num", "2"])           # refused before any work: the 4-episode file stays
    assert json.loads((tmp_path / "s2/model/gfss_shot1.json").read_text()) == record
    assert test_gfss.main([*stage2, "seeds", "3"]) == 0      # seeds do not change a GFSS pass: no refusal
    assert test_gfss.main([*stage2, "test_num", "2", "overwrite", "true"]) == 0
    assert json.loads((tmp_path / "s2/model/gfss_shot1.json").read_text())["protocol"]["episodes"] == 2
    assert os.path.isfile(tmp_path / "s2/model/results_shot1.json")
    md = make_report(tmp_path / "s2")["md"]
    assert "BAM on toy" in md and "| vgg BAM |" in md and "generalized FSS" in md and "| toy vgg 1-shot |" in md


def test_stage1_resume_equals_an_uninterrupted_run(toy_tree, tmp_path, monkeypatch):
    common = ["--config", "config/toy/toy_split0_vgg_pspnet.yaml", *toy_overrides(toy_tree), "image_every", "0",
              "val_num", "4", "max_iters_per_epoch", "2", "epochs", "2"]
    assert train_base.main([*common, "save_path", str(tmp_path / "whole")]) == 0
    validate, calls = train_base.validate, []

    def crash_in_epoch_2(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # after epoch 2's steps, before its checkpoint
        return validate(*args)
    monkeypatch.setattr(train_base, "validate", crash_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_base.main([*common, "save_path", str(tmp_path / "cut")])
    monkeypatch.setattr(train_base, "validate", validate)
    last = str(tmp_path / "cut/model/last.pth")
    assert torch.load(last, weights_only=True)["epoch"] == 1
    assert train_base.main([*common, "save_path", str(tmp_path / "cut"), "resume", last]) == 0
    whole, cut = (torch.load(tmp_path / f"{d}/model/last.pth", weights_only=True) for d in ("whole", "cut"))
    assert (cut["epoch"], cut["iteration"]) == (whole["epoch"], whole["iteration"]) == (2, 4)
    assert all(torch.equal(whole["model"][k], v) for k, v in cut["model"].items())
    with pytest.raises(UserError, match="cannot resume"):
        train_base.main([*common, "save_path", str(tmp_path / "cut"), "resume", last, "weight_decay", "0.5"])
