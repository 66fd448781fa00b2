"""Catalogue of user mistakes: each stops with one clear message naming the thing and the fix,
and leaves nothing behind that a later run would trust (no checkpoint, no index cache)."""
import glob
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

import test as test_cli
import train
from conftest import toy_overrides
from util.errors import UserError

CFG = "config/toy/toy_split0_resnet50.yaml"


@pytest.fixture
def tree(toy_tree, tmp_path):
    """A private copy of the toy tree that a case may break."""
    shutil.copytree(toy_tree, tmp_path / "t")
    return tmp_path / "t"


def first_pair(root, split="train"):
    img, lab = (root / "lists" / f"{split}.txt").read_text().split("\n")[0].split()
    return root / "data" / img, root / "data" / lab


def corrupt(path):
    path.write_bytes(b"\x89PNG\r\n\x1a\n garbage")


def break_tree(kind, root):
    """Apply one data fault; returns the text the error must contain."""
    img, lab = first_pair(root)
    if kind == "missing_root":
        shutil.rmtree(root / "data")
        return "data_root"
    if kind == "missing_list":
        os.remove(root / "lists/train.txt")
        return "train.txt' not found"
    if kind == "empty_list":
        (root / "lists/train.txt").write_text("")
        return "has no entries"
    if kind == "one_field":
        (root / "lists/train.txt").write_text("JPEGImages/only_one_field.jpg\n")
        return "train.txt:1: expected 'image_path label_path'"
    if kind == "corrupt_label":
        corrupt(lab)
        return f"label '{lab}"
    if kind == "label_values":
        arr = cv2.imread(str(lab), cv2.IMREAD_GRAYSCALE)
        arr[0, 0] = 77
        cv2.imwrite(str(lab), arr)
        return "outside 0..20 and 255"
    images = sorted((root / "data/JPEGImages").glob("*train*"))  # all: the first batch must fail
    if kind == "corrupt_image":
        for p in images:
            p.write_bytes(b"not a jpeg")
        return "is missing or not readable"
    if kind == "size_mismatch":
        for p in images:
            cv2.imwrite(str(p), np.ascontiguousarray(cv2.imread(str(p))[:-3]))
        return "but label"
    if kind == "too_few_images":
        lines = (root / "lists/val.txt").read_text().split("\n")
        (root / "lists/val.txt").write_text("\n".join(lines[:3]) + "\n")
        return "1-shot episode needs 2"
    raise ValueError(kind)


DATA_FAULTS = ["missing_root", "missing_list", "empty_list", "one_field", "corrupt_label", "label_values",
               "corrupt_image", "size_mismatch", "too_few_images"]


@pytest.mark.parametrize("kind", DATA_FAULTS)
def test_data_faults(kind, tree, tmp_path):
    needle = break_tree(kind, tree)
    out = tmp_path / "exp"
    with pytest.raises(UserError) as err:  # as `pascal`: a toy config would regenerate missing data
        train.main(["--config", CFG, *toy_overrides(tree), "save_path", str(out), "dataset", "pascal",
                    "epochs", "1", "max_iters_per_epoch", "40", "batch_size", "4"])
    assert needle in str(err.value)
    assert not glob.glob(f"{out}/**/*.pth", recursive=True)


@pytest.mark.parametrize("pairs, needle", [
    (["bas_lr", "0.1"], "did you mean 'base_lr'"),
    (["shot", "two"], "expected int"),
    (["train_h", "470"], "(size - 1) % 8"),
    (["split", "5"], "fold"),
    (["shot", "0"], ">= 1"),
    (["backbone", "resnet18"], "not one of"),
    (["device", "cuda:7"] if not torch.cuda.is_available() else ["device", "tpu"], "device"),
])
def test_config_faults(pairs, needle, toy_tree, tmp_path):
    with pytest.raises(UserError) as err:
        train.main(["--config", CFG, *toy_overrides(toy_tree), "save_path", str(tmp_path / "e"), *pairs])
    assert needle in str(err.value)
    assert not glob.glob(f"{tmp_path}/**/*.pth", recursive=True)


def make_checkpoint(tmp_path, kind, toy_tree):
    """Write one bad checkpoint; returns (path, expected text)."""
    path = tmp_path / "ckpt.pth"
    if kind == "missing":
        return tmp_path / "nope.pth", "not found"
    if kind == "text_file":
        path.write_text("hello")
        return path, str(path)
    if kind == "truncated":
        torch.save({"model": {"x": torch.zeros(1000)}}, path)
        path.write_bytes(path.read_bytes()[:200])
        return path, str(path)
    if kind == "wrong_architecture":
        from model import build_model
        from util.config import load_config
        cfg = load_config(CFG, toy_overrides(toy_tree) + ["use_bgem", "false", "use_doem", "false",
                                                          "use_pcl", "false"])
        torch.save({"model": build_model(cfg).state_dict()}, path)
        return path, "use_bgem"
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["missing", "text_file", "truncated", "wrong_architecture"])
def test_checkpoint_faults(kind, toy_tree, tmp_path):
    path, needle = make_checkpoint(tmp_path, kind, toy_tree)
    with pytest.raises(UserError) as err:
        test_cli.main(["--config", CFG, *toy_overrides(toy_tree), "weight", str(path)])
    assert needle in str(err.value)
    assert not glob.glob(f"{tmp_path}/**/results*.json", recursive=True)


def test_resume_from_official_format_is_refused(toy_tree, tmp_path):
    path = tmp_path / "official.pth"
    torch.save({"epoch": 3, "state_dict": {}}, path)
    with pytest.raises(UserError, match="cannot be resumed.*weight FILE"):
        train.main(["--config", CFG, *toy_overrides(toy_tree), "save_path", str(tmp_path / "e"),
                    "resume", str(path)])


def test_missing_backbone_weights_name_the_file(toy_tree, tmp_path):
    with pytest.raises(UserError, match="resnet50_v2.pth"):
        train.main(["--config", CFG, *toy_overrides(toy_tree), "save_path", str(tmp_path / "e"),
                    "pretrained", "true", "initmodel_dir", str(tmp_path / "initmodel")])


def test_cli_exit_code_and_single_line(toy_tree):
    r = subprocess.run([sys.executable, "train.py", "--config", CFG, "shoot", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: unknown config key 'shoot' in command line (did you mean "
                                             "'shot'?); see the key table in docs/configuration.md"]
