"""Class index: PFENet rules, cache hit/miss/invalidation, label validation, list errors."""
import glob
import json
import os

import cv2
import numpy as np
import pytest
from PIL import Image

import util.data.index as index_mod
from util.errors import UserError
from util.data.index import build_class_index, parse_list, read_label


def _label(pixels: dict[int, int], side: int = 20) -> np.ndarray:
    """A side x side label with `pixels[c]` pixels of class c (row-major fill)."""
    flat = np.zeros(side * side, np.uint8)
    pos = 0
    for c, n in pixels.items():
        flat[pos:pos + n] = c
        pos += n
    return flat.reshape(side, side)


def _tree(root, labels, name="train.txt"):
    os.makedirs(root / "SegmentationClassAug", exist_ok=True)
    lines = []
    for i, lbl in enumerate(labels):
        cv2.imwrite(str(root / "SegmentationClassAug" / f"{i}.png"), lbl)
        lines.append(f"JPEGImages/{i}.jpg SegmentationClassAug/{i}.png\n")
    (root / name).write_text("".join(lines))
    return str(root / name), str(root)


def _build(lp, root, classes=(1, 2), min_pixels=50, **kw):
    return build_class_index(lp, root, list(classes), num_classes=20, min_pixels=min_pixels, **kw)


def test_pfenet_rules(tmp_path):
    labels = [_label({1: 100, 2: 10}), _label({2: 60, 255: 30}), _label({3: 300}), _label({1: 49, 3: 80})]
    lp, root = _tree(tmp_path, labels)
    idx = _build(lp, root)
    assert [os.path.basename(l) for _, l in idx.items] == ["0.png", "1.png"]  # 2: no mode class; 3: too small
    assert idx.present == [[1, 2], [2]]  # any size, mode classes only
    assert idx.by_class == {1: [0], 2: [1]}
    assert _build(lp, root, min_pixels=5).by_class == {1: [0, 2], 2: [0, 1]}  # positions in kept items


def test_cache_hit_miss_and_invalidation(tmp_path, monkeypatch):
    lp, root = _tree(tmp_path, [_label({1: 100}), _label({2: 100})])
    first = _build(lp, root)
    assert len(glob.glob(lp + ".cache-*.json")) == 1

    def no_scan(*a, **k):
        raise AssertionError("labels were re-read on a cache hit")
    with monkeypatch.context() as m:
        m.setattr(index_mod, "scan_labels", no_scan)
        assert _build(lp, root) == first
        assert _build(lp, root, min_pixels=101).by_class == {1: [], 2: []}  # threshold applied on load
        assert _build(lp, root, classes=(2,)).by_class == {2: [0]}
    lbl_dir = os.path.join(root, "SegmentationClassAug")
    cv2.imwrite(os.path.join(lbl_dir, "new.png"), _label({1: 100}))
    os.replace(os.path.join(lbl_dir, "new.png"), os.path.join(lbl_dir, "1.png"))  # as util.prepare writes
    os.utime(lbl_dir, ns=(1, 1))  # a coarse file-system clock cannot hide the change
    assert _build(lp, root).by_class == {1: [0, 1], 2: []}
    cv2.imwrite(os.path.join(root, "SegmentationClassAug", "2.png"), _label({2: 100}))
    with open(lp, "a") as f:  # list content changes -> the old cache is never used
        f.write("JPEGImages/2.jpg SegmentationClassAug/2.png\n")
    assert _build(lp, root).by_class == {1: [0, 1], 2: [2]}
    assert len(glob.glob(lp + ".cache-*.json")) == 1  # superseded caches are removed


def test_duplicate_lines_are_used_once(tmp_path):
    lp, root = _tree(tmp_path, [_label({1: 100}), _label({1: 100})])
    with open(lp, "a") as f:
        f.write("JPEGImages/0.jpg SegmentationClassAug/0.png\n")
    assert len(_build(lp, root).items) == 2


def test_data_root_is_part_of_the_key(tmp_path):
    lp, root = _tree(tmp_path / "a", [_label({1: 100})])
    _tree(tmp_path / "b", [_label({2: 100})])
    assert _build(lp, root).by_class == {1: [0], 2: []}
    assert _build(lp, str(tmp_path / "b")).by_class == {1: [], 2: [0]}


def test_parallel_scan_matches_serial(tmp_path):
    rng = np.random.default_rng(0)
    labels = [_label({int(rng.integers(1, 4)): int(rng.integers(1, 200))}) for _ in range(70)]
    lp, root = _tree(tmp_path, labels)
    serial = _build(lp, root, workers=1, use_cache=False)
    assert _build(lp, root, workers=2, use_cache=False) == serial


def test_bad_label_values(tmp_path):
    lp, root = _tree(tmp_path, [_label({1: 100}), _label({42: 100})])
    with pytest.raises(UserError, match=r"1\.png.*42"):
        _build(lp, root)


