"""Adding a benchmark or a method takes one definition plus a config: a fold-free, binary-mask
benchmark and a tiny method, both defined in this file alone, train one step and test."""
import json
import os

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import test as test_cli
import train as train_cli
from model import build_model, get_method
from model.method import METHODS, Method
from util.config import ConfigError, load_config
from util.data.benchmarks import BENCHMARKS, BINARY_MASKS, Benchmark, FolderMasks, Protocol, get_benchmark
from util.data.dataset import EpisodeDataset
from util.errors import UserError

NAMES = ("leaf", "shell", "stone")


class MeanMatch(nn.Module):
    """A deliberately small method: cosine similarity to the masked support mean of raw pixels,
    scaled by one learnable temperature (the forward contract of model/method.py)."""

    def __init__(self, num_train_classes: int):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(5.0))
        self.num_train_classes = num_train_classes

    def forward(self, query, supports, support_masks, query_mask=None, classes=None):
        fg = (support_masks == 1).float().unsqueeze(2)  # [B,K,1,H,W]
        proto = (supports * fg).sum((1, 3, 4)) / fg.sum((1, 3, 4)).clamp(min=1)  # [B,3]
        sim = nn.functional.cosine_similarity(query, proto[..., None, None], dim=1)  # [B,H,W]
        logits = torch.stack([-sim, sim], 1) * self.scale
        if not self.training:
            return logits
        loss = nn.functional.cross_entropy(logits, query_mask.long(), ignore_index=255)
        return logits, {"main": loss, "total": loss}


def build_mean_match(cfg, num_train_classes):
    return MeanMatch(num_train_classes)


@pytest.fixture
def registered():
    bench = Benchmark(name="shapes3", title="three shapes", class_names=NAMES, folds=None,
                      prepare="(made by the test)", protocol=Protocol(episodes=6, seeds=1, image_size=33),
                      label_format=BINARY_MASKS, read_label=FolderMasks(NAMES))
    BENCHMARKS.register("shapes3", bench)
    METHODS.register("meanmatch", Method("meanmatch", build_mean_match, network="meanmatch"))
    yield bench
    BENCHMARKS.unregister("shapes3")
    METHODS.unregister("meanmatch")


def _tree(root):
    """Per class, four images with a bright square and its 0/255 mask, in `<class>/` folders."""
    lines = []
    rng = np.random.default_rng(0)
    for c, name in enumerate(NAMES):
        os.makedirs(root / name)
        for i in range(4):
            img = rng.integers(0, 60, (24, 24, 3)).astype(np.uint8)
            mask = np.zeros((24, 24), np.uint8)
            y, x = rng.integers(0, 12, 2)
            mask[y:y + 10, x:x + 10] = 255
            img[mask > 0] = (80 * c + 40, 200 - 60 * c, 120)
            cv2.imwrite(str(root / name / f"{i}.jpg"), img)
            cv2.imwrite(str(root / name / f"{i}.png"), mask)
            lines.append(f"{name}/{i}.jpg {name}/{i}.png\n")
    (root / "all.txt").write_text("".join(lines))


def _overrides(root):
    return ["dataset", "shapes3", "model", "meanmatch", "data_root", str(root), "train_list", str(root / "all.txt"),
            "val_list", str(root / "all.txt"), "min_class_pixels", "50", "train_h", "33", "train_w", "33",
            "val_size", "33", "batch_size", "2", "epochs", "1", "max_iters_per_epoch", "1", "val_every", "0",
            "test_num", "6", "num_workers", "0", "device", "cpu", "pretrained", "false", "image_every", "1",
            "save_path", str(root / "exp")]


def test_binary_masks_become_class_maps(registered, tmp_path):
    _tree(tmp_path)
    cfg = load_config(None, _overrides(tmp_path))
    ds = EpisodeDataset(cfg, "test")
    assert ds.classes == [1, 2, 3] and sorted(ds.index.by_class) == [1, 2, 3]
    assert all(len(v) == 4 for v in ds.index.by_class.values())
    item = ds[0]
    assert set(item["raw_mask"].unique().tolist()) <= {0, item["class_id"]}
    assert get_benchmark("shapes3").base_classes(0) == [1, 2, 3]  # no folds: every class
    assert cfg.num_train_classes == 3


def test_new_benchmark_and_method_train_and_test(registered, tmp_path):
    _tree(tmp_path)
    assert train_cli.main(["--config", "", *_overrides(tmp_path)]) == 0
    assert os.path.isfile(tmp_path / "exp" / "model" / "last.pth")
    assert test_cli.main(["--config", "", *_overrides(tmp_path)]) == 0
    result = json.loads((tmp_path / "exp" / "model" / "results_shot1.json").read_text())
    assert result["config"]["dataset"] == "shapes3" and result["config"]["model"] == "meanmatch"
    assert [c["name"] for c in result["metrics"]["per_class"]] == list(NAMES)
    assert 0 <= result["metrics"]["miou"] <= 100


def test_unregistered_names_are_user_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"model.*'meanmatch'.*ntrenet, pfenet"):
        load_config(None, ["model", "meanmatch"])
    with pytest.raises(UserError, match="unknown method 'nosuchmethod'"):
        get_method("nosuchmethod")


def test_pfenet_is_ntrenet_with_every_module_off():
    cfg = load_config(None, ["model", "pfenet", "pretrained", "false", "backbone", "vgg", "ppm_scales", "[1.0]"])
    assert (cfg.use_bgem, cfg.use_doem, cfg.use_pcl) == (False, False, False)
    off = load_config(None, ["use_bgem", "false", "use_doem", "false", "use_pcl", "false", "pretrained", "false",
                             "backbone", "vgg", "ppm_scales", "[1.0]"])
    assert list(build_model(cfg).state_dict()) == list(build_model(off).state_dict())
    with pytest.raises(ConfigError, match=r"use_pcl.*command line.*'pfenet' fixes it to False"):
        load_config(None, ["model", "pfenet", "use_pcl", "true"])
