"""COCO-20i: COCO 2014 instances, 80 classes in sorted category-id order; two fold styles
(docs/evaluation.md, "COCO-20i folds")."""
from __future__ import annotations

from util.data.benchmarks import Benchmark, Protocol

NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)


def novel_classes(split: int, style: str = "interleaved") -> list[int]:
    """interleaved (PFENet's use_split_coco): 4k+i+1 for k < 20; contiguous: 20i+1 .. 20i+20."""
    if style == "contiguous":
        return list(range(20 * split + 1, 20 * split + 21))
    return [4 * k + split + 1 for k in range(20)]


BENCHMARK = Benchmark(
    name="coco", title="COCO-20i", class_names=NAMES, folds=novel_classes,
    prepare="python -m util.prepare coco --coco COCO2014 --out DIR",
    protocol=Protocol(episodes=4000, seeds=1, image_size=473), fold_styles=("interleaved", "contiguous"),
)
