"""Numeric command-line options with their range: a value out of range (`--steps 0`,
`--workers -1`, `--labels 10**12`) is argparse's one `error:` line with exit status 2, before
any work, instead of a traceback (or a fork bomb) deep in the tool."""
from __future__ import annotations

import argparse
from typing import Callable

MAX_WORKERS = 256  # processes: more than any machine here has cores, fewer than a fork bomb


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse `type` accepting whole numbers in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is out of range: use {lo}..{hi}")
        return value
    parse.__name__ = "int"
    return parse


def workers() -> Callable[[str], int]:
    """Process counts: 1 .. MAX_WORKERS."""
    return int_in(1, MAX_WORKERS)
