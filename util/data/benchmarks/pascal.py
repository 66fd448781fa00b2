"""PASCAL-5i: VOC2012 + SBD, 20 classes, fold i holds out classes 5i+1..5i+5 (docs/evaluation.md)."""
from __future__ import annotations

from util.data.benchmarks import Benchmark, Protocol

NAMES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)


def novel_classes(split: int, style: str = "") -> list[int]:
    """Fold i: classes 5i+1 .. 5i+5."""
    return list(range(5 * split + 1, 5 * split + 6))


BENCHMARK = Benchmark(
    name="pascal", title="PASCAL-5i", class_names=NAMES, folds=novel_classes,
    prepare="python -m util.prepare pascal --voc VOCdevkit/VOC2012 --sbd benchmark_RELEASE/dataset --out DIR",
    protocol=Protocol(episodes=1000, seeds=1, image_size=473),
)
