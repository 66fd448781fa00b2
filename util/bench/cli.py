"""The `python -m util.bench` command lines, free of torch: `--help` and an argument mistake are
answered at once, and the measurements (speed.py, compare.py) load torch only once they run."""
from __future__ import annotations

import argparse

from util.engine.cliargs import int_in

SPEED = """Speed benchmark on synthetic episodes: one JSON line a user can compare across machines.

    python -m util.bench --config config/toy/toy_split0_resnet50.yaml [key value ...]

Reports the median training-step time, evaluation episodes per second (batch_size_val),
peak RSS, FLOPs of one training step and of one evaluation batch, this machine's measured
matmul GFLOP/s in the run's precision (fp32, or bf16/fp16 with `amp`) and the resulting
efficiency. `amp` and `channels_last` are config keys like any other. No dataset is read:
inputs are random tensors of the config's sizes.
"""

COMPARE = """This project against the released NTRENet in one process, interleaved (docs/speed.md).

    python -m util.bench compare --reference DIR [--config FILE] [--rounds 7] [key value ...]

DIR is a checkout of the released code; it runs with the few in-memory edits listed in
util/bench/release.py (printed in the output). Both models get the same weights (ours
converted to the release's names), the same random episode and the same thread count; their
training steps and evaluation batches alternate (A B A B ...) so a change in the machine's
load hits both alike. The JSON line holds medians, ratios (release time / ours: above 1 is
faster), the eval logits' max |difference|, FLOPs (ours per module, forward and backward),
the measured fp32 matmul rate, the load average before and after, and the CPU's features.
Without --reference only this project's variants are measured. Absolute times are only
comparable within one run: compare ratios.
"""

DEFAULT_CONFIG = "config/pascal/pascal_split0_resnet50.yaml"


def speed_parser() -> argparse.ArgumentParser:
    """`python -m util.bench --config FILE [--steps N] [--episodes N] [--warmup N] [key value ...]`."""
    p = argparse.ArgumentParser(prog="python -m util.bench", description=SPEED,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--steps", type=int_in(1, 100_000), default=5, help="timed training steps after warm-up")
    p.add_argument("--episodes", type=int_in(1, 100_000), default=10, help="timed evaluation batches after warm-up")
    p.add_argument("--warmup", type=int_in(0, 10_000), default=2)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as `key value` pairs")
    return p


def compare_parser() -> argparse.ArgumentParser:
    """`python -m util.bench compare [--reference DIR] [...]`."""
    p = argparse.ArgumentParser(prog="python -m util.bench compare", description=COMPARE,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", help="checkout of the released NTRENet code (omit: this project only)")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--rounds", type=int_in(1, 1000), default=7, help="timed rounds (each runs every variant once)")
    p.add_argument("--warmup", type=int_in(0, 1000), default=1)
    p.add_argument("--variant", action="append", default=[], metavar="'NAME: key=value ...'",
                   help="also time this project with these overrides (repeatable), e.g. "
                        "--variant 'fast: cap_bins=true prior_foreground_only=true'")
    p.add_argument("opts", nargs=argparse.REMAINDER,
                   help="config overrides as `key value` pairs (default: 241 x 241, batch 2, 1-shot, cpu)")
    p.add_argument("--memory", action="store_true",
                   help="also report the peak RSS of ours and of the release, each in a child process")
    p.add_argument("--side", choices=("ours", "release"), help=argparse.SUPPRESS)
    return p
