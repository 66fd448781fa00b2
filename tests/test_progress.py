"""A long evaluation loop says so in the log, with an estimate, after its first few batches;
a short one says nothing. A fake clock decides how long a batch takes, so the check does not
depend on the machine's speed."""
import logging

import torch

from util.engine import loop, progress
from util.evaluation.evaluator import Evaluator
from util.engine.precision import Precision


def _clock(seconds_per_call: float):
    t = [0.0]

    def now() -> float:
        t[0] += seconds_per_call
        return t[0]
    return now


def test_a_long_loop_logs_its_estimate_once(caplog):
    batches = list(range(20))
    with caplog.at_level(logging.INFO, logger="util.engine.progress"):
        seen = list(progress.progress(batches, "seed 1/1", clock=_clock(10.0)))
    assert seen == batches                                     # every batch, in order
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    # the clock advanced 10 s between the start and the third batch: 10 s / 3 batches x 20 batches
    assert lines[0].startswith("seed 1/1: about 67 s for 20 episodes at 3.3 s per batch (from the first 3 of 20")


def test_a_short_loop_says_nothing(caplog):
    with caplog.at_level(logging.INFO, logger="util.engine.progress"):
        assert list(progress.progress(range(20), "eval", clock=_clock(0.1))) == list(range(20))
        assert list(progress.progress(range(3), "eval", clock=_clock(1000.0))) == [0, 1, 2]  # done before any estimate
    assert not caplog.records


def test_estimate_in_minutes_names_the_episodes_not_the_batches():
    line = progress.estimate_line("cross-domain", elapsed=30.0, done=3, total=150, episodes=300)
    assert line.startswith("cross-domain: about 25 min for 300 episodes at 10.0 s per batch")
    assert progress.estimate_line("eval", elapsed=1.0, done=3, total=150, episodes=300) is None


class _Net(torch.nn.Module):
    def forward(self, query, supports, support_masks):
        return torch.zeros(query.shape[0], 2, *query.shape[-2:])


def test_the_evaluation_loop_logs_the_estimate(caplog, monkeypatch):
    """evaluate() (train.py's validation and test.py) goes through the same progress loop."""
    monkeypatch.setattr(progress, "LONG_RUN_S", -1.0)  # any loop counts as long: the line must appear
    batch = {"query": torch.rand(1, 3, 8, 8), "supports": torch.rand(1, 1, 3, 8, 8),
             "support_masks": torch.ones(1, 1, 8, 8), "query_mask": torch.ones(1, 8, 8, dtype=torch.long),
             "raw_mask": torch.ones(1, 8, 8, dtype=torch.long),
             "class_idx": torch.zeros(1, dtype=torch.long)}
    with caplog.at_level(logging.INFO, logger="util.engine.progress"):
        loop.evaluate(_Net(), [batch] * 5, Evaluator([1], "pascal", ori_resize=False), Precision(torch.device("cpu")),
                      desc="seed 1/1")
    assert any(r.getMessage().startswith("seed 1/1: about ") and "for 5 episodes" in r.getMessage()
               for r in caplog.records)
