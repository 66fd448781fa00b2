"""The toy benchmark: generated on first use, PASCAL layout and folds, 20 classes (docs/data.md)."""
from __future__ import annotations

from util.data.benchmarks import Benchmark, Protocol
from util.data.benchmarks.pascal import novel_classes
from util.prepare.toy import NUM_CLASSES, ensure_toy

NAMES = tuple(f"toy{i:02d}" for i in range(1, NUM_CLASSES + 1))

BENCHMARK = Benchmark(
    name="toy", title="toy", class_names=NAMES, folds=novel_classes,
    prepare="python -m util.prepare toy --out data/toy --lists lists/toy (also done on first use)",
    protocol=Protocol(episodes=300, seeds=1, image_size=97, min_class_pixels=128), ensure_data=ensure_toy,
)
