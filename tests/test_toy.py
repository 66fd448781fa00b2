"""Toy benchmark: byte-identical output per seed, class coverage, first-use generation."""
import functools
import json
import os

import numpy as np
import pytest

import util.prepare.toy as toy
from util.config import load_config
from util.prepare.common import write_generated
from util.errors import UserError
from util.data.index import label_counts, read_label


def _files(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


def test_deterministic_for_any_worker_count(tmp_path):
    kw = dict(n_train=12, n_val=4, seed=3, min_side=40, max_side=56)
    toy.generate_toy(str(tmp_path / "a"), str(tmp_path / "la"), workers=1, **kw)
    toy.generate_toy(str(tmp_path / "b"), str(tmp_path / "lb"), workers=2, **kw)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(a) == 2 * 16 + 3 and a == b
    assert _files(tmp_path / "la") == _files(tmp_path / "lb")
    toy.generate_toy(str(tmp_path / "c"), None, workers=1, **{**kw, "seed": 4})
    assert _files(tmp_path / "c") != a


def test_classes_sizes_and_border_band(tmp_path):
    toy.generate_toy(str(tmp_path / "d"), str(tmp_path / "l"), n_train=100, n_val=10, min_side=64, max_side=96)
    pairs, counts = label_counts(str(tmp_path / "l/train.txt"), str(tmp_path / "d"), 20)
    assert len(pairs) == 100
    big = {c for cnt in counts for c, n in cnt.items() if n >= 128}
    assert big == set(range(1, 21))  # every class appears with a sizeable object
    assert all(1 <= len(cnt) <= 3 for cnt in counts)
    shapes = set()
    for _, lbl in pairs[:20]:
        label = read_label(lbl)
        shapes.add(label.shape)
        assert 64 <= min(label.shape) and max(label.shape) <= 96
        assert (label == 255).any() and set(np.unique(label)) <= set(range(21)) | {255}
    assert len(shapes) > 5


def small_toy_config(tmp_path, monkeypatch):
    """A toy config under tmp_path whose generator writes 8 + 4 tiny images."""
    small = functools.partial(toy.generate_toy, n_train=8, n_val=4, min_side=40, max_side=48, workers=1)
    monkeypatch.setattr(toy, "generate_toy", small)
    return load_config(None, ["dataset", "toy", "data_root", str(tmp_path / "data"),
                              "train_list", str(tmp_path / "lists/train.txt"), "val_list", str(tmp_path / "lists/v.txt")])


def test_ensure_toy_generates_on_first_use(tmp_path, monkeypatch):
    cfg = small_toy_config(tmp_path, monkeypatch)
    toy.ensure_toy(cfg)
    assert (tmp_path / "data" / toy.MARKER).is_file()
    assert (tmp_path / "lists/v.txt").read_text() == (tmp_path / "data/val.txt").read_text()
    assert len((tmp_path / "lists/train.txt").read_text().splitlines()) == 8
    os.remove(tmp_path / "lists/v.txt")
    monkeypatch.setattr(toy, "generate_toy", None)  # lists restored without regenerating
    toy.ensure_toy(cfg)
    assert (tmp_path / "lists/v.txt").is_file()


def test_refuses_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    with pytest.raises(UserError, match="mine.*not a toy dataset"):
        toy.generate_toy(str(tmp_path / "mine"), None, n_train=2, n_val=2)


def test_ensure_toy_regenerates_an_older_generators_tree(tmp_path, monkeypatch):
    cfg = small_toy_config(tmp_path, monkeypatch)
    toy.ensure_toy(cfg)
    marker = tmp_path / "data" / toy.MARKER
    old = json.loads(marker.read_text())
    marker.write_text(json.dumps({**old, "version": toy.VERSION - 1}))
    write_generated(tmp_path / "lists/v.txt", "stale\n")  # the older generator's list
    toy.ensure_toy(cfg)
    assert json.loads(marker.read_text())["version"] == toy.VERSION
    assert (tmp_path / "lists/v.txt").read_text() == (tmp_path / "data/val.txt").read_text()


def test_object_counts_leave_distractors_in_most_queries(tmp_path):
    """A query is drawn per class an image holds: most queries must still show another class."""
    counts = [len(set(np.unique(toy.render(0, 0, i, 64, 80)[1])) - {0, 255}) for i in range(300)]
    per_query = [n for n in counts for _ in range(n)]
    with_distractors = sum(n > 1 for n in per_query) / len(per_query)
    assert 0.6 < with_distractors < 0.8 and min(counts) == 1 and max(counts) == 3


def test_rerun_with_the_same_options_rewrites_nothing(tmp_path):
    from util.prepare.toy import generate_toy
    out, lists = tmp_path / "toy", tmp_path / "lists"
    generate_toy(str(out), str(lists), n_train=4, n_val=2, workers=1)
    files = sorted(p for p in [*out.rglob("*"), *lists.rglob("*")] if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in files}
    generate_toy(str(out), str(lists), n_train=4, n_val=2, workers=1)
    assert {p: p.stat().st_mtime_ns for p in files} == before
    generate_toy(str(out), str(lists), n_train=5, n_val=2, workers=1)  # other options: a new tree
    assert len((out / "train.txt").read_text().splitlines()) == 5
