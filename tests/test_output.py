"""What a run shows the user: log lines never glued to progress bars, titled panels, the
mean alone for one seed, and a verdict when a model does not beat the trivial predictors."""
import io
import logging
import sys

import numpy as np
import torch
from tqdm import tqdm

import test as test_cli
from util.engine.loop import below_trivial
from util.engine.runtime import setup_logging
from util.evaluation.vis import TITLE_HEIGHT, TITLES, panel, titled


def test_log_line_never_shares_a_line_with_a_bar(monkeypatch):
    screen = io.StringIO()  # a terminal: stdout and stderr end up on the same screen
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setattr(sys, "stderr", screen)
    setup_logging(None)
    try:
        with tqdm(range(3), file=sys.stderr, desc="epoch 1/1", mininterval=0) as bar:
            for i in bar:
                bar.set_postfix(loss=f"{i:.3f}")
                logging.getLogger("train").info("step %d", i)
    finally:
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)
    shown = [line.split("\r")[-1] for line in screen.getvalue().split("\n") if "step" in line]
    assert len(shown) == 3
    assert all(line[:2] == "20" and "INFO step" in line and "epoch" not in line for line in shown), shown


def test_titled_tile_has_a_written_band():
    tile = np.full((40, 30, 3), 128, np.uint8)
    out = titled(tile, "query + GT")  # wider than the tile: shrunk, still drawn
    assert out.shape == (40 + TITLE_HEIGHT, 30, 3)
    assert (out[TITLE_HEIGHT:] == tile).all()
    assert out[:TITLE_HEIGHT].max() > 150 and out[:TITLE_HEIGHT].min() == 20


def test_panel_is_six_titled_tiles():
    h, w = 24, 20
    maps = {"bg": torch.rand(1, 1, h, w), "do": torch.rand(1, 1, h, w),
            "ini": torch.rand(1, 2, h, w), "logits": torch.rand(1, 2, h, w)}
    img = panel(torch.zeros(1, 3, h, w), torch.zeros(1, 1, 3, h, w), torch.ones(1, 1, h, w), None, maps)
    assert img.shape == (h + TITLE_HEIGHT, 6 * w, 3) and len(TITLES) == 6
    bands = [img[:TITLE_HEIGHT, i * w:(i + 1) * w] for i in range(6)]
    assert all(b.max() > 100 for b in bands)  # every tile has its title


def test_below_trivial():
    base = {"all_foreground": {"miou": 11.95}, "prior_only": {"miou": 13.99}}
    msg = below_trivial(0.35, base)
    assert msg.startswith("mIoU 0.35 is not above the trivial predictor prior_only (13.99)")
    assert below_trivial(13.99, base) is not None  # a tie has learned nothing either
    assert below_trivial(31.14, base) is None
    assert below_trivial(None, base) is None and below_trivial(5.0, {}) is None
    assert below_trivial(5.0, {"prior_only": {"miou": None}}) is None


def test_one_seed_has_no_spread():
    one = test_cli.summarise([{"miou": 31.5, "fbiou": 55.0, "precision": None}])
    assert one["miou"] == {"mean": 31.5, "std": None} and test_cli.fmt_spread(one["miou"]) == "31.50"
    two = test_cli.summarise([{"miou": 30.0, "fbiou": 55.0, "precision": 1.0},
                              {"miou": 32.0, "fbiou": 57.0, "precision": 1.0}])
    assert test_cli.fmt_spread(two["miou"]) == "31.00 ± 1.00"
