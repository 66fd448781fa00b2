"""FS-CS episodes: presence subsets (empty included), distinct ways, supports of the right
classes, N+1-class query labels, fixed test episodes across workers, bad way counts."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from util.config import load_config
from util.data.fscs import (FSCSDataset, collate_fscs, draw_fscs_episode, episode_label,
                            support_class_probabilities)
from util.data.index import ClassIndex, read_label
from util.errors import UserError
from test_dataset import toy  # noqa: F401  (the same small toy tree, 80 validation images)


def _cfg(toy, *extra):
    return load_config(None, ["dataset", "toy", "data_root", str(toy / "data"), "ifsl", "true",
                              "train_list", str(toy / "lists/train.txt"), "val_list", str(toy / "lists/val.txt"),
                              "train_h", "33", "train_w", "33", "val_size", "33", "min_class_pixels", "20",
                              "test_num", "40", *extra])


def test_support_class_probabilities_follow_ifsl():
    p = support_class_probabilities([3, 4, 5, 6, 7], 5)
    assert p.tolist() == [0.125, 0.125, 0.5, 0.125, 0.125]
    assert support_class_probabilities([9], 9).tolist() == [1.0]


def test_episode_label_maps_ways_and_keeps_ignore():
    label = np.array([[0, 3, 5], [255, 7, 3]], np.uint8)
    assert episode_label(label, (5, 3)).tolist() == [[0, 2, 1], [255, 0, 2]]
    assert episode_label(label, (9,)).tolist() == [[0, 0, 0], [255, 0, 0]]


def test_episode_label_boundary_as_background():
    label = np.array([[0, 3, 5], [255, 7, 3]], np.uint8)
    assert episode_label(label, (5, 3), boundary_as_background=True).tolist() == [[0, 2, 1], [0, 0, 2]]


@pytest.mark.parametrize("boundary", ["background", "ignore"])
def test_test_labels_follow_the_boundary_key(toy, boundary):
    """Test queries: the label's 255 band is background (the release's scoring, default) or stays
    ignored; training labels keep it ignored either way."""
    ds = FSCSDataset(_cfg(toy, "test_num", "12", "fscs_boundary", boundary), "test")
    band = 0
    for i in range(len(ds)):
        q, _, ways, _ = ds.fscs_episodes[i]
        raw = read_label(ds.index.items[q][1])
        got = ds[i]["raw_mask"].numpy()
        band += int((raw == 255).sum())
        assert (got[raw == 255] == (0 if boundary == "background" else 255)).all()
        assert np.array_equal(got[raw != 255], episode_label(raw, ways)[raw != 255])
    assert band > 0  # the toy labels carry VOC's boundary band
    assert not FSCSDataset(_cfg(toy, "fscs_boundary", boundary), "train").boundary_as_background


def test_draw_on_a_hand_index():
    # 6 images; image 0 shows classes 1 and 2, the others one class each
    index = ClassIndex(items=[("i", "l")] * 6, present=[[1, 2], [1], [2], [3], [3], [1, 2]],
                       by_class={1: [0, 1, 5], 2: [0, 2, 5], 3: [3, 4]})
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        q, qc, ways, sup = draw_fscs_episode(index, [1, 2, 3], 0, 2, 2, rng)
        assert q == 0 and qc in (1, 2) and len(set(ways)) == 2
        for c, shots in zip(ways, sup):
            assert len(set(shots)) == 2 and 0 not in shots and set(shots) <= set(index.by_class[c])
        seen.add(tuple(c in index.present[q] for c in ways))
    assert seen == {(True, True), (True, False), (False, True)}  # 2 ways, 3 classes: one always present


def test_test_items_presence_and_labels(toy):
    ds = FSCSDataset(_cfg(toy, "way", "2", "shot", "2"), "test")
    assert len(ds) == 40 and ds.way == 2
    subsets = set()
    for i in range(len(ds)):
        item = ds[i]
        q, qc, ways, sup = ds.fscs_episodes[i]
        assert item["supports"].shape == (2, 2, 3, 33, 33) and item["support_masks"].shape == (2, 2, 33, 33)
        assert len(set(ways)) == 2 and set(ways) <= set(range(1, 6))
        assert item["support_classes"].tolist() == list(ways)
        raw = read_label(ds.index.items[q][1])
        tags = [bool((raw == c).any()) for c in ways]
        assert item["presence"].tolist() == tags
        expected = episode_label(raw, ways, boundary_as_background=True)  # the release's accounting (default)
        assert torch.equal(item["raw_mask"], torch.from_numpy(expected.astype(np.int64)))
        for n, present in enumerate(tags, 1):
            assert bool((item["raw_mask"] == n).any()) == present
        for c, shots, masks in zip(ways, sup, item["support_masks"]):
            assert all(p in ds.index.by_class[c] and p != q for p in shots)
            assert all((m == 1).any() for m in masks)
        subsets.add(tuple(tags))
    assert (False, False) in subsets and len(subsets) >= 3  # the empty subset occurs


def test_training_is_one_way(toy):
    ds = FSCSDataset(_cfg(toy, "way", "3"), "train")
    items = [ds[i] for i in range(20)]
    assert ds.way == 1 and all(it["supports"].shape[:2] == (1, 1) for it in items)
    assert {bool(it["presence"][0]) for it in items} == {True, False}
    for it in items:
        assert set(torch.unique(it["query_mask"]).tolist()) <= {0, 1, 255}
        assert bool((it["query_mask"] == 1).any()) == bool(it["presence"][0])


def test_fixed_test_episodes_identical_across_workers(toy):
    ds = FSCSDataset(_cfg(toy, "way", "2", "test_num", "8"), "test")
    runs = []
    for workers, batch in ((0, 1), (2, 3)):
        batches = list(DataLoader(ds, batch_size=batch, num_workers=workers, collate_fn=collate_fscs))
        runs.append({k: torch.cat([b[k] for b in batches]) for k in ("query", "supports", "support_masks",
                                                                        "presence", "support_classes")})
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert FSCSDataset(_cfg(toy, "way", "2", "test_num", "8"), "test").fscs_episodes == ds.fscs_episodes


def test_more_ways_than_classes_is_one_clear_error(toy):
    with pytest.raises(UserError, match=r"6-way episodes need 6 classes, but toy test has 5 .*set way to at most 5"):
        FSCSDataset(_cfg(toy), "test", way=6)
    with pytest.raises(UserError, match="way.*must be 1..5"):
        _cfg(toy, "way", "7")
