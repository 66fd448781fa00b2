"""The shell entry points: unknown datasets and experiments rejected with one clear line,
TensorBoard runs named by their folders, the demo keeping the previous demo's results."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("script", ["train.sh", "test.sh"])
@pytest.mark.parametrize("args, needle", [
    (["pascall", "split0_resnet50"], "unknown dataset 'pascall'"),
    (["pascal", "split9_resnet50"], "no config config/pascal/pascal_split9_resnet50.yaml"),
    (["pascal"], "usage"),
])
def test_bad_script_arguments(script, args, needle):
    r = subprocess.run(["bash", script, *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert needle in r.stderr


def _fake(path, body):
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)
    return str(path)


def test_tensorboard_names_runs_by_their_folder(tmp_path):
    for run in ("pascal/split0_resnet50", "toy/demo"):
        (tmp_path / "exp" / run / "tb").mkdir(parents=True)
    tb = _fake(tmp_path / "tensorboard", 'echo "$@"\n')
    script = os.path.join(ROOT, "scripts", "tensorboard.sh")
    r = subprocess.run(["bash", script, tb, "exp", "--port", "6007"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["--logdir_spec", "pascal/split0_resnet50:exp/pascal/split0_resnet50/tb,"
                                "toy/demo:exp/toy/demo/tb", "--port", "6007"]
    r = subprocess.run(["bash", script, tb, "exp/none"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no folder exp/none" in r.stderr


def test_demo_keeps_the_previous_results(tmp_path):
    shutil.copy(os.path.join(ROOT, "demo.sh"), tmp_path / "demo.sh")
    old = tmp_path / "exp/toy/demo/model"
    old.mkdir(parents=True)
    (old / "results_shot1.md").write_text("previous")
    py = _fake(tmp_path / "py", 'if [ "$1" = test.py ]; then mkdir -p exp/toy/demo/model; '
                                'echo new > exp/toy/demo/model/results_shot1.md; fi\n')
    r = subprocess.run(["bash", "demo.sh", py], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    kept = [d for d in os.listdir(tmp_path / "exp/toy") if d.startswith("demo_")]
    assert len(kept) == 1 and f"previous demo results moved to exp/toy/{kept[0]}" in r.stdout
    assert (tmp_path / "exp/toy" / kept[0] / "model/results_shot1.md").read_text() == "previous"
    assert (tmp_path / "exp/toy/demo/model/results_shot1.md").read_text() == "new\n"
