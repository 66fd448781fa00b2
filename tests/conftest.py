"""Shared fixtures: a tiny generated toy tree and config overrides that make runs fast."""
import glob
import os
import struct

import pytest
import torch

from util.prepare.toy import generate_toy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# CPU flag sets `--cpu-flags` runs the suite with (util.engine.precision.cpu_flags mocked), so one
# machine checks that the numbers hold on a CPU with native bf16 and on one without it.
CPU_KINDS = {"native-bf16": {"avx2", "avx512f", "avx512_vnni", "avx512_bf16"},
             "no-bf16": {"avx2", "avx512f", "avx512_vnni"}}


def pytest_addoption(parser):
    parser.addoption("--cpu-flags", default="host", choices=("host", *CPU_KINDS),
                     help="run as on a CPU with (native-bf16) or without (no-bf16) avx512_bf16: mocks the CPU "
                          "flags util.engine.precision reads (default: this machine's)")


@pytest.fixture(autouse=True, scope="session")
def _two_threads():
    torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _cpu_kind(request, monkeypatch):
    """The CPU flags of `--cpu-flags` for every test (a test may mock its own on top)."""
    kind = request.config.getoption("--cpu-flags")
    if kind != "host":
        from util.engine import precision
        monkeypatch.setattr(precision, "cpu_flags", lambda: set(CPU_KINDS[kind]))


@pytest.fixture(scope="session")
def toy_tree(tmp_path_factory):
    """150 train / 40 val images of 64-96 px, generated once per test session."""
    root = tmp_path_factory.mktemp("toy")
    generate_toy(str(root / "data"), str(root / "lists"), n_train=150, n_val=40, seed=1,
                 min_side=64, max_side=96, workers=1)
    return root


def toy_overrides(root) -> list[str]:
    """Config overrides small enough for a few-second run on the CPU, random backbone."""
    return ["data_root", str(root / "data"), "train_list", str(root / "lists/train.txt"),
            "val_list", str(root / "lists/val.txt"), "train_h", "65", "train_w", "65", "val_size", "65",
            "batch_size", "2", "epochs", "2", "max_iters_per_epoch", "2", "val_num", "6", "test_num", "6", "val_every", "1",
            "num_workers", "0", "print_freq", "1", "image_every", "2", "pcl_samples", "8",
            "device", "cpu", "ppm_scales", "[1.0,0.5]"]


def read_events(folder: str) -> list[tuple[str, int, float]]:
    """(tag, step, value) of every summary in a tensorboard folder, read without tensorboard and
    as TensorBoard shows them: a resumed writer's purge marker (SessionLog START at step s)
    discards the earlier files' events at steps >= s."""
    from tensorboardX.proto import event_pb2

    out = []
    for path in sorted(glob.glob(f"{folder}/events.out.tfevents.*"), key=os.path.getmtime):
        data, i = open(path, "rb").read(), 0
        while i < len(data):
            n = struct.unpack("<Q", data[i:i + 8])[0]
            ev = event_pb2.Event()
            ev.ParseFromString(data[i + 12:i + 12 + n])
            i += 16 + n
            if ev.HasField("session_log") and ev.session_log.status == event_pb2.SessionLog.START:
                out = [e for e in out if e[1] < ev.step]
            out += [(v.tag, ev.step, v.simple_value) for v in ev.summary.value]
    return out


def _tree_state(root: str) -> set[str] | None:
    """Untracked and ignored entries under the folders a run may write (None outside git)."""
    import subprocess
    r = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all", "--", "exp", "lists",
                        "data", "initmodel"], cwd=root, capture_output=True, text=True)
    return set(r.stdout.splitlines()) if r.returncode == 0 else None


def pytest_sessionstart(session):
    session.config._tree_before = _tree_state(ROOT)


def pytest_sessionfinish(session, exitstatus):
    """The suite writes only under temporary folders: anything new under exp/, lists/, data/ or
    initmodel/ of the working tree fails the run, named."""
    before = getattr(session.config, "_tree_before", None)
    after = _tree_state(ROOT)
    if before is None or after is None:
        return
    if left := sorted(after - before):
        session.config.get_terminal_writer().line(
            "the test suite left files in the working tree (write them under tmp_path):\n  " + "\n  ".join(left),
            red=True)
        session.exitstatus = 1
