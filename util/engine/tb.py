"""Tensorboard events written synchronously, so a checkpoint can flush exactly what precedes it.

tensorboardX's SummaryWriter hands events to a background thread; its flush() does not wait
for that queue, so a crash right after a checkpoint could lose logged steps. Here every event
is written at call time and `flush()` puts everything so far on disk.
"""
from __future__ import annotations

import os
import time

import numpy as np
from tensorboardX import summary
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event, SessionLog


class EventWriter:
    """add_scalar / add_image / flush / close, the subset of SummaryWriter train.py uses.

    `purge_step`: written as a SessionLog START, which makes TensorBoard discard the events an
    interrupted run logged at this step or later (a resumed run logs them again).
    """

    def __init__(self, logdir: str, purge_step: int | None = None):
        os.makedirs(logdir, exist_ok=True)
        self._writer = EventsWriter(os.path.join(logdir, "events"), f".{os.getpid()}")
        if purge_step is not None:
            self._write(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self._write(Event(step=step, summary=summary.scalar(tag, float(value))))

    def add_image(self, tag: str, image: np.ndarray, step: int, dataformats: str = "HWC") -> None:
        self._write(Event(step=step, summary=summary.image(tag, image, dataformats=dataformats)))

    def _write(self, event: Event) -> None:
        event.wall_time = time.time()
        self._writer.write_event(event)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
