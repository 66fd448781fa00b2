"""The evaluation loops' progress bar, which also says in the log when a loop will be long.

A test can be slow for reasons the user does not see: a large original resolution, many
episodes, a loaded machine. After the first few batches (the first pays the warm-up) a loop
projected to run longer than LONG_RUN_S logs one line, "about N min for M episodes", so the user
knows at once whether to wait or to lower `test_num` / `seeds`.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Iterable, Iterator

from tqdm import tqdm

from util.engine import distributed

log = logging.getLogger(__name__)

ESTIMATE_AFTER = 3  # batches timed before the projection
LONG_RUN_S = 60.0  # a loop projected to take longer than this says so in the log


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def estimate_line(desc: str, elapsed: float, done: int, total: int, episodes: int) -> str | None:
    """The log line for a loop that has run `done` of `total` batches in `elapsed` seconds;
    None when the whole loop is projected to take at most LONG_RUN_S."""
    if done <= 0 or done >= total:
        return None
    projected = elapsed / done * total
    if projected <= LONG_RUN_S:
        return None
    return (f"{desc}: about {_duration(projected)} for {episodes} episodes at {elapsed / done:.1f} s per batch "
            f"(from the first {done} of {total} batches; lower test_num or seeds for a quicker look)")


def progress(loader: Iterable, desc: str, clock: Callable[[], float] = time.monotonic) -> Iterator:
    """`loader`'s batches under a progress bar (rank 0 only); logs estimate_line's line once,
    after ESTIMATE_AFTER batches, when the loop will be long."""
    total = len(loader)  # type: ignore[arg-type]
    episodes = len(getattr(loader, "dataset", None) or ()) or total
    start = clock()
    bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, disable=not distributed.is_main())
    for done, batch in enumerate(bar):
        if done == ESTIMATE_AFTER and (line := estimate_line(desc, clock() - start, done, total, episodes)):
            log.info(line)
        yield batch
