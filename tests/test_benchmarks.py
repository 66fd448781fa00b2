"""Benchmark registry: fold class lists, names, lookup errors (docs/evaluation.md)."""
import pytest

from util.config import ConfigError, load_config
from util.data.benchmarks import BENCHMARKS, get_benchmark
from util.errors import UserError

PASCAL, COCO = get_benchmark("pascal"), get_benchmark("coco")


def test_pascal_folds():
    assert PASCAL.novel_classes(0) == [1, 2, 3, 4, 5]
    assert PASCAL.novel_classes(3) == [16, 17, 18, 19, 20]
    assert PASCAL.base_classes(1) == [1, 2, 3, 4, 5] + list(range(11, 21))


def test_coco_interleaved():
    assert COCO.novel_classes(0, "interleaved") == [1, 5, 9, 13, 17, 21, 25, 29, 33, 37,
                                                    41, 45, 49, 53, 57, 61, 65, 69, 73, 77]
    assert COCO.novel_classes(3, "interleaved")[:3] == [4, 8, 12] and COCO.novel_classes(3, "interleaved")[-1] == 80


def test_coco_contiguous():
    assert COCO.novel_classes(2, "contiguous") == list(range(41, 61))
    with pytest.raises(ValueError, match="interleaved, contiguous"):
        COCO.novel_classes(0, "diagonal")


@pytest.mark.parametrize("name", ["pascal", "coco", "toy"])
def test_folds_partition_the_classes(name):
    bench = get_benchmark(name)
    for style in bench.fold_styles or ("",):
        allnovel = sum((bench.novel_classes(s, style) for s in range(4)), [])
        assert sorted(allnovel) == list(range(1, bench.num_classes + 1))
        assert set(bench.base_classes(0, style)).isdisjoint(bench.novel_classes(0, style))


def test_names_and_counts():
    assert PASCAL.class_name(1) == "aeroplane" and PASCAL.class_name(20) == "tvmonitor"
    assert COCO.class_name(1) == "person" and COCO.class_name(80) == "toothbrush"
    assert (PASCAL.num_classes, COCO.num_classes, get_benchmark("toy").num_classes) == (20, 80, 20)
    assert BENCHMARKS.names() == ["chestxray", "coco", "deepglobe", "fss1000", "isic", "pascal", "suim", "toy",
                                 "toyshift"]


def test_unknown_benchmark_is_named():
    with pytest.raises(UserError, match=r"unknown benchmark 'voc'.*coco, deepglobe, fss1000, isic, pascal, suim, toy"):
        get_benchmark("voc")
    with pytest.raises(ConfigError, match=r"dataset.*'voc'.*coco, deepglobe, fss1000, isic, pascal, suim, toy"):
        load_config(None, ["dataset", "voc"])


def test_protocol_departures_are_named():
    import test as test_cli

    cfg = load_config("config/pascal/pascal_split0_resnet50.yaml")
    assert test_cli.note_protocol(cfg) == []
    assert test_cli.note_protocol(cfg.replace(test_num=5000)) == ["test_num 5000 (protocol 1000)"]
    assert test_cli.note_protocol(load_config("config/coco/coco_split0_resnet50.yaml")) == []
    assert test_cli.note_protocol(load_config("config/toy/toy_split0_vgg.yaml")) == []
