"""The second toy domain: the toy's classes and folds in an underwater look, a cross-domain
target for models trained on the toy (docs/cross_domain.md)."""
from __future__ import annotations

from util.data.benchmarks import Benchmark, Protocol
from util.data.benchmarks.pascal import novel_classes
from util.data.benchmarks.toy import NAMES
from util.prepare.toy_shift import ensure_toy_shift

BENCHMARK = Benchmark(
    name="toyshift", title="toy (second domain)", class_names=NAMES, folds=novel_classes,
    prepare="python -m util.prepare.toy_shift --out data/toyshift --lists lists/toyshift (also done on first use)",
    protocol=Protocol(episodes=300, seeds=1, image_size=97, min_class_pixels=128), ensure_data=ensure_toy_shift,
)
