"""Deepglobe land cover as a cross-domain target: satellite tiles, six land-cover classes, 600
class-balanced episodes, as PATNet ("Cross-Domain Few-Shot Semantic Segmentation", ECCV 2022)
tests it (docs/cross_domain.md)."""
from __future__ import annotations

from util.data.benchmarks import Benchmark, Protocol

NAMES = ("agriculture land", "urban land", "rangeland", "forest land", "water", "barren land")
# RGB code of each class in the masks, in PATNet's class order (black = unknown, background here)
COLOURS = ((255, 255, 0), (0, 255, 255), (255, 0, 255), (0, 255, 0), (0, 0, 255), (255, 255, 255))

BENCHMARK = Benchmark(
    name="deepglobe", title="Deepglobe", class_names=NAMES, folds=None,
    prepare="python -m util.prepare deepglobe --src deepglobe/train --out data/deepglobe",
    protocol=Protocol(episodes=600, seeds=1, image_size=401, balanced=True, min_class_pixels=0),
)
