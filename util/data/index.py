"""Class index with PFENet's rules (docs/design.md §3.3), built once in parallel and cached.

The expensive part is reading every label; what it yields (pixels per class per image)
depends only on the list content, data_root and the class count. That scan is cached beside
the list as `<list>.cache-<hash>.json`, keyed by a hash of exactly those inputs and a format
version, so a stale cache is never used. The fold's class set and the pixel threshold are
applied on load (milliseconds), so all folds, modes and thresholds share one scan.
"""
from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from multiprocessing import Pool
from typing import Callable, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from util.errors import UserError

log = logging.getLogger(__name__)

CACHE_VERSION = 2
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_KINDS = {0: "grayscale", 2: "RGB", 3: "palette", 4: "grayscale+alpha", 6: "RGBA"}


@dataclass
class ClassIndex:
    """Images of one mode: `items[i]` = (image, label) paths, `present[i]` = mode classes in
    the label at any size, `by_class[c]` = positions i where c covers >= min_pixels."""

    items: list[tuple[str, str]]
    present: list[list[int]]
    by_class: dict[int, list[int]]


def parse_list(list_path: str, data_root: str) -> list[tuple[str, str]]:
    """'image label' lines -> absolute-ish path pairs; errors name the file and line."""
    if not os.path.isdir(data_root):
        raise UserError(f"data_root '{data_root}' is not a folder: set data_root to the folder "
                        "the list paths are relative to (see docs/data.md)")
    if not os.path.isfile(list_path):
        raise UserError(f"list file '{list_path}' not found: run `python -m util.prepare` or "
                        "point train_list/val_list at an existing list")
    pairs, root = [], os.path.join(data_root, "")  # join by concatenation: 10x faster on big lists
    with open(list_path) as f:
        for no, line in enumerate(f, 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) != 2:
                raise UserError(f"{list_path}:{no}: expected 'image_path label_path' (2 fields), "
                                f"got {len(fields)}: {line.strip()!r}; fix or regenerate the list")
            a, b = fields
            pairs.append((a if a[0] == "/" else root + a, b if b[0] == "/" else root + b))
    if not pairs:
        raise UserError(f"list file '{list_path}' has no entries: regenerate it with `python -m util.prepare`")
    return pairs


def read_label(path: str) -> np.ndarray:
    """Single-channel label PNG -> uint8 [H, W] of class values (palette PNGs via PIL)."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        raise UserError(f"label '{path}' cannot be read: check the file exists and the list's "
                        "paths are relative to data_root") from None
    if data[:8].tobytes() == PNG_SIGNATURE and len(data) > 25 and data[25] == 0 and data[24] != 8:
        raise UserError(f"label '{path}' is a {int(data[24])}-bit PNG: labels must be 8-bit class maps; "
                        "regenerate them with `python -m util.prepare`")
    if data[:8].tobytes() == PNG_SIGNATURE and len(data) > 25 and data[25] != 0:
        kind = PNG_KINDS.get(int(data[25]), f"type {int(data[25])}")
        if kind != "palette":
            raise UserError(f"label '{path}' is a {kind} PNG: labels must be single-channel "
                            "class maps; regenerate them with `python -m util.prepare`")
        return _read_palette(path)
    label = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if label is None:
        raise UserError(f"label '{path}' is corrupt or not an image: regenerate it with `python -m util.prepare`")
    return label


def _read_palette(path: str) -> np.ndarray:
    """VOC-style palette PNGs hold class indices; cv2 would decode them to grey levels."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return np.array(im, dtype=np.uint8)
    except (OSError, ValueError):
        raise UserError(f"label '{path}' is corrupt: regenerate it with `python -m util.prepare`") from None


def count_classes(label_path: str, num_classes: int, reader: Callable[[str], np.ndarray] | None = None
                  ) -> dict[int, int]:
    """Pixels per class (0 and 255 excluded); values outside {0..C, 255} are a user error.
    `reader` turns a label file into a class map (default: the file is one, read_label)."""
    counts = np.bincount((reader or read_label)(label_path).ravel(), minlength=256)
    bad = [v for v in np.flatnonzero(counts) if num_classes < v < 255]
    if bad:
        raise UserError(f"label '{label_path}' holds values {bad[:5]} outside 0..{num_classes} and 255: "
                        "it is not a class map of this dataset (palette image? wrong dataset?); "
                        "regenerate labels with `python -m util.prepare`")
    return {int(c): int(counts[c]) for c in range(1, num_classes + 1) if counts[c]}


def _count_job(args: tuple) -> dict[int, int]:
    return count_classes(*args)


