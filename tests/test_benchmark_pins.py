"""Each benchmark's lists, class index and test episodes, pinned as hashes.

Tiny synthetic sources go through the prepare command (PASCAL, COCO) or the toy generator,
then through the config -> dataset path of every fold and mode. The hashes were computed
once and must not change when the code is reorganised: a changed hash means a changed
benchmark (different lists, images per class or episodes), which would change every number.
"""
import hashlib
import json

import numpy as np
import pytest
import scipy.io
from PIL import Image

from util.config import load_config
from util.data.dataset import EpisodeDataset
from util.prepare import main as prepare_main
from util.data.benchmarks import get_benchmark
from util.prepare.toy import generate_toy

SIDE = 16  # labels: four 8x8 quadrants, each background or one class


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _quadrants(classes) -> np.ndarray:
    label = np.zeros((SIDE, SIDE), np.uint8)
    for q, c in enumerate(classes):
        y, x = 8 * (q // 2), 8 * (q % 2)
        label[y:y + 8, x:x + 8] = c
    label[7:9, :] = np.where(label[7:9, :] > 0, 255, 0)  # a VOC-like ignore band
    return label


def _pascal_sources(root, rng):
    """VOC (palette PNGs) and SBD (.mat) sources; 60 train-side and 30 val ids, 3 objects each,
    every class in several images of each side."""
    voc, sbd = root / "VOC2012", root / "dataset"
    for d in (voc / "SegmentationClass", voc / "JPEGImages", voc / "ImageSets" / "Segmentation", sbd / "cls",
              sbd / "img"):
        d.mkdir(parents=True)
    ids = [f"2007_{i:06d}" for i in range(90)]
    voc_train, voc_val, sbd_train, sbd_val = ids[:30], ids[60:], ids[20:50], ids[50:65]
    slots = np.concatenate([rng.permutation(20) + 1 for _ in range(14)])
    for n, i in enumerate(ids):
        label = _quadrants(slots[3 * n:3 * n + 3])
        if i in voc_train or i in voc_val:
            img = Image.fromarray(label)
            img.putpalette([(k * 37) % 256 for k in range(768)])
            img.save(voc / "SegmentationClass" / f"{i}.png")
        else:
            sbd_label = np.where(label == 255, 0, label)
            scipy.io.savemat(sbd / "cls" / f"{i}.mat", {"GTcls": {
                "Segmentation": sbd_label, "Boundaries": np.zeros((1, 1), object),
                "CategoriesPresent": np.unique(sbd_label[sbd_label > 0]).astype(np.uint8)}})
        Image.fromarray(np.full((SIDE, SIDE, 3), 90, np.uint8)).save(voc / "JPEGImages" / f"{i}.jpg")
    for path, part in ((voc / "ImageSets/Segmentation/train.txt", voc_train),
                       (voc / "ImageSets/Segmentation/val.txt", voc_val),
                       (sbd / "train.txt", sbd_train), (sbd / "val.txt", sbd_val)):
        path.write_text("\n".join(part) + "\n")
    return ["pascal", "--voc", str(voc), "--sbd", str(sbd)]


def _coco_sources(root, rng):
    """COCO 2014 layout: 80 categories with COCO-like gapped ids, 8 rectangles per image."""
    cat_ids = [c for c in range(1, 91) if c not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
    cats = [{"id": c, "name": f"c{c}"} for c in cat_ids]
    (root / "annotations").mkdir(parents=True)
    ann_id = 0
    for split, n in (("train2014", 60), ("val2014", 60)):
        (root / split).mkdir()
        images, anns = [], []
        slots = np.concatenate([rng.permutation(80) for _ in range(n * 8 // 80)])
        for i in range(n):
            name = f"COCO_{split}_{i:012d}.jpg"
            images.append({"id": i, "file_name": name, "height": 16, "width": 32})
            Image.new("RGB", (32, 16)).save(root / split / name)
            for j, cls in enumerate(slots[8 * i:8 * i + 8]):
                x, y = 8 * (j % 4), 8 * (j // 4)
                ann_id += 1
                anns.append(dict(id=ann_id, image_id=i, category_id=cat_ids[int(cls)], iscrowd=0,
                                 segmentation=[[x, y, x + 7, y, x + 7, y + 7, x, y + 7]]))
        data = {"images": images, "annotations": anns, "categories": cats}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return ["coco", "--coco", str(root)]


def _prepare(tmp_path, dataset):
    rng = np.random.default_rng(7)
    src = tmp_path / "src"
    args = _pascal_sources(src, rng) if dataset == "pascal" else _coco_sources(src, rng)
    out, lists = tmp_path / "out", tmp_path / "lists"
    assert prepare_main(args + ["--out", str(out), "--lists", str(lists), "--workers", "1"]) == 0
    return out, lists


def _fingerprint(cfg, root) -> dict:
    """Hashes of the lists, and per fold of the train/test class index and the test episodes."""
    strip = len(str(root)) + 1
    out = {"lists": _digest([open(p).read() for p in (cfg.train_list, cfg.val_list)])}
    for split in range(4):
        for mode in ("train", "test"):
            ds = EpisodeDataset(load_config(None, _overrides(cfg, split)), mode)
            index = ds.index
            assert index.items and len(ds.episodes) == (25 if mode == "test" else 0)
            out[f"{split}/{mode}"] = _digest({
                "items": [(a[strip:], b[strip:]) for a, b in index.items], "present": index.present,
                "by_class": {str(k): v for k, v in index.by_class.items()},
                "episodes": [list(e[:2]) + list(e[2]) for e in ds.episodes]})
    return out


def _overrides(cfg, split) -> list[str]:
    return ["dataset", cfg.dataset, "coco_fold_style", cfg.coco_fold_style, "data_root", cfg.data_root,
            "train_list", cfg.train_list, "val_list", cfg.val_list, "split", str(split), "test_num", "25",
            "test_seed", "5", "min_class_pixels", "16", "num_workers", "0"]


PINS = {
    "pascal": {
        "lists": "2007f66d693d43ef", "0/train": "507586cc7bd52739", "0/test": "b92f6a2e109741b1",
        "1/train": "8715b3d0d4386da4", "1/test": "cbdb6c6c06ffb716", "2/train": "2213973f7ce22802",
        "2/test": "3b25d2c81025174e", "3/train": "b2b5eca8d448d111", "3/test": "e533607c6d6e597a",
        "classes": "df9f14619ab4a107",
    },
    "coco-interleaved": {
        "lists": "455d6a0b0ecc62ea", "0/train": "d4471b4f463bf698", "0/test": "08d5967573e88ae3",
        "1/train": "790e21e6f576b626", "1/test": "1ef6681dbc48e70e", "2/train": "eb912dc3ac3b9d69",
        "2/test": "ee30be1d2e8a0427", "3/train": "928694bebe5c1617", "3/test": "5926f07f14aed5a5",
        "classes": "dfda09d2972f406c",
    },
    "coco-contiguous": {
        "lists": "455d6a0b0ecc62ea", "0/train": "524d8a4eaf349716", "0/test": "7a600fe53a35c36b",
        "1/train": "afe9c841c0ac474b", "1/test": "0a25e3efffb5e585", "2/train": "3970169bfe3e6844",
        "2/test": "c4ca5ba514d803d7", "3/train": "ca4ea0ca1fd61086", "3/test": "fae03bd0d7a817c8",
        "classes": "ab5fb72aa060a1f6",
    },
    "toy": {
        "lists": "76379bce401166e9", "0/train": "78049cbb6e675bbb", "0/test": "698a2e2d8802adc8",
        "1/train": "219bc8868281fe45", "1/test": "f19edd66291a46bd", "2/train": "f090449fbd777482",
        "2/test": "20e04bc6bfa35db8", "3/train": "b7d4da6b7c6154cb", "3/test": "a8f96853cfc01634",
        "classes": "432dadab4eec378d",
    },
}


@pytest.mark.parametrize("name", list(PINS))
def test_benchmark_is_unchanged(tmp_path, name):
    dataset, _, style = name.partition("-")
    if dataset == "toy":
        data, lists = tmp_path / "data", tmp_path / "lists"
        generate_toy(str(data), str(lists), n_train=80, n_val=100, seed=3, min_side=48, max_side=64, workers=1)
    else:
        data, lists = _prepare(tmp_path, dataset)
    cfg = load_config(None, ["dataset", dataset, "coco_fold_style", style or "interleaved", "data_root", str(data),
                             "train_list", str(lists / "train.txt"), "val_list", str(lists / "val.txt")])
    got = _fingerprint(cfg, data)
    bench = get_benchmark(dataset)
    got["classes"] = _digest([[bench.class_name(c) for c in bench.novel_classes(s, cfg.coco_fold_style)]
                              for s in range(4)])
    assert got == PINS[name], json.dumps(got, indent=1)
