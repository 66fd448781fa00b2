"""Cross-domain testing: the COCO -> PASCAL class exclusion per fold, and test.py on a target
benchmark (results beside the checkpoint under the target's name, bad targets refused)."""
import json

import pytest

import test as test_cli
import train
from conftest import toy_overrides
from target_fixtures import make_isic
from util.config import load_config
from util.data.benchmarks import get_benchmark
from util.data.class_names import PASCAL_TO_COCO, common_name, unseen_classes
from util.data.cross_domain import results_name, target_config
from util.engine.runtime import run_cli
from util.prepare.cli import main as prepare_main

CFG = "config/toy/toy_split0_vgg.yaml"
# COCO-20i fold i (interleaved, PFENet's) -> the PASCAL classes it never trained on, by hand:
# a COCO class c is novel in fold (c - 1) mod 4; person 1, airplane 5, boat 9, dog 17, chair 57, dining table 61 ...
PASCAL_OF_COCO_FOLD = {
    0: ["aeroplane", "boat", "chair", "diningtable", "dog", "person"],
    1: ["bicycle", "bus", "horse", "sofa"],
    2: ["bird", "car", "pottedplant", "sheep", "train", "tvmonitor"],
    3: ["bottle", "cat", "cow", "motorbike"],
}


def test_every_pascal_class_has_a_coco_name():
    coco, pascal = get_benchmark("coco"), get_benchmark("pascal")
    assert {common_name(n) for n in pascal.class_names} <= set(coco.class_names)
    assert set(PASCAL_TO_COCO.values()) <= set(coco.class_names)


@pytest.mark.parametrize("fold", range(4))
def test_coco_to_pascal_keeps_only_unseen_classes(fold):
    pascal = get_benchmark("pascal")
    cfg = target_config(load_config(None, ["dataset", "coco", "split", str(fold), "target", "pascal"]))
    kept = pascal.fold_classes(cfg, "test")
    assert [pascal.class_name(c) for c in kept] == PASCAL_OF_COCO_FOLD[fold]
    # the four folds partition PASCAL's 20 classes
    assert sum(map(len, PASCAL_OF_COCO_FOLD.values())) == 20
    contiguous = unseen_classes(pascal, range(1, 21), get_benchmark("coco"), fold, "contiguous")
    assert all(common_name(pascal.class_name(c)) in get_benchmark("coco").class_names[20 * fold:20 * fold + 20]
               for c in contiguous)
    assert pascal.fold_classes(load_config(None, ["split", str(fold)]), "test") == list(range(5 * fold + 1,
                                                                                             5 * fold + 6))


def test_target_config_defaults():
    cfg = load_config(None, ["dataset", "pascal", "target", "deepglobe"])
    t = target_config(cfg)
    assert (t.dataset, t.data_root, t.val_list, t.test_num) == ("deepglobe", "data/deepglobe",
                                                                "lists/deepglobe/test.txt", 600)
    assert t["_source"] == "pascal" and target_config(load_config(None, [])) == load_config(None, [])


@pytest.mark.parametrize("source, target, protocol", [
    # (episodes, seeds, test size, class pixels) of the target, whatever the source config holds
    (["dataset", "pascal"], "deepglobe", (600, 1, 401, 0)),
    (["dataset", "pascal"], "chestxray", (600, 1, 401, 0)),
    (["dataset", "coco"], "suim", (1000, 1, 473, 2048)),
    (["dataset", "coco", "val_size", "641"], "pascal", (1000, 1, 473, 2048)),
    (["config/toy/toy_split0_vgg.yaml"], "toyshift", (300, 1, 97, 128)),
])
def test_target_protocol_wins_over_the_source_config(source, target, protocol):
    path, overrides = (source[0], []) if source[0].endswith(".yaml") else (None, source)
    odd = ["min_class_pixels", "5000", "seeds", "4", "test_num", "77"]
    t = target_config(load_config(path, [*overrides, *odd, "target", target]))
    assert (t.test_num, t.seeds, t.val_size, t.min_class_pixels) == protocol
    t = target_config(load_config(path, [*overrides, *odd, "target", target, "target_size", "241",
                                         "target_episodes", "9"]))
    assert (t.test_num, t.val_size) == (9, 241)


