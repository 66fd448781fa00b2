"""One spelling per class across COCO and PASCAL, and the classes of a cross-domain test on a
benchmark with folds: every target class the source fold did not train on (docs/cross_domain.md)."""
from __future__ import annotations

from typing import Iterable

from util.errors import UserError

# PASCAL VOC class name -> the COCO name of the same class (the other 14 are spelled alike)
PASCAL_TO_COCO = {"aeroplane": "airplane", "diningtable": "dining table", "motorbike": "motorcycle",
                  "pottedplant": "potted plant", "sofa": "couch", "tvmonitor": "tv"}


def common_name(name: str) -> str:
    """One spelling per class over COCO and PASCAL (COCO's)."""
    return PASCAL_TO_COCO.get(name, name)


def unseen_classes(target, classes: Iterable[int], source, split: int, style: str) -> list[int]:
    """`classes` of `target` whose class the `source` benchmark did not train on in fold `split`."""
    seen = {common_name(source.class_name(c)) for c in source.base_classes(split, style)}
    return [c for c in classes if common_name(target.class_name(c)) not in seen]


def cross_domain_classes(target, source, split: int, style: str) -> list[int]:
    """Every class of `target` unseen by `source` fold `split`; a user error when none is left."""
    kept = unseen_classes(target, range(1, target.num_classes + 1), source, split, style)
    if not kept:
        raise UserError(f"every class of {target.name} was a training class of {source.name} fold {split}: "
                        "no class is left to test; pick another fold or target")
    return kept