@pytest.mark.parametrize("content", [b"not a png at all", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0", b""])
def test_corrupt_label(tmp_path, content):
    lp, root = _tree(tmp_path, [_label({1: 100})])
    (tmp_path / "SegmentationClassAug" / "0.png").write_bytes(content)
    with pytest.raises(UserError, match="0.png"):
        _build(lp, root)


def test_colour_rgb_refused_grey_rgb_and_palette_decoded(tmp_path):
    rgb = tmp_path / "rgb.png"
    colours = np.zeros((4, 4, 3), np.uint8)
    colours[1, 2] = (0, 0, 128)  # VOC's colour of class 1
    cv2.imwrite(str(rgb), colours)
    with pytest.raises(UserError, match="rgb.png.*RGB PNG with colours"):
        read_label(str(rgb))
    grey = _label({3: 7, 255: 2}, side=5)
    cv2.imwrite(str(rgb), np.repeat(grey[..., None], 3, axis=2))  # a grey map saved as RGB
    assert np.array_equal(read_label(str(rgb)), grey)
    cv2.imwrite(str(tmp_path / "deep.png"), np.zeros((4, 4), np.uint16))
    with pytest.raises(UserError, match="deep.png.*16-bit"):
        read_label(str(tmp_path / "deep.png"))
    pal = Image.fromarray(_label({15: 30, 255: 5}), mode="P")
    pal.putpalette([v for i in range(256) for v in (i * 7 % 256, i * 3 % 256, 255 - i)])
    pal.save(tmp_path / "pal.png")
    assert np.array_equal(read_label(str(tmp_path / "pal.png")), _label({15: 30, 255: 5}))


def test_list_errors(tmp_path):
    lp = tmp_path / "l.txt"
    with pytest.raises(UserError, match="data_root.*nowhere"):
        parse_list(str(lp), str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="l.txt.*not found"):
        parse_list(str(lp), str(tmp_path))
    lp.write_text("\n# comment\n")
    with pytest.raises(UserError, match="no entries"):
        parse_list(str(lp), str(tmp_path))
    lp.write_text("a.jpg a.png\nb.jpg\n")
    with pytest.raises(UserError, match=r"l\.txt:2: .*2 fields"):
        parse_list(str(lp), str(tmp_path))
    with pytest.raises(UserError, match="missing.png"):
        read_label(str(tmp_path / "missing.png"))


def test_label_replaced_with_same_size_and_stamps_is_reread_alone(tmp_path, monkeypatch):
    lp, root = _tree(tmp_path, [_label({1: 100}), _label({2: 100}), _label({1: 60})])
    lbl_dir = tmp_path / "SegmentationClassAug"
    for i in range(3):  # uncompressed: equal shapes give equal file sizes
        cv2.imwrite(str(lbl_dir / f"{i}.png"), cv2.imread(str(lbl_dir / f"{i}.png"), 0), [cv2.IMWRITE_PNG_COMPRESSION, 0])
    assert _build(lp, root).by_class == {1: [0, 2], 2: [1]}
    old, folder = os.stat(lbl_dir / "1.png"), os.stat(lbl_dir)
    cv2.imwrite(str(lbl_dir / "new.png"), _label({1: 100}), [cv2.IMWRITE_PNG_COMPRESSION, 0])
    os.utime(lbl_dir / "new.png", ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(lbl_dir / "new.png", lbl_dir / "1.png")
    os.utime(lbl_dir, ns=(folder.st_atime_ns, folder.st_mtime_ns))
    assert os.stat(lbl_dir / "1.png").st_size == old.st_size
    scanned = []
    real_scan = index_mod.scan_labels
    monkeypatch.setattr(index_mod, "scan_labels", lambda labels, *a: scanned.extend(labels) or real_scan(labels, *a))
    assert _build(lp, root).by_class == {1: [0, 1, 2], 2: []}
    assert [os.path.basename(p) for p in scanned] == ["1.png"]
    scanned.clear()
    assert _build(lp, root).by_class == {1: [0, 1, 2], 2: []}  # and the refreshed cache is a hit
    assert scanned == []


@pytest.mark.parametrize("content", [b'{"version": 3, "counts": [[1, 5]], "stats": [0, 0, 0, 0]}',
                                     b'{"version": 3, "counts": [[1, 5], [2]], "stats": []}',
                                     b'{"version": 3, "counts": [[1, 5.5], [2, 1]], "stats": []}',
                                     b'{"version": 3, "counts": [[0, 5], [2, 1]], "stats": []}',
                                     b'{"version": 3, "counts": [[1, -5], [2, 1]], "stats": []}',
                                     b'{"version": 3, "counts": [[1, 5], "ab"], "stats": []}',
                                     b'{"counts": [[1, 5], [2, 5]]}', b'null', b'{"vers'])
def test_damaged_cache_is_never_trusted(tmp_path, content):
    lp, root = _tree(tmp_path, [_label({1: 100}), _label({2: 100})])
    path = index_mod.cache_path(lp, root, 20)
    with open(path, "wb") as f:
        f.write(content)
    assert _build(lp, root).by_class == {1: [0], 2: [1]}
    with open(path) as f:
        assert len(json.load(f)["counts"]) == 2