def test_results_names_keep_targets_and_bam_outputs_apart():
    assert results_name(load_config(None, [])) == "results_shot1"
    assert results_name(load_config(None, ["dataset", "pascal", "target", "isic", "shot", "5"])) == "results_shot5_isic"
    bam = ["model", "bam", "backbone", "vgg"]
    assert results_name(load_config(None, bam)) == "results_shot1"
    assert results_name(load_config(None, bam + ["bam_output", "meta"])) == "results_shot1_meta"


@pytest.fixture(scope="module")
def run(tmp_path_factory, toy_tree):
    """A toy model (one training step) and a prepared ISIC fixture to test it on."""
    root = tmp_path_factory.mktemp("cross")
    extra = make_isic(root / "download")
    assert prepare_main(["isic", "--src", str(root / "download"), "--out", str(root / "isic"), "--lists",
                         str(root / "lists"), "--workers", "1", *extra]) == 0
    args = [*toy_overrides(toy_tree), "save_path", str(root / "exp"), "epochs", "1", "max_iters_per_epoch", "1",
            "val_every", "0", "pretrained", "false"]
    assert train.main(["--config", CFG, *args]) == 0
    return root, args + ["target", "isic", "target_root", str(root / "isic"), "target_list",
                         str(root / "lists/test.txt"), "target_episodes", "5", "target_size", "97"]


def test_checkpoint_tested_on_a_target(run):
    root, args = run
    assert test_cli.main(["--config", CFG, *args]) == 0
    res = json.loads((root / "exp/model/results_shot1_isic.json").read_text())
    assert [c["name"] for c in res["metrics"]["per_class"]] == list(get_benchmark("isic").class_names)
    assert res["metrics"]["episodes"] == 5 and res["config"]["dataset"] == "toy" and res["config"]["target"] == "isic"
    assert "toy -> isic" in (root / "exp/model/results_shot1_isic.md").read_text()
    assert (root / "exp/result/test_shot1_isic.log").is_file()
    assert not (root / "exp/model/results_shot1.json").exists()


@pytest.mark.parametrize("change, words", [
    (["target_root", "/nonexistent/isic"], ["`target_root`", "/nonexistent/isic", "util.prepare isic", "docs/cross_domain.md"]),
    (["shot", "2"], ["has 2 images", "3"]),
    (["target", "pascal", "target_list", ""], ["lists/pascal/val.txt", "target_list", "util.prepare pascal"]),
])
def test_bad_target_one_line_exit_2_no_result(run, capsys, change, words):
    root, args = run
    before = sorted(p.name for p in (root / "exp/model").iterdir())
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda _: test_cli.main(["--config", CFG, *args, *change]))
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().split("\n")
    assert err[-1].startswith("error: ") and all(w in err[-1] for w in words), err[-1]
    assert sorted(p.name for p in (root / "exp/model").iterdir()) == before


def test_second_toy_domain(tmp_path):
    import cv2
    import numpy as np

    from util.prepare.toy import render
    from util.prepare.toy_shift import generate_toy_shift

    generate_toy_shift(str(tmp_path / "data"), str(tmp_path / "lists"), n_val=3, seed=1, min_side=40, max_side=48,
                       workers=1)
    lines = (tmp_path / "lists/test.txt").read_text().split("\n")[:-1]
    assert len(lines) == 3
    for i, line in enumerate(lines):
        image_path, label_path = line.split()
        toy_image, toy_label = render(1, 1, i, 40, 48)
        label = cv2.imread(str(tmp_path / "data" / label_path), cv2.IMREAD_GRAYSCALE)
        image = cv2.imread(str(tmp_path / "data" / image_path)).astype(np.float32)
        assert np.array_equal(label, toy_label)  # same classes, shapes and label format
        b, g, r = image.mean((0, 1))
        assert b > r + 40 and np.abs(image - toy_image).mean() > 20  # another look
    # a toy fold-0 model tested on the second domain: only the classes it never trained on
    cfg = target_config(load_config("config/toy/toy_split0_vgg.yaml", ["target", "toyshift"]))
    assert get_benchmark("toyshift").fold_classes(cfg, "test") == [1, 2, 3, 4, 5]
