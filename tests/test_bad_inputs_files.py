"""Second catalogue, files the project reads and writes: crafted and foreign checkpoints, resume
with another config, predict.py outputs, output folders that are in use, full, read-only or
interrupted. Each case ends in one clear message (or simply works), loses no earlier run and
leaves nothing half-written that a rerun would trust."""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch

import predict
import test as test_cli
import train
from conftest import toy_overrides
from model import build_model, load_weights
from model.checkpoints.convert import read_state
from util.engine.checkpoint import read_checkpoint, resume_conflicts
from util.config import load_config
from util.errors import UserError
from util.engine.guard import claim_output_dir

CFG = "config/toy/toy_split0_resnet50.yaml"


class Payload:
    """A pickle that creates a marker folder when loaded unsafely (harmless, but proof of execution)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.makedirs, (self.marker,)


@pytest.fixture(scope="module")
def run(tmp_path_factory, toy_tree):
    """One short run (2 epochs x 2 steps) whose checkpoints the cases copy and break."""
    out = tmp_path_factory.mktemp("files") / "run"
    assert train.main(["--config", CFG, *toy_overrides(toy_tree), "save_path", str(out)]) == 0
    return out


def fresh(run, tmp_path):
    """A private copy of the run folder."""
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def train_args(toy_tree, out, *more):
    return ["--config", CFG, *toy_overrides(toy_tree), "save_path", str(out), *more]


# --- crafted pickles: no entry point runs code from a file --------------------------------------

def evil_checkpoints(run, tmp_path):
    own = read_checkpoint(str(run / "model/last.pth"))
    own["notes"] = Payload(tmp_path / "MARKER")
    torch.save(own, tmp_path / "own.pth")
    official = {"epoch": 1, "state_dict": {"module.cls.0.weight": torch.zeros(1)},
                "optimizer": Payload(tmp_path / "MARKER")}
    torch.save(official, tmp_path / "official.pth")
    return tmp_path / "own.pth", tmp_path / "official.pth"


def test_crafted_pickle_runs_nowhere(run, toy_tree, tmp_path):
    own, official = evil_checkpoints(run, tmp_path)
    cfg = load_config(CFG, toy_overrides(toy_tree) + ["pretrained", "false"])
    net = build_model(cfg)
    entry_points = {
        "test.py weight": lambda p: test_cli.main(["--config", CFG, *toy_overrides(toy_tree), "weight", str(p)]),
        "train.py resume": lambda p: train.main(train_args(toy_tree, tmp_path / "r", "resume", str(p))),
        "train.py weight": lambda p: train.main(train_args(toy_tree, tmp_path / "w", "weight", str(p))),
        "predict.py": lambda p: predict.main(["--config", CFG, "--weight", str(p), "--support", *support(toy_tree),
                                              "--query", support(toy_tree)[0], "--out", str(tmp_path / "p"),
                                              *toy_overrides(toy_tree)]),
        "load_weights": lambda p: load_weights(net, str(p)),
        "converter": lambda p: read_state(str(p)),
        "read_checkpoint": lambda p: read_checkpoint(str(p)),
    }
    for name, call in entry_points.items():
        for path in (own, official):
            with pytest.raises(UserError, match=rf"{path} refused: loading it would run code .*`os.makedirs`"):
                call(path)
            assert not (tmp_path / "MARKER").exists(), f"{name} executed the payload of {path.name}"


def test_crafted_backbone_file_is_refused(toy_tree, tmp_path):
    (tmp_path / "init").mkdir()
    torch.save({"conv1.weight": Payload(tmp_path / "MARKER")}, tmp_path / "init/resnet50_v2.pth")
    with pytest.raises(UserError, match="backbone weights .*resnet50_v2.pth refused"):
        train.main(train_args(toy_tree, tmp_path / "e", "pretrained", "true", "initmodel_dir", str(tmp_path / "init")))
    assert not (tmp_path / "MARKER").exists()


def test_crafted_pickle_cli_is_one_line(run, toy_tree, tmp_path):
    own, _ = evil_checkpoints(run, tmp_path)
    r = subprocess.run([sys.executable, "test.py", "--config", CFG, *toy_overrides(toy_tree), "weight", str(own)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: ")
    assert not (tmp_path / "MARKER").exists()


def test_checkpoint_of_an_earlier_version_with_numpy_rng_resumes(run, toy_tree, tmp_path):
    """Before tensors-only RNG states, checkpoints held numpy arrays: they still load safely."""
    out = fresh(run, tmp_path)
    state = read_checkpoint(str(out / "model/last.pth"))
    name, keys, *rest = state["rng"]["numpy"]
    state["rng"]["numpy"] = (name, keys.numpy().astype(np.uint32), *rest)
    torch.save(state, out / "model/last.pth")
    assert train.main(train_args(toy_tree, out, "resume", str(out / "model/last.pth"), "epochs", "3")) == 0
    assert read_checkpoint(str(out / "model/last.pth"))["epoch"] == 3


# --- checkpoints that are broken or belong to another run ----------------------------------------

def test_truncated_checkpoint_on_resume(run, toy_tree, tmp_path):
    out = fresh(run, tmp_path)
    (out / "model/last.pth").write_bytes((out / "model/last.pth").read_bytes()[:5000])
    with pytest.raises(UserError, match="last.pth cannot be read .*truncated"):
        train.main(train_args(toy_tree, out, "resume", str(out / "model/last.pth")))


def test_model_folder_with_a_non_checkpoint_last_pth(toy_tree, tmp_path):
    (tmp_path / "e/model").mkdir(parents=True)
    (tmp_path / "e/model/last.pth").write_text("my notes, not a checkpoint")
    with pytest.raises(UserError, match="already holds a run"):
        train.main(train_args(toy_tree, tmp_path / "e"))
    with pytest.raises(UserError, match="cannot be read"):
        train.main(train_args(toy_tree, tmp_path / "e", "resume", str(tmp_path / "e/model/last.pth")))
    assert (tmp_path / "e/model/last.pth").read_text() == "my notes, not a checkpoint"


def test_model_folder_with_the_users_own_files_trains_and_keeps_them(toy_tree, tmp_path):
    (tmp_path / "e/model").mkdir(parents=True)
    (tmp_path / "e/model/imagenet.pth").write_bytes(b"user file")
    (tmp_path / "e/model/README.txt").write_text("mine")
    assert train.main(train_args(toy_tree, tmp_path / "e", "epochs", "1", "val_every", "0")) == 0
    assert (tmp_path / "e/model/imagenet.pth").read_bytes() == b"user file"
    assert (tmp_path / "e/model/README.txt").read_text() == "mine"
    assert (tmp_path / "e/model/last.pth").exists()


def test_checkpoint_of_another_fold_is_refused_by_test(run, toy_tree):
    with pytest.raises(UserError, match=r"trained with split 0 \(now 1\).*`split 0`"):
        test_cli.main(["--config", CFG, *toy_overrides(toy_tree), "split", "1", "weight", str(run / "model/last.pth")])
    assert not list(run.glob("model/results_shot*.json"))


def test_checkpoint_of_another_shot_is_tested(run, toy_tree, tmp_path):
    out = fresh(run, tmp_path)
    assert test_cli.main(["--config", CFG, *toy_overrides(toy_tree), "shot", "2", "val_list",
                          str(toy_tree / "lists/train.txt"), "weight", str(out / "model/last.pth")]) == 0
    assert (out / "model/results_shot2.json").exists()


def test_checkpoint_of_another_architecture_on_resume(run, toy_tree, tmp_path):
    out = fresh(run, tmp_path)
    with pytest.raises(UserError, match=r"cannot resume .*use_doem \(checkpoint True, now False\)"):
        train.main(train_args(toy_tree, out, "resume", str(out / "model/last.pth"), "use_doem", "false"))


# --- resume with another config ------------------------------------------------------------------

def test_resume_refuses_run_defining_changes_naming_each(run, toy_tree, tmp_path):
    out = fresh(run, tmp_path)
    before = (out / "result/config.yaml").read_text()
    with pytest.raises(UserError) as err:
        train.main(train_args(toy_tree, out, "resume", str(out / "model/last.pth"), "split", "1", "shot", "2",
                              "backbone", "vgg", "batch_size", "4", "max_iters_per_epoch", "3"))
    for key in ("split (checkpoint 0, now 1)", "shot (checkpoint 1, now 2)", "backbone (checkpoint 'resnet50', now 'vgg')",
                "batch_size (checkpoint 2, now 4)", "max_iters_per_epoch (checkpoint 2, now 3)"):
        assert key in str(err.value)
    assert (out / "result/config.yaml").read_text() == before  # the refused config was not saved


def test_resume_conflicts_is_default_deny():
    saved = {"split": 0, "base_lr": 0.1, "epochs": 5, "device": "cpu"}
    now = {"split": 0, "base_lr": 0.05, "epochs": 9, "device": "cuda", "use_pcl": False, "_config_path": "x"}
    assert resume_conflicts(saved, now) == ["use_pcl (checkpoint True, now False)"]  # missing = default


def test_resume_of_a_complete_schedule_stops_cleanly(run, toy_tree, tmp_path):
    out = fresh(run, tmp_path)
    before = (out / "model/last.pth").read_bytes()
    for epochs in ("2", "1"):  # already complete, and shortened below what is done
        assert train.main(train_args(toy_tree, out, "resume", str(out / "model/last.pth"), "epochs", epochs)) == 0
        assert (out / "result/train.log").read_text().count("nothing to do") == (1 if epochs == "2" else 2)
    assert (out / "model/last.pth").read_bytes() == before


def test_resume_into_a_longer_schedule_keeps_lr_in_range(run, toy_tree, tmp_path):
    out = fresh(run, tmp_path)
    lrs = []
    original = train.train_step

    def spy(r, batch):
        terms = original(r, batch)
        lrs.append(terms["lr"])
        return terms

    train.train_step = spy
    try:
        assert train.main(train_args(toy_tree, out, "resume", str(out / "model/last.pth"), "epochs", "3")) == 0
    finally:
        train.train_step = original
    cfg = load_config(CFG)
    top = cfg.base_lr * cfg.scale_lr
    assert len(lrs) == 2 and all(0 <= lr <= top for lr in lrs)
    assert lrs == pytest.approx([train.poly_lr(top, i, 6, 0.9) for i in (4, 5)])


@pytest.mark.parametrize("it, expected", [(0, 1.0), (10, 0.5 ** 0.9), (20, 0.0), (25, 0.0), (-3, 1.0)])
def test_poly_lr_never_leaves_its_range(it, expected):
    assert train.poly_lr(0.02, it, 20, 0.9) == pytest.approx(0.02 * expected)


# --- output folders: overwrite, concurrency, full disk, read-only, Ctrl-C ------------------------

def test_overwrite_whose_new_run_fails_at_once_keeps_the_old_run(run, toy_tree, tmp_path):
    out = fresh(run, tmp_path)
    before = {p: (out / p).read_bytes() for p in ("model/last.pth", "model/best.pth", "result/config.yaml")}
    with pytest.raises(UserError, match="train.txt' not found"):  # as `pascal`: a toy list would be generated
        train.main(train_args(toy_tree, out, "overwrite", "true", "dataset", "pascal",
                              "train_list", str(tmp_path / "nope/train.txt")))
    assert {p: (out / p).read_bytes() for p in before} == before
    assert not (out / ".previous_run").exists()


def test_two_trainings_into_one_folder(toy_tree, tmp_path):
    held = claim_output_dir(str(tmp_path / "e"), resume="", overwrite=False)  # as a running training holds it
    try:
        with pytest.raises(UserError, match="is in use by another training"):
            train.main(train_args(toy_tree, tmp_path / "e", "overwrite", "true"))
    finally:
        held.release()


def test_disk_full_while_writing_a_checkpoint(run, toy_tree, tmp_path, monkeypatch):
    out = fresh(run, tmp_path)
    before = (out / "model/last.pth").read_bytes()
    real_save = torch.save

    def full(obj, f, *a, **k):  # what a full disk does to torch.save: some bytes, then a failure
        f.write(b"PK\x03\x04 partial")
        raise RuntimeError("[enforce fail at inline_container.cc] . unexpected pos 576 vs 534")

    monkeypatch.setattr("util.engine.checkpoint.torch.save", full)
    with pytest.raises(UserError, match=r"could not write checkpoint .*last.pth .*MiB free.*previous one is intact"):
        train.main(train_args(toy_tree, out, "resume", str(out / "model/last.pth"), "epochs", "3"))
    monkeypatch.setattr("util.engine.checkpoint.torch.save", real_save)
    assert (out / "model/last.pth").read_bytes() == before
    assert not list((out / "model").glob(".tmp_*"))
    assert train.main(train_args(toy_tree, out, "resume", str(out / "model/last.pth"), "epochs", "3")) == 0


def test_disk_full_while_writing_results(run, toy_tree, tmp_path, monkeypatch):
    out = fresh(run, tmp_path)
    args = ["--config", CFG, *toy_overrides(toy_tree), "weight", str(out / "model/last.pth")]
    assert test_cli.main(args) == 0
    def numbers():  # the record without its provenance (which holds the time of the test)
        return {k: v for k, v in json.loads((out / "model/results_shot1.json").read_text()).items()
                if k != "provenance"}
    before = numbers()
    md_before = (out / "model/results_shot1.md").read_text()
    real_open = open

    def full(path, mode="r", *a, **k):
        if "results_shot1.md" in str(path) and "w" in mode:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr("builtins.open", full)
    with pytest.raises(UserError, match=r"cannot write .*results_shot1.md \(No space left on device\): free space"):
        test_cli.main(args)
    assert not [p for p in os.listdir(out / "model") if ".tmp" in p]
    assert numbers() == before  # rewritten whole, with equal numbers
    assert (out / "model/results_shot1.md").read_text() == md_before  # the failed write left the old one


def test_read_only_output_folder(toy_tree, tmp_path, monkeypatch):
    real = os.makedirs

    def read_only(path, *a, **k):
        if str(path).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(os, "makedirs", read_only)
    with pytest.raises(UserError, match=r"cannot write .*ro/e \(Read-only file system\): make it writable, or "
                                        "set save_path"):
        train.main(train_args(toy_tree, tmp_path / "ro/e"))


def test_ctrl_c_saves_a_resumable_checkpoint(toy_tree, tmp_path):
    out = tmp_path / "e"
    args = train_args(toy_tree, out, "epochs", "2", "max_iters_per_epoch", "6", "val_every", "0", "image_every", "0")
    proc = subprocess.Popen([sys.executable, "train.py", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    log, end = out / "result/train.log", time.time() + 300
    while not (log.exists() and "iter 2/12" in log.read_text()):
        assert proc.poll() is None and time.time() < end, "training ended before it could be interrupted"
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1].startswith("interrupted: stopped at iteration")
    state = read_checkpoint(str(out / "model/last.pth"))
    assert 2 <= state["iteration"] < 12
    assert train.main([*args, "resume", str(out / "model/last.pth")]) == 0
    assert read_checkpoint(str(out / "model/last.pth"))["iteration"] == 12


# --- predict.py -----------------------------------------------------------------------------------

def support(toy_tree):
    """An image of the toy tree and a mask of it with some foreground."""
    img = sorted((toy_tree / "data/JPEGImages").glob("*.jpg"))[0]
    mask = toy_tree / "support_mask.png"
    if not mask.exists():
        h, w = cv2.imread(str(img)).shape[:2]
        m = np.zeros((h, w), np.uint8)
        m[h // 4: h // 2, w // 4: w // 2] = 255
        cv2.imwrite(str(mask), m)
    return [str(img), str(mask)]


def predict_args(run, toy_tree, out, *queries, more=()):
    return ["--config", CFG, "--weight", str(run / "model/last.pth"), "--support", *support(toy_tree),
            "--query", *map(str, queries), "--out", str(out), *more, *toy_overrides(toy_tree)]


def test_predict_same_file_name_from_two_folders(run, toy_tree, tmp_path):
    src = support(toy_tree)[0]
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        shutil.copy(src, tmp_path / d / "x.jpg")
    assert predict.main(predict_args(run, toy_tree, tmp_path / "out", tmp_path / "a/x.jpg", tmp_path / "b/x.jpg")) == 0
    assert sorted(os.listdir(tmp_path / "out")) == ["a_x_pred.png", "a_x_pred_overlay.png",
                                                    "b_x_pred.png", "b_x_pred_overlay.png"]


def test_predict_never_writes_over_inputs_or_existing_files(run, toy_tree, tmp_path):
    q = tmp_path / "dog.jpg"
    shutil.copy(support(toy_tree)[0], q)
    shutil.copy(support(toy_tree)[1], tmp_path / "dog_pred.png")  # a support mask named like an output
    with pytest.raises(UserError, match=r"dog_pred.png exists: pass --overwrite"):
        predict.main(predict_args(run, toy_tree, tmp_path, q))
    before = (tmp_path / "dog_pred.png").read_bytes()
    args = ["--config", CFG, "--weight", str(run / "model/last.pth"), "--support", str(q), str(tmp_path / "dog_pred.png"),
            "--query", str(q), "--out", str(tmp_path), "--overwrite", *toy_overrides(toy_tree)]
    with pytest.raises(UserError, match=r"dog_pred.png would replace an input"):
        predict.main(args)
    assert (tmp_path / "dog_pred.png").read_bytes() == before
    assert predict.main(predict_args(run, toy_tree, tmp_path, q, more=["--overwrite"])) == 0
    assert (tmp_path / "dog_pred.png").read_bytes() != before


def test_predict_empty_support_mask(run, toy_tree, tmp_path):
    img, _ = support(toy_tree)
    h, w = cv2.imread(img).shape[:2]
    cv2.imwrite(str(tmp_path / "empty.png"), np.zeros((h, w), np.uint8))
    args = ["--config", CFG, "--weight", str(run / "model/last.pth"), "--support", img, str(tmp_path / "empty.png"),
            "--query", img, "--out", str(tmp_path / "o"), *toy_overrides(toy_tree)]
    with pytest.raises(UserError, match=r"mask .*empty.png is empty"):
        predict.main(args)
    assert not (tmp_path / "o").exists()


def test_predict_huge_image(run, toy_tree, tmp_path):
    big = cv2.resize(cv2.imread(support(toy_tree)[0]), (3000, 2200))
    cv2.imwrite(str(tmp_path / "big.jpg"), big)
    assert predict.main(predict_args(run, toy_tree, tmp_path / "o", tmp_path / "big.jpg")) == 0
    assert cv2.imread(str(tmp_path / "o/big_pred.png"), cv2.IMREAD_GRAYSCALE).shape == (2200, 3000)


def test_predict_same_query_twice(run, toy_tree, tmp_path):
    img = support(toy_tree)[0]
    with pytest.raises(UserError, match="is given twice"):
        predict.main(predict_args(run, toy_tree, tmp_path / "o", img, img))
