"""SUIM -> class maps (7 classes, background waterbody 0) and lists/suim/test.txt.

A SUIM folder (TEST/ or train_val/) holds images/<id>.jpg and masks/<id>.bmp, RGB masks
whose colours code the classes (util/data/benchmarks/suim.py)."""
from __future__ import annotations

from pathlib import Path

from util.data.benchmarks.suim import COLOURS, NAMES
from util.prepare.common import missing_error, require_dir
from util.prepare.masks import LABELS, LabelJob, finish_target, link_source

PALETTE = (((0, 0, 0), 0),) + tuple((rgb, cls) for cls, rgb in enumerate(COLOURS, 1))


def prepare_suim(src: Path, out: Path, lists: Path, *, workers: int = 1,
                 skip_bad: bool = False) -> dict[str, int]:
    """Class maps and the test list of one SUIM folder."""
    require_dir(src / "images", "the SUIM images (images/ inside --src, e.g. SUIM/TEST)")
    require_dir(src / "masks", "the SUIM colour masks (masks/ inside --src)")
    prefix = link_source(src, out)
    jobs, images, missing = [], [], []
    for image in sorted((src / "images").glob("*.jpg")):
        mask = src / "masks" / f"{image.stem}.bmp"
        if not mask.is_file():
            missing.append(f"masks/{mask.name}")
            continue
        jobs.append(LabelJob(mask, out / LABELS / f"{image.stem}.png", palette=PALETTE))
        images.append(f"{prefix}images/{image.name}")
    if missing:
        raise missing_error("SUIM masks", missing, "download SUIM again (images/ and masks/ of one folder)")
    return finish_target("SUIM", NAMES, jobs, images, out, lists, workers, skip_bad)
