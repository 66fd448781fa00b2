"""Scalar curves (loss terms, lr, validation mIoU) from the TensorBoard event files that
train.py, train_base.py and pretrain_prior.py write (util/engine/tb.py), for the results page.

tensorboardX, which the project already uses to write events, ships the `Event` protobuf and the
masked CRC-32C but no reader; reading through TensorBoard or TensorFlow would add a large
dependency for a dozen lines. So the TFRecord framing is read here: per record a little-endian
uint64 length, the masked CRC-32C of those 8 bytes, the payload, the masked CRC-32C of the
payload. A record cut short at the end of a file (a run killed while writing) is dropped.
"""
from __future__ import annotations

import logging
import struct
from pathlib import Path

from util.errors import UserError

log = logging.getLogger(__name__)

Curves = dict[str, list[tuple[int, float]]]  # tag -> [(step, value)], by step


def read_records(path: Path) -> list[bytes]:
    """The payloads of one event file; UserError naming the file when a CRC does not match."""
    from tensorboardX.record_writer import masked_crc32c as _masked  # tensorboardX loads torch: only when read

    data, out, pos = Path(path).read_bytes(), [], 0
    while pos < len(data):
        if pos + 12 > len(data):
            log.warning("%s: the last record is cut short (the run stopped while writing); ignored", path)
            break
        header, (crc,) = data[pos:pos + 8], struct.unpack("<I", data[pos + 8:pos + 12])
        (length,) = struct.unpack("<Q", header)
        end = pos + 12 + length + 4
        if crc != _masked(header):
            raise UserError(f"{path} is not a readable event file (bad length checksum at byte {pos}); "
                            "delete it or move it out of the results folder")
        if end > len(data):
            log.warning("%s: the last record is cut short (the run stopped while writing); ignored", path)
            break
        payload = data[pos + 12:pos + 12 + length]
        if struct.unpack("<I", data[end - 4:end])[0] != _masked(payload):
            raise UserError(f"{path} is corrupt (bad record checksum at byte {pos}); delete it or move it "
                            "out of the results folder")
        out.append(payload)
        pos = end
    return out


def read_scalars(files: list[Path]) -> Curves:
    """Every scalar of one run's event files, read in the order written (file names start with the
    creation time). A SessionLog START at step s (a resumed run, util/engine/tb.py `purge_step`)
    discards what was logged at step s or later before it, as TensorBoard does."""
    from tensorboardX.proto.event_pb2 import Event, SessionLog

    curves: dict[str, dict[int, float]] = {}
    for path in sorted(files):
        for payload in read_records(path):
            event = Event.FromString(payload)
            if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                for points in curves.values():
                    for step in [s for s in points if s >= event.step]:
                        del points[step]
            for value in event.summary.value if event.HasField("summary") else ():
                if value.HasField("simple_value"):
                    curves.setdefault(value.tag, {})[int(event.step)] = float(value.simple_value)
    return {tag: sorted(points.items()) for tag, points in curves.items() if points}


def find_curves(root: str | Path) -> dict[str, Curves]:
    """Run name (its folder relative to root) -> its curves, for every folder under root that holds
    event files (train.py writes them to <run>/tb/; the run is the folder above `tb`)."""
    root = Path(root)
    folders: dict[Path, list[Path]] = {}
    for f in sorted(root.glob("**/events.out.tfevents.*")):
        if f.is_file():
            folders.setdefault(f.parent, []).append(f)
    runs = {}
    for folder, files in folders.items():
        run = folder.parent if folder.name == "tb" else folder
        name = str(run.relative_to(root)) if run != root else root.name
        if curves := read_scalars(files):
            runs[name] = curves
    return runs
