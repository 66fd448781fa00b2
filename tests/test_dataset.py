"""Episodes: remap, supports, K-shot shapes, determinism across workers, user errors."""
import os

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from util.config import load_config
from util.data.dataset import EpisodeDataset, build_dataset, collate_episodes, remap
from util.errors import UserError
from util.data.index import read_label
from util.prepare.toy import generate_toy


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    generate_toy(str(root / "data"), str(root / "lists"), n_train=120, n_val=80, min_side=48, max_side=64, workers=2)
    return root


def _cfg(toy, *extra):
    return load_config(None, ["dataset", "toy", "data_root", str(toy / "data"),
                              "train_list", str(toy / "lists/train.txt"), "val_list", str(toy / "lists/val.txt"),
                              "train_h", "33", "train_w", "33", "val_size", "41", "min_class_pixels", "20",
                              "test_num", "10", *extra])


def test_remap():
    label = np.array([[0, 3, 5], [255, 3, 7]], np.uint8)
    assert remap(label, 3).tolist() == [[0, 1, 0], [255, 1, 0]]


def test_train_item(toy):
    ds = build_dataset(_cfg(toy, "shot", "3"), "train")
    item = ds[5]
    assert item["query"].shape == (3, 33, 33) and item["supports"].shape == (3, 3, 33, 33)
    assert item["query_mask"].shape == (33, 33) and item["support_masks"].shape == (3, 33, 33)
    assert item["query_mask"].dtype == item["support_masks"].dtype == torch.long
    for m in (item["query_mask"], item["support_masks"]):
        assert set(torch.unique(m).tolist()) <= {0, 1, 255}
    assert item["class_id"] in range(6, 21) and ds.classes[int(item["class_idx"])] == item["class_id"]
    paths = item["support_paths"]
    assert len(set(paths)) == 3 and item["query_path"] not in paths
    for p in paths:  # every support holds the class above the pixel threshold
        pos = [img for img, _ in ds.index.items].index(p)
        assert pos in ds.index.by_class[item["class_id"]]
    again = ds[5]
    assert torch.equal(again["query"], item["query"]) and again["support_paths"] == paths
    ds.set_epoch(1)
    assert any(ds[i]["support_paths"] != build_dataset(_cfg(toy, "shot", "3"), "train")[i]["support_paths"]
               for i in range(5))


def test_test_items_and_raw_mask(toy):
    ds = build_dataset(_cfg(toy), "test")
    assert len(ds) == 10
    item = ds[3]
    assert item["class_id"] in range(1, 6) and item["query"].shape == (3, 41, 41)
    raw = read_label(ds.index.items[ds.episodes[3][0]][1])
    assert torch.equal(item["raw_mask"], torch.from_numpy(remap(raw, item["class_id"]).astype(np.int64)))
    assert (item["raw_mask"] == 1).any()


def test_test_episodes_identical_across_workers(toy):
    ds = build_dataset(_cfg(toy, "shot", "2"), "test")
    runs = []
    for workers, batch in ((0, 1), (2, 3)):
        loader = DataLoader(ds, batch_size=batch, num_workers=workers, collate_fn=collate_episodes)
        batches = list(loader)
        runs.append({k: (torch.cat([b[k] for b in batches]) if torch.is_tensor(batches[0][k])
                         else sum((b[k] for b in batches), [])) for k in batches[0]})
    a, b = runs
    assert a["query_path"] == b["query_path"] and a["support_paths"] == b["support_paths"]
    for k in ("query", "query_mask", "supports", "support_masks", "class_idx", "class_id"):
        assert torch.equal(a[k], b[k]), k
    assert all(torch.equal(x, y) for x, y in zip(a["raw_mask"], b["raw_mask"]))
    assert a["supports"].shape == (10, 2, 3, 41, 41)
    assert build_dataset(_cfg(toy, "shot", "2"), "test").episodes == ds.episodes  # same seed, same episodes


def _pascal_tree(root, labels, image_shapes=None):
    """PASCAL-layout tree: labels as given, images of the same (or given) size."""
    for sub in ("JPEGImages", "SegmentationClassAug"):
        os.makedirs(root / sub, exist_ok=True)
    lines = []
    for i, lbl in enumerate(labels):
        shape = image_shapes[i] if image_shapes else lbl.shape
        cv2.imwrite(str(root / f"JPEGImages/{i}.jpg"), np.full((*shape, 3), 128, np.uint8))
        cv2.imwrite(str(root / f"SegmentationClassAug/{i}.png"), lbl)
        lines.append(f"JPEGImages/{i}.jpg SegmentationClassAug/{i}.png\n")
    (root / "val.txt").write_text("".join(lines))
    return load_config(None, ["data_root", str(root), "val_list", str(root / "val.txt"), "min_class_pixels", "4",
                              "val_size", "17", "test_num", "4"])


def _blob(cls, side=16):
    lbl = np.zeros((side, side), np.uint8)
    lbl[4:12, 4:12] = cls
    return lbl


def test_class_with_too_few_images(tmp_path):
    cfg = _pascal_tree(tmp_path, [_blob(1), _blob(1), _blob(2), _blob(3), _blob(3), _blob(4), _blob(4),
                                  _blob(5), _blob(5)])
    with pytest.raises(UserError, match=r"class 2 \(bicycle\) has 1 images.*needs 2.*shot"):
        EpisodeDataset(cfg, "test")


def test_size_mismatch_names_both_files(tmp_path):
    labels = [_blob(c) for c in (1, 1, 2, 2, 3, 3, 4, 4, 5, 5)]
    cfg = _pascal_tree(tmp_path, labels, image_shapes=[(20, 16)] + [(16, 16)] * 9)
    ds = EpisodeDataset(cfg, "test", num_episodes=len(labels))
    with pytest.raises(UserError, match=r"0\.jpg.*0\.png"):
        [ds[i] for i in range(len(ds))]


def test_missing_paths_and_bad_lists(tmp_path):
    cfg = load_config(None, ["data_root", str(tmp_path / "none"), "val_list", str(tmp_path / "val.txt")])
    with pytest.raises(UserError, match="data_root.*none"):
        EpisodeDataset(cfg, "val")
    cfg = load_config(None, ["data_root", str(tmp_path), "val_list", str(tmp_path / "val.txt")])
    with pytest.raises(UserError, match="val.txt.*not found"):
        EpisodeDataset(cfg, "val")
    (tmp_path / "val.txt").write_text("")
    with pytest.raises(UserError, match="val.txt.*no entries"):
        EpisodeDataset(cfg, "val")
    (tmp_path / "val.txt").write_text("JPEGImages/a.jpg\n")
    with pytest.raises(UserError, match=r"val.txt:1:"):
        EpisodeDataset(cfg, "val")
