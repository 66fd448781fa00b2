"""Runs that never collide, results never replaced unseen, failed starts that leave nothing,
best.pth without optimiser state, and a report that names every source and every skip."""
import json
import os

import pytest
import torch

from test_report import write_result
from util import report
from util.config import load_config
from util.engine.checkpoint import load_training_state, save_checkpoint
from util.engine.guard import LOCK, claim_output_dir
from util.engine.provenance import refuse_silent_replace, test_protocol as protocol_of
from util.engine.runtime import experiment_dir
from util.errors import UserError

PASCAL = "config/pascal/pascal_split0_resnet50.yaml"


@pytest.mark.parametrize("overrides, folder", [
    ([], "exp/pascal/split0_resnet50"),
    (["model", "pfenet"], "exp/pascal/split0_resnet50_model-pfenet"),
    (["use_mmt", "true", "shot", "5"], "exp/pascal/split0_resnet50_5shot_use_mmt-true"),
    (["model", "ntrenet"], "exp/pascal/split0_resnet50"),  # the file's own value: no new folder
    (["test_num", "20", "target", "deepglobe", "mmt_enhance_test", "false"], "exp/pascal/split0_resnet50"),
    (["model", "pfenet", "save_path", "mine"], "mine"),
])
def test_a_variant_override_gets_its_own_folder(overrides, folder):
    assert experiment_dir(load_config(PASCAL, overrides)) == folder


def test_pfenet_on_an_ntrenet_experiment_trains_beside_it():
    ntrenet, pfenet = (experiment_dir(load_config(PASCAL, o)) for o in ([], ["model", "pfenet"]))
    assert ntrenet != pfenet and os.path.dirname(ntrenet) == os.path.dirname(pfenet)
    # the test of the same command finds the folder the training wrote
    assert experiment_dir(load_config(PASCAL, ["model", "pfenet", "seeds", "5"])) == pfenet


def _results(folder, cfg):
    stem = str(folder / "results_shot1")
    (folder / "results_shot1.json").write_text(json.dumps({"config": dict(cfg), "protocol": protocol_of(cfg)}))
    return stem


def test_a_shorter_test_never_replaces_results_unseen(tmp_path):
    full = load_config("config/toy/toy_split0_vgg.yaml", ["test_num", "300"])
    stem = _results(tmp_path, full)
    refuse_silent_replace(stem, full)  # the same protocol again: replaced, as before
    for changes in ({"test_num": 20}, {"seeds": 3}, {"val_size": 105}, {"target": "toyshift"}):
        with pytest.raises(UserError, match="another protocol.*overwrite true"):
            refuse_silent_replace(stem, full.replace(**changes))
    refuse_silent_replace(stem, full.replace(test_num=20, overwrite=True))


def test_an_older_results_file_without_protocol_is_protected_too(tmp_path):
    full = load_config("config/toy/toy_split0_vgg.yaml", [])
    (tmp_path / "results_shot1.json").write_text(json.dumps({"config": dict(full)}))
    with pytest.raises(UserError, match="episodes 300 -> 20"):
        refuse_silent_replace(str(tmp_path / "results_shot1"), full.replace(test_num=20))


def test_a_failed_start_leaves_no_folder_and_no_lock(tmp_path):
    new = tmp_path / "run"
    claim = claim_output_dir(str(new), resume="", overwrite=False)
    (new / "result").mkdir()
    (new / "result" / "train.log").write_text("")
    claim.release(failed=True)
    assert not new.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    claim = claim_output_dir(str(kept), resume="", overwrite=False)
    claim.release(failed=True)  # a folder the user had: kept, only the lock goes
    assert (kept / "notes.txt").read_text() == "mine" and not (kept / LOCK).exists()
    claim = claim_output_dir(str(tmp_path / "done"), resume="", overwrite=False)
    claim.started = True
    claim.release()
    assert os.listdir(tmp_path / "done") == []  # a finished run keeps no .lock


def test_best_holds_what_testing_needs_and_last_resumes(tmp_path):
    net = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(net.parameters())
    net(torch.randn(2, 4)).sum().backward()
    opt.step()
    cfg = load_config("config/toy/toy_split0_vgg.yaml", [])
    for name, o in (("best.pth", None), ("last.pth", opt)):
        save_checkpoint(str(tmp_path / name), model=net, optimizer=o, epoch=1, iteration=5, best_miou=1.0, cfg=cfg)
    assert os.path.getsize(tmp_path / "best.pth") < os.path.getsize(tmp_path / "last.pth")
    assert "optimizer" in load_training_state(str(tmp_path / "last.pth"))
    with pytest.raises(UserError, match="resume from .*last.pth"):
        load_training_state(str(tmp_path / "best.pth"))


def test_report_names_every_source_and_every_skip(tmp_path):
    write_result(tmp_path, "split0_resnet50", split=0, miou=63.1, mtime=1_000)
    write_result(tmp_path, "split0_resnet50_again", split=0, miou=60.0, mtime=2_000)
    write_result(tmp_path, "split1_resnet50", split=1, miou=70.0)
    md = report.make_report(tmp_path, "md")["md"]
    sources = md[md.index("### Sources"):]
    assert "`split0_resnet50_again`" in sources and "`split1_resnet50`" in sources
    assert "skipped split0_resnet50/results_shot1.json" in sources and "split0_resnet50_again" in sources
    assert "episodes x 1 seed(s)" in sources