def scan_labels(labels: Sequence[str], num_classes: int, workers: int | None = None,
                reader: Callable[[str], np.ndarray] | None = None) -> list[dict[int, int]]:
    """Count classes in every label, in parallel, with a progress bar."""
    jobs = [(p, num_classes, reader) for p in labels]
    workers = workers or min(os.cpu_count() or 1, 16)
    bar = dict(total=len(jobs), desc="class index", unit="label", mininterval=1.0)
    if workers <= 1 or len(jobs) < 64:
        return [count_classes(*j) for j in tqdm(jobs, **bar)]
    with Pool(workers) as pool:
        return list(tqdm(pool.imap(_count_job, jobs, chunksize=32), **bar))


def cache_path(list_path: str, data_root: str, num_classes: int, labels: Sequence[str],
               reader: Callable[[str], np.ndarray] | None = None) -> str:
    """`<list>.cache-<hash>.json`. The hash covers the list bytes, resolved data_root, C, the
    format version and the mtimes of the label folders (an atomic rewrite of labels, as the
    prepare tool does, renames files and so bumps them), never the labels themselves."""
    h = hashlib.sha256()
    with open(list_path, "rb") as f:
        h.update(f.read())
    h.update(f"\0{os.path.realpath(data_root)}\0{num_classes}\0{CACHE_VERSION}".encode())
    if reader is not None and reader is not read_label:  # another label format counts differently
        h.update(f"\0{getattr(reader, '__module__', '')}.{getattr(reader, '__qualname__', repr(reader))}".encode())
    for folder in sorted({p.rpartition("/")[0] for p in labels}):
        h.update(f"\0{folder}:{_mtime_ns(folder)}".encode())
    return f"{list_path}.cache-{h.hexdigest()[:16]}.json"


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1  # a missing folder: the scan will name the first missing label


def _load_cache(path: str, n: int) -> list[dict[int, int]] | None:
    try:
        with open(path) as f:
            rows = json.load(f)["counts"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if len(rows) != n:
        return None
    return [dict(zip(row[::2], row[1::2])) for row in rows]  # rows are [class, pixels, class, ...]


def _save_cache(path: str, counts: list[dict[int, int]]) -> None:
    """Atomic write (tmp + rename); a read-only list folder only costs a warning."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            rows = [[x for item in row.items() for x in item] for row in counts]
            json.dump({"version": CACHE_VERSION, "counts": rows}, f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError as e:
        log.warning("could not write class index cache %s (%s); it will be rebuilt next time", path, e)
        return
    for old in glob.glob(glob.escape(path.rsplit(".cache-", 1)[0]) + ".cache-*.json"):
        if old != path:  # superseded caches of this list
            try:
                os.remove(old)
            except OSError:
                pass


def label_counts(list_path: str, data_root: str, num_classes: int, *, workers: int | None = None,
                 use_cache: bool = True, reader: Callable[[str], np.ndarray] | None = None
                 ) -> tuple[list[tuple[str, str]], list[dict[int, int]]]:
    """Parsed list and per-image class pixel counts, from the cache when it is current."""
    pairs = parse_list(list_path, data_root)
    path = cache_path(list_path, data_root, num_classes, [lbl for _, lbl in pairs], reader)
    counts = _load_cache(path, len(pairs)) if use_cache else None
    if counts is not None:
        log.info("class index: loaded %s (%d labels)", path, len(pairs))
        return pairs, counts
    log.info("class index: scanning %d labels of %s (cached afterwards)", len(pairs), list_path)
    counts = scan_labels([lbl for _, lbl in pairs], num_classes, workers, reader)
    if use_cache:
        _save_cache(path, counts)
    return pairs, counts


def build_class_index(list_path: str, data_root: str, classes: Sequence[int], *, num_classes: int,
                      min_pixels: int, workers: int | None = None, use_cache: bool = True,
                      reader: Callable[[str], np.ndarray] | None = None) -> ClassIndex:
    """Images where some class of `classes` covers >= min_pixels, and the class -> images map."""
    pairs, counts = label_counts(list_path, data_root, num_classes, workers=workers, use_cache=use_cache,
                                 reader=reader)
    wanted, threshold = set(classes), max(min_pixels, 1)
    index = ClassIndex([], [], {c: [] for c in sorted(wanted)})
    seen: set[tuple[str, str]] = set()
    for pair, cnt in zip(pairs, counts):
        if pair in seen:  # a duplicate line could serve as its own support
            continue
        seen.add(pair)
        present = sorted(c for c in cnt if c in wanted)
        counted = [c for c in present if cnt[c] >= threshold]
        if not counted:
            continue
        pos = len(index.items)
        index.items.append(pair)
        index.present.append(present)
        for c in counted:
            index.by_class[c].append(pos)
    if len(seen) < len(pairs):
        log.warning("%s: %d duplicate lines ignored", list_path, len(pairs) - len(seen))
    return index
