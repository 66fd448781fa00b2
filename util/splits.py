"""Fold definitions of PASCAL-5i and COCO-20i (class ids are 1-based)."""
from __future__ import annotations

NUM_CLASSES = {"pascal": 20, "toy": 20, "coco": 80}

PASCAL_NAMES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
COCO_NAMES = (
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
TOY_NAMES = tuple(f"toy{i:02d}" for i in range(1, 21))


def novel_classes(dataset: str, split: int, coco_fold_style: str = "interleaved") -> list[int]:
    """Classes held out in fold `split` (PASCAL: 5i+1..5i+5; COCO: DESIGN 3.2)."""
    if dataset not in NUM_CLASSES:
        raise ValueError(f"unknown dataset '{dataset}': use one of {', '.join(NUM_CLASSES)}")
    if split not in range(4):
        raise ValueError(f"split must be 0..3, got {split}")
    if dataset in ("pascal", "toy"):
        return list(range(5 * split + 1, 5 * split + 6))
    if coco_fold_style == "interleaved":
        return [4 * k + split + 1 for k in range(20)]
    if coco_fold_style == "contiguous":
        return list(range(20 * split + 1, 20 * split + 21))
    raise ValueError(f"coco_fold_style must be interleaved or contiguous, got '{coco_fold_style}'")


def base_classes(dataset: str, split: int, coco_fold_style: str = "interleaved") -> list[int]:
    """Training classes of fold `split`: all classes but the novel ones."""
    novel = set(novel_classes(dataset, split, coco_fold_style))
    return [c for c in range(1, NUM_CLASSES[dataset] + 1) if c not in novel]


def class_name(dataset: str, cls: int) -> str:
    """Real name of a 1-based class id."""
    names = {"pascal": PASCAL_NAMES, "coco": COCO_NAMES, "toy": TOY_NAMES}[dataset]
    return names[cls - 1]


def fold_classes(cfg, mode: str) -> list[int]:
    """Class list of a mode: 'train' -> base classes, 'val'/'test' -> novel classes."""
    fn = base_classes if mode == "train" else novel_classes
    return fn(cfg.dataset, cfg.split, cfg.coco_fold_style)
