"""The shell entry points reject unknown datasets and experiments with one clear line."""
import subprocess

import pytest


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
