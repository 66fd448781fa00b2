"""Fold class lists pinned to DESIGN 3.2."""
import pytest

from util.splits import base_classes, class_name, novel_classes


def test_pascal_folds():
    assert novel_classes("pascal", 0) == [1, 2, 3, 4, 5]
    assert novel_classes("pascal", 3) == [16, 17, 18, 19, 20]
    assert base_classes("pascal", 1) == [1, 2, 3, 4, 5] + list(range(11, 21))


def test_coco_interleaved():
    assert novel_classes("coco", 0) == [1, 5, 9, 13, 17, 21, 25, 29, 33, 37,
                                        41, 45, 49, 53, 57, 61, 65, 69, 73, 77]
    assert novel_classes("coco", 3)[:3] == [4, 8, 12] and novel_classes("coco", 3)[-1] == 80


def test_coco_contiguous():
    assert novel_classes("coco", 2, "contiguous") == list(range(41, 61))


@pytest.mark.parametrize("dataset", ["pascal", "coco"])
def test_folds_partition_the_classes(dataset):
    for style in ("interleaved", "contiguous"):
        allnovel = sum((novel_classes(dataset, s, style) for s in range(4)), [])
        n = 20 if dataset == "pascal" else 80
        assert sorted(allnovel) == list(range(1, n + 1))
        assert set(base_classes(dataset, 0, style)).isdisjoint(novel_classes(dataset, 0, style))


def test_names():
    assert class_name("pascal", 1) == "aeroplane" and class_name("pascal", 20) == "tvmonitor"
    assert class_name("coco", 1) == "person" and class_name("coco", 80) == "toothbrush"
