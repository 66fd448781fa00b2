"""SUIM (underwater imagery) as a cross-domain target: its colour-coded masks become seven
classes (background waterbody is the background), as "Remember the Difference: Cross-Domain
Few-Shot Semantic Segmentation via Meta-Memory Transfer" (CVPR 2022) tests COCO-20i and
PASCAL-5i models on it; the test protocol is chosen here (docs/cross_domain.md)."""
from __future__ import annotations

from util.data.benchmarks import Benchmark, Protocol

NAMES = ("human divers", "aquatic plants and sea-grass", "wrecks and ruins", "robots",
         "reefs and invertebrates", "fish and vertebrates", "sea-floor and rocks")
# RGB code of each class in the masks (class 0: background waterbody, black)
COLOURS = ((0, 0, 255), (0, 255, 0), (0, 255, 255), (255, 0, 0), (255, 0, 255), (255, 255, 0), (255, 255, 255))

BENCHMARK = Benchmark(
    name="suim", title="SUIM", class_names=NAMES, folds=None,
    prepare="python -m util.prepare suim --src SUIM/TEST --out data/suim",
    protocol=Protocol(episodes=1000, seeds=1, image_size=473, balanced=True),
)
