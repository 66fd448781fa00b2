"""FSS-1000 -> class maps of its fixed 240-class test split and lists/fss1000/test.txt.

The download (fewshot_data/) holds one folder per class with 10 images `<n>.jpg` and their
binary masks `<n>.png`. Only the test classes are prepared: their ids (1..240, sorted by
name) fit an 8-bit class map; the 520/240 training/validation classes are used by no run here.
"""
from __future__ import annotations

from pathlib import Path

from util.data.benchmarks.fss1000 import NAMES
from util.prepare.common import missing_error, require_dir
from util.prepare.masks import LABELS, LabelJob, finish_target, link_source


def prepare_fss1000(src: Path, out: Path, lists: Path, *, binarise: bool = False, workers: int = 1,
                    skip_bad: bool = False) -> dict[str, int]:
    """Class maps and the test list of FSS-1000's test classes."""
    require_dir(src, "the FSS-1000 folder (fewshot_data/) holding one folder per class")
    missing = [name for name in NAMES if not (src / name).is_dir()]
    if missing:
        raise missing_error("FSS-1000 test-class folders", missing,
                            f"pass the folder holding the 1000 class folders as --src (looked in {src})")
    prefix = link_source(src, out)
    jobs, images = [], []
    for cls, name in enumerate(NAMES, 1):
        for image in sorted((src / name).glob("*.jpg")):
            jobs.append(LabelJob(image.with_suffix(".png"), out / LABELS / name / f"{image.stem}.png", cls, binarise))
            images.append(f"{prefix}{name}/{image.name}")
        (out / LABELS / name).mkdir(parents=True, exist_ok=True)
    return finish_target("FSS-1000", NAMES, jobs, images, out, lists, workers, skip_bad)
