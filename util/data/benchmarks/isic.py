"""ISIC 2018 task 1 (dermoscopic lesions) as a cross-domain target: three diagnosis classes,
600 class-balanced episodes, as PATNet ("Cross-Domain Few-Shot Semantic Segmentation",
ECCV 2022) tests it (docs/cross_domain.md)."""
from __future__ import annotations

from util.data.benchmarks import Benchmark, Protocol

NAMES = ("melanoma", "nevus", "seborrheic_keratosis")

BENCHMARK = Benchmark(
    name="isic", title="ISIC2018", class_names=NAMES, folds=None,
    prepare="python -m util.prepare isic --src ISIC2018 --classes class_id.csv --out data/isic",
    protocol=Protocol(episodes=600, seeds=1, image_size=401, balanced=True, min_class_pixels=0),
)
