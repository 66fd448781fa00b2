"""Chest X-ray lung segmentation as a cross-domain target: one class, 600 episodes, as PATNet
("Cross-Domain Few-Shot Semantic Segmentation", ECCV 2022) tests it (docs/cross_domain.md)."""
from __future__ import annotations

from util.data.benchmarks import Benchmark, Protocol

NAMES = ("lungs",)

BENCHMARK = Benchmark(
    name="chestxray", title="Chest X-ray", class_names=NAMES, folds=None,
    prepare="python -m util.prepare chestxray --src chest-xray-masks-and-labels/data/Lung\\ Segmentation "
            "--out data/chestxray",
    protocol=Protocol(episodes=600, seeds=1, image_size=401, balanced=True, min_class_pixels=0),
)
