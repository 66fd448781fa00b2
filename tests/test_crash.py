"""Fault injection: SIGKILL mid-epoch and mid-checkpoint-write, then resume. Nothing on disk is
ever half-written, and the resumed run continues exactly as an uninterrupted one would."""
import glob
import os
import signal
import subprocess
import sys
import time

import torch

import train
from conftest import read_events, toy_overrides
from util.engine.checkpoint import read_checkpoint

CFG = "config/toy/toy_split0_resnet50.yaml"


def overrides(root, out):
    return [*toy_overrides(root), "save_path", str(out), "epochs", "2", "max_iters_per_epoch", "3",
            "save_every_iters", "1", "val_num", "4", "image_every", "0"]


def start(args):
    """train.py in a child at this process's thread count: float sums (NHWC convolutions in
    particular) round differently with the number of threads, and the resumed run is compared
    bit for bit with one trained in this process."""
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    return subprocess.Popen([sys.executable, "train.py", "--config", CFG, *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_when(proc, ready, timeout=240):
    """SIGKILL `proc` as soon as `ready()` holds (polled every millisecond)."""
    end = time.time() + timeout
    while not ready():
        assert proc.poll() is None, "training ended before the fault could be injected"
        assert time.time() < end, "fault point never reached"
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def losses(folder):
    steps = {}
    for tag, step, value in read_events(folder):
        if tag == "loss/total":
            assert step not in steps, f"step {step} logged twice"
            steps[step] = value
    return steps


def test_kill_mid_epoch_then_resume_equals_uninterrupted(toy_tree, tmp_path):
    ref, crashed = tmp_path / "ref", tmp_path / "crashed"
    assert train.main(["--config", CFG, *overrides(toy_tree, ref)]) == 0
    log = crashed / "result/train.log"
    proc = start(overrides(toy_tree, crashed))
    kill_when(proc, lambda: log.exists() and "iter 2/6" in log.read_text())
    state = read_checkpoint(str(crashed / "model/last.pth"))
    assert 1 <= state["iteration"] <= 3
    assert train.main(["--config", CFG, *overrides(toy_tree, crashed),
                       "resume", str(crashed / "model/last.pth")]) == 0
    assert losses(str(crashed / "tb")) == losses(str(ref / "tb"))
    assert sorted(losses(str(ref / "tb"))) == [1, 2, 3, 4, 5, 6]
    a = read_checkpoint(str(ref / "model/last.pth"))
    b = read_checkpoint(str(crashed / "model/last.pth"))
    assert (a["epoch"], a["iteration"]) == (b["epoch"], b["iteration"]) == (2, 6)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert os.path.exists(crashed / "model/best.pth")


def test_kill_while_writing_a_checkpoint(toy_tree, tmp_path):
    out = tmp_path / "run"
    proc = start(overrides(toy_tree, out))
    kill_when(proc, lambda: bool(glob.glob(f"{out}/model/.tmp_*")) and os.path.exists(out / "model/last.pth"))
    for path in glob.glob(f"{out}/model/*.pth"):  # every checkpoint a later run could pick is whole
        assert read_checkpoint(path)["iteration"] >= 1
    assert train.main(["--config", CFG, *overrides(toy_tree, out), "resume", str(out / "model/last.pth")]) == 0
    assert not glob.glob(f"{out}/model/.tmp_*"), "stale temporary checkpoint left behind"
    assert sorted(losses(str(out / "tb"))) == [1, 2, 3, 4, 5, 6]
