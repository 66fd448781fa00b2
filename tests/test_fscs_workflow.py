"""FS-CS end to end on the tiny toy tree: train.py 1-way with the iFSL head around PFENet,
test.py 1-way and 2-way (ER, mIoU, FB-IoU written beside the checkpoint), and the refusals."""
import json

import pytest

import test as test_cli
import train
from conftest import toy_overrides as overrides
from util.errors import UserError
from test_registries import _overrides, _tree, registered  # noqa: F401  (a method and a benchmark of one file)

CFG = "config/toy/toy_split0_vgg.yaml"
SMALL = ["model", "pfenet", "pretrained", "false", "reduce_dim", "16", "min_class_pixels", "20"]


@pytest.fixture(scope="module")
def fscs_run(tmp_path_factory, toy_tree):
    out = tmp_path_factory.mktemp("fscs") / "exp"
    assert train.main(["--config", CFG, *overrides(toy_tree), *SMALL, "ifsl", "true", "epochs", "1",
                       "save_path", str(out)]) == 0
    return out


def test_train_validate_and_test_two_ways(fscs_run, toy_tree):
    log = (fscs_run / "result/train.log").read_text()
    assert "validation epoch 1 (1-way): ER" in log
    for way in (1, 2):
        assert test_cli.main(["--config", CFG, *overrides(toy_tree), *SMALL, "ifsl", "true", "way", str(way),
                              "save_path", str(fscs_run)]) == 0
        rec = json.loads((fscs_run / f"model/results_way{way}_shot1.json").read_text())
        m = rec["metrics"]
        assert rec["task"] == "fscs" and m["episodes"] == 6 and rec["config"]["way"] == way
        assert 0 <= m["er"] <= 100 and 0 <= m["miou"] <= 100 and set(m["iou"]) == {"1", "2", "3", "4", "5"}
        assert "| ER |" in (fscs_run / f"model/results_way{way}_shot1.md").read_text()


def test_binary_checkpoint_is_refused_for_fscs(tmp_path, toy_tree):
    out = tmp_path / "bin"
    assert train.main(["--config", CFG, *overrides(toy_tree), *SMALL, "epochs", "1", "val_every", "0",
                       "save_path", str(out)]) == 0
    with pytest.raises(UserError, match=r"trained on binary few-shot episodes \(ifsl false\), not for 2-way FS-CS"):
        test_cli.main(["--config", CFG, *overrides(toy_tree), *SMALL, "ifsl", "true", "way", "2",
                       "save_path", str(out)])


def test_a_method_registered_from_one_file_runs_fscs(registered, tmp_path):
    """The iFSL head wraps any registered method (here the test's MeanMatch on a binary-mask benchmark)."""
    _tree(tmp_path)
    args = ["--config", "", *_overrides(tmp_path), "ifsl", "true"]
    assert train.main(args) == 0
    assert test_cli.main([*args, "way", "2"]) == 0
    rec = json.loads((tmp_path / "exp/model/results_way2_shot1.json").read_text())
    assert rec["config"]["model"] == "meanmatch" and set(rec["metrics"]["iou"]) == {"1", "2", "3"}
    with pytest.raises(UserError, match="weak true needs class tags, but shapes3 labels one class per image"):
        train.main([*args, "model", "asnet", "weak", "true"])


def test_predict_refuses_fscs_models(tmp_path):
    import predict
    with pytest.raises(UserError, match="predict.py segments one class .* score it with test.py"):
        predict.main(["--config", CFG, "--weight", "w.pth", "--support", "a.jpg", "a.png", "--query", "q.jpg",
                      "--out", str(tmp_path), "model", "asnet"])
