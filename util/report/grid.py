"""The qualitative grid of the results page (as the NTRENet paper's Fig. 5): for each test
episode, its support (mask tinted), its query with the ground truth, and every run's prediction
side by side.

`test.py ... vis N` saves the first N episodes' panels beside each results file
(`<results stem>_vis/episode0000.png`, util/evaluation/vis.py: six titled tiles in a row); the
grid cuts the support, query + GT and final-prediction tiles out of them. test.py's episodes are
fixed by the test seed, so runs tested with the same seed, benchmark, fold and shot see the same
episodes; a grid row is one episode, recognised by the pixels of its support and query tiles (so
runs tested with another seed or image size never share a row by mistake).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from util.evaluation.vis import TITLE_HEIGHT, TITLES

log = logging.getLogger(__name__)
SUPPORT, QUERY, PREDICTION = TITLES.index("support"), TITLES.index("query + GT"), TITLES.index("final")


@dataclass
class Episode:
    """One grid row: the episode's support and query tiles and each run's prediction (RGB arrays)."""

    support: np.ndarray
    query: np.ndarray
    predictions: dict[str, np.ndarray] = field(default_factory=dict)


def tiles(path: Path) -> list[np.ndarray] | None:
    """The titled tiles of one saved panel without their title band (RGB), None when the file is not
    a panel of util/evaluation/vis.py's layout."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.shape[1] % len(TITLES) or img.shape[0] <= TITLE_HEIGHT:
        log.warning("%s is not a test.py vis panel; left out of the grid", path)
        return None
    width = img.shape[1] // len(TITLES)
    body = img[TITLE_HEIGHT:, :, ::-1]
    return [np.ascontiguousarray(body[:, k * width:(k + 1) * width]) for k in range(len(TITLES))]


def _identity(support: np.ndarray, query: np.ndarray) -> str:
    return hashlib.sha1(support.tobytes() + query.tobytes() + str(support.shape + query.shape).encode()).hexdigest()


def build_grid(runs: dict[str, Path]) -> list[Episode]:
    """Rows of the grid from run name -> its `_vis` folder, in the order the episodes were tested;
    an episode only some runs saw has no prediction for the others."""
    rows: dict[str, Episode] = {}
    for name, folder in runs.items():
        for path in sorted(folder.glob("episode*.png")):
            if (cut := tiles(path)) is None:
                continue
            key = _identity(cut[SUPPORT], cut[QUERY])
            rows.setdefault(key, Episode(cut[SUPPORT], cut[QUERY])).predictions[name] = cut[PREDICTION]
    return list(rows.values())


def png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    return buf.tobytes() if ok else b""
