"""The user's workflow end to end on a tiny toy tree: train, resume, test, report, predict."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest
import torch

import predict
import test as test_cli
import train
from conftest import read_events, toy_overrides as overrides
from util import report
from util.engine.checkpoint import read_checkpoint
from util.errors import UserError

CFG = "config/toy/toy_split0_resnet50.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, toy_tree):
    """One short training run shared by the tests below, with every epoch's checkpoint kept."""
    out = tmp_path_factory.mktemp("run") / "exp"
    kept = []
    original = train.Run.save

    def save_and_keep(self, name):
        original(self, name)
        if name == "last.pth":
            kept.append(shutil.copy(os.path.join(self.model_dir, name),
                                    os.path.join(self.model_dir, f"epoch{self.epoch}.pth")))

    train.Run.save = save_and_keep
    try:
        assert train.main(["--config", CFG, *overrides(toy_tree), "save_path", str(out)]) == 0
    finally:
        train.Run.save = original
    return out, kept


def losses(folder):
    return {step: value for tag, step, value in read_events(folder) if tag == "loss/total"}


def test_training_outputs(trained):
    out, kept = trained
    assert sorted(os.listdir(out / "model")) == ["best.pth", "epoch1.pth", "epoch2.pth", "last.pth"]
    state = read_checkpoint(str(out / "model/last.pth"))
    assert {"model", "optimizer", "epoch", "iteration", "rng", "config"} <= set(state)
    assert (state["epoch"], state["iteration"]) == (2, 4)
    assert any(k.startswith("pcl") or "bank" in k for k in state["model"])
    assert "iter 4/4" in (out / "result/train.log").read_text()
    assert (out / "result/config.yaml").exists()
    tags = {tag for tag, _, _ in read_events(str(out / "tb"))}
    expected = {f"loss/{k}" for k in train.LOSS_TERMS} | {"lr", "val/miou", "val/fbiou", "val/precision",
                                                         "train/panel", "val/panel"}
    assert expected <= tags
    assert "loss/scnet" not in tags  # the branch is off: no constant-zero curve
    log = (out / "result/train.log").read_text()
    assert "\r" not in log and "scnet" not in log
    assert sorted(losses(str(out / "tb"))) == [1, 2, 3, 4]


def test_resume_continues_exactly(trained, toy_tree, tmp_path):
    out, kept = trained
    resumed = tmp_path / "resumed"
    assert train.main(["--config", CFG, *overrides(toy_tree), "save_path", str(resumed),
                       "resume", kept[0]]) == 0
    full, again = losses(str(out / "tb")), losses(str(resumed / "tb"))
    assert sorted(again) == [3, 4]
    assert all(again[s] == full[s] for s in (3, 4))
    a = read_checkpoint(str(out / "model/last.pth"))["model"]
    b = read_checkpoint(str(resumed / "model/last.pth"))["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_rejects_foreign_file(toy_tree, tmp_path):
    bad = tmp_path / "weights.pth"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(UserError, match="cannot be resumed"):
        train.main(["--config", CFG, *overrides(toy_tree), "save_path", str(tmp_path / "x"), "resume", str(bad)])


def test_test_writes_results_and_report(trained, toy_tree):
    out, _ = trained
    assert test_cli.main(["--config", CFG, *overrides(toy_tree), "save_path", str(out),
                          "seeds", "2", "vis", "2", "baselines", "true"]) == 0
    res = json.loads((out / "model/results_shot1.json").read_text())
    assert res["metrics"]["episodes"] == 6 and len(res["seeds"]) == 2
    assert set(res["baselines"]) == {"all_foreground", "prior_only"}
    assert res["config"]["shot"] == 1 and res["summary"]["miou"]["std"] >= 0
    assert len(os.listdir(out / "model/results_shot1_vis")) == 2
    md = (out / "model/results_shot1.md").read_text()
    assert "toy01" in md and "all_foreground" in md
    tables = report.make_report(str(out), "both")
    assert "Fold-0" in tables["md"] and tables["csv"].count("\n") > 1


def test_same_numbers_for_any_batch_and_workers(trained, toy_tree):
    out, _ = trained
    runs = []
    for extra in (["batch_size_val", "1", "num_workers", "0"], ["batch_size_val", "4", "num_workers", "2"]):
        test_cli.main(["--config", CFG, *overrides(toy_tree), "save_path", str(out), "overwrite", "true", *extra])
        runs.append(json.loads((out / "model/results_shot1.json").read_text())["metrics"])
    assert runs[0] == runs[1]


def test_predict_on_generated_image(trained, toy_tree, tmp_path):
    out, _ = trained
    lines = (toy_tree / "lists/val.txt").read_text().split("\n")
    img, lab = (str(toy_tree / "data" / p) for p in lines[0].split())
    mask = tmp_path / "support.png"
    cv2.imwrite(str(mask), ((cv2.imread(lab, cv2.IMREAD_GRAYSCALE) % 255) > 0).astype(np.uint8) * 255)
    q_img, _ = (str(toy_tree / "data" / p) for p in lines[1].split())
    assert predict.main(["--config", CFG, "--weight", str(out / "model/best.pth"), "--support", img, str(mask),
                         "--query", q_img, "--out", str(tmp_path / "pred"), "val_size", "65", "device", "cpu",
                         "ppm_scales", "[1.0,0.5]"]) == 0
    pred = cv2.imread(str(tmp_path / "pred" / (os.path.basename(q_img)[:-4] + "_pred.png")), cv2.IMREAD_GRAYSCALE)
    assert pred.shape == cv2.imread(q_img).shape[:2] and set(np.unique(pred)) <= {0, 255}
    assert (tmp_path / "pred" / (os.path.basename(q_img)[:-4] + "_pred_overlay.png")).exists()


def test_test_without_checkpoint_is_a_clear_error(toy_tree, tmp_path):
    with pytest.raises(UserError, match="no checkpoint in"):
        test_cli.main(["--config", CFG, *overrides(toy_tree), "save_path", str(tmp_path / "none")])
