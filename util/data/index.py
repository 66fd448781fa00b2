"""Class index with PFENet's rules (docs/design.md §3.3), built once in parallel and cached.

The expensive part is reading every label; what it yields (pixels per class per image)
depends only on the list content, data_root, the class count and the label files. That scan
is cached beside the list as `<list>.cache-<hash>.json`, keyed by a hash of the first three
and a format version, and holding each label's size, times and inode: a label changed since
(even replaced by rename with its old size and timestamps) is re-read, so a stale count is
never used. The fold's class set and the pixel threshold are applied on load (milliseconds),
so all folds, modes and thresholds share one scan.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import itertools
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
from util.io.imagefile import check_pixels, imdecode
from util.io.textfile import read_utf8

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # 3: per-label stats decide which labels are re-read
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
REGENERATE = "regenerate the labels with `python -m util.prepare`"
PNG_KINDS = {0: "grayscale", 2: "RGB", 3: "palette", 4: "grayscale+alpha", 6: "RGBA"}


@dataclass
class ClassIndex:
    """Images of one mode: `items[i]` = (image, label) paths, `present[i]` = mode classes in
    the label at any size, `by_class[c]` = positions i where c covers >= min_pixels."""

    items: list[tuple[str, str]]
    present: list[list[int]]
    by_class: dict[int, list[int]]


def list_fields(line: str) -> list[str]:
    """The fields of one list line: split at tabs when the line has one (then a file name may
    hold spaces, e.g. `CHNCXR_0002_0 (1).png`), at any whitespace otherwise (PFENet's lists);
    a CR of CRLF lines and blanks at either end are dropped."""
    if "\t" in line:
        return [f.strip() for f in line.split("\t") if f.strip()]
    return line.split()


def list_line(image: str, label: str) -> str:
    """One list line that list_fields reads back: a space, or a tab when a path holds whitespace."""
    sep = "\t" if any(c.isspace() for c in image + label) else " "
    return f"{image}{sep}{label}"


def parse_list(list_path: str, data_root: str) -> list[tuple[str, str]]:
    """'image label' lines -> absolute-ish path pairs; errors name the file and line."""
    if not os.path.isdir(data_root):
        raise UserError(f"data_root '{data_root}' is not a folder: set data_root to the folder "
                        "the list paths are relative to (see docs/data.md)")
    if not os.path.isfile(list_path):
        raise UserError(f"list file '{list_path}' not found: run `python -m util.prepare` or "
                        "point train_list/val_list at an existing list")
    pairs, root = [], os.path.join(data_root, "")  # join by concatenation: 10x faster on big lists
    text = read_utf8(list_path, "save the list as UTF-8 (rename files with other names)")
    for no, line in enumerate(text.split("\n"), 1):
        fields = list_fields(line)
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 2:
            raise UserError(f"{list_path}:{no}: expected 'image_path label_path' (2 fields), "
                            f"got {len(fields)}: {line.strip()!r}; a path holding spaces needs a tab between "
                            "image and label: fix or regenerate the list")
        for p in fields:
            if p[0] == "/" or (".." in p and os.path.normpath(p).split(os.sep)[0] == ".."):
                raise UserError(f"{list_path}:{no}: path '{p}' is outside data_root: write list paths "
                                "relative to data_root (e.g. JPEGImages/x.jpg) and set data_root to the "
                                "folder that holds them")
        pairs.append((root + fields[0], root + fields[1]))
    if not pairs:
        raise UserError(f"list file '{list_path}' has no entries: regenerate it with `python -m util.prepare`")
    return pairs


def read_label(path: str) -> np.ndarray:
    """Label PNG -> uint8 [H, W] of class values. Grey PNGs as they are, palette PNGs as their
    indices (VOC), RGB PNGs only when the three channels are equal (a grey map saved as RGB);
    lossy JPEGs, 16-bit, colour, alpha and empty files are refused with the fix."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        raise UserError(f"label '{path}' cannot be read: check the file exists and the list's "
                        "paths are relative to data_root") from None
    if not data.size:
        raise UserError(f"label '{path}' is empty (0 bytes; an interrupted copy?): copy it again or {REGENERATE}")
    head = data[:26].tobytes()
    if head[:3] == JPEG_SIGNATURE:
        raise UserError(f"label '{path}' is a JPEG: lossy compression changes class values along object "
                        f"edges, so labels must be lossless PNG class maps; {REGENERATE}")
    if head[:8] == PNG_SIGNATURE and len(head) == 26:
        depth, kind = head[24], head[25]
        if kind == 3:
            return _read_palette(path)
        if depth != 8:
            raise UserError(f"label '{path}' is a {depth}-bit PNG: labels must be 8-bit class maps; {REGENERATE}")
        if kind == 2:
            return _read_grey_rgb(path, data)
        if kind != 0:
            raise UserError(f"label '{path}' is a {PNG_KINDS.get(kind, f'type {kind}')} PNG: labels must be "
                            f"single-channel class maps (grey or palette PNG); {REGENERATE}")
    label = imdecode(data, cv2.IMREAD_GRAYSCALE, path, "label")
    if label is None:
        raise UserError(f"label '{path}' is corrupt or not an image: {REGENERATE}")
    return label


def _read_grey_rgb(path: str, data: np.ndarray) -> np.ndarray:
    """An RGB PNG whose channels are equal everywhere is a grey class map saved as colour;
    one with colours (VOC's colour-coded masks) has no class indices to read."""
    rgb = imdecode(data, cv2.IMREAD_UNCHANGED, path, "label")
    if rgb is None:
        raise UserError(f"label '{path}' is corrupt or not an image: {REGENERATE}")
    grey = rgb[..., 0]
    if not ((rgb[..., 1] == grey).all() and (rgb[..., 2] == grey).all()):
        raise UserError(f"label '{path}' is an RGB PNG with colours: labels must be class maps (one class "
                        f"index per pixel, grey or palette PNG), not colour-coded masks; {REGENERATE}")
    return np.ascontiguousarray(grey)


def _read_palette(path: str) -> np.ndarray:
    """VOC-style palette PNGs hold class indices; cv2 would decode them to grey levels."""
    from PIL import Image
    check_pixels(path, "label")
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
    bad = [int(v) for v in np.flatnonzero(counts) if num_classes < v < 255]
    if bad:
        raise UserError(f"label '{label_path}' holds values {bad[:5]} outside 0..{num_classes} and 255: "
                        "it is not a class map of this dataset (palette image? wrong dataset?); "
                        "regenerate labels with `python -m util.prepare`")
    return {int(c): int(counts[c]) for c in range(1, num_classes + 1) if counts[c]}


def _count_job(args: tuple) -> dict[int, int] | UserError:
    """A worker returns a bad label's error instead of raising it: an exception leaving the pool
    early makes it terminate with tasks still queued, which can hang (a full task pipe)."""
    try:
        return count_classes(*args)
    except UserError as e:
        return e


def scan_labels(labels: Sequence[str], num_classes: int, workers: int | None = None,
                reader: Callable[[str], np.ndarray] | None = None) -> list[dict[int, int]]:
    """Count classes in every label, in parallel, with a progress bar."""
    jobs = [(p, num_classes, reader) for p in labels]
    workers = workers or min(os.cpu_count() or 1, 16)
    bar = dict(total=len(jobs), desc="class index", unit="label", mininterval=1.0)
    if workers <= 1 or len(jobs) < 64:
        return [count_classes(*j) for j in tqdm(jobs, **bar)]
    pool = Pool(workers)
    try:
        counts = list(tqdm(pool.imap(_count_job, jobs, chunksize=32), **bar))
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    if error := next((c for c in counts if isinstance(c, UserError)), None):
        raise error
    return counts


def cache_path(list_path: str, data_root: str, num_classes: int,
               reader: Callable[[str], np.ndarray] | None = None) -> str:
    """`<list>.cache-<hash>.json`, the hash covering the list bytes, the resolved data_root,
    C, the label reader and the format version: another list, root or label format never
    meets this cache."""
    h = hashlib.sha256()
    with open(list_path, "rb") as f:
        h.update(f.read())
    h.update(f"\0{os.path.realpath(data_root)}\0{num_classes}\0{CACHE_VERSION}".encode())
    if reader is not None and reader is not read_label:  # another label format counts differently
        h.update(f"\0{getattr(reader, '__module__', '')}.{getattr(reader, '__qualname__', repr(reader))}".encode())
    return f"{list_path}.cache-{h.hexdigest()[:16]}.json"


def label_stats(labels: Sequence[str]) -> list[int]:
    """(size, mtime_ns, ctime_ns, inode) of every label, flattened. A label replaced by rename
    has a new inode and change time even when its size and (coarse or restored) modification
    time are equal; one rewritten in place has a new change time. A missing label is -1s."""
    out: list[int] = []
    for p in labels:
        try:
            st = os.stat(p)
            out += (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        except OSError:
            out += (-1, -1, -1, -1)  # never matches a stored stat: the scan names the label
    return out


def _valid_rows(rows: object, n: int, num_classes: int) -> bool:
    """`rows` is n lists [class, pixels, class, pixels, ...] with classes in 1..C, pixels > 0
    (checked over the concatenation: with even rows its even places are the classes)."""
    if not isinstance(rows, list) or len(rows) != n or not all(type(r) is list and not len(r) % 2 for r in rows):
        return False
    flat = list(itertools.chain.from_iterable(rows))
    if not all(type(x) is int for x in flat):
        return False
    return not flat or (1 <= min(flat[::2]) and max(flat[::2]) <= num_classes and min(flat[1::2]) > 0)


def _load_cache(path: str, n: int, num_classes: int) -> tuple[list[dict[int, int]], list[int]] | None:
    """(counts, label stats) of a cache file, or None (with a warning) unless it is a current
    cache of n labels: truncated, garbled, older or foreign files are rebuilt, never trusted."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("class index cache %s is unreadable (%s); rebuilding it", path, type(e).__name__)
        return None
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        version = data.get("version") if isinstance(data, dict) else None
        log.warning("class index cache %s has format %r, not %d; rebuilding it", path, version, CACHE_VERSION)
        return None
    rows, stats = data.get("counts"), data.get("stats")
    if not (_valid_rows(rows, n, num_classes) and isinstance(stats, list) and len(stats) == 4 * n):
        log.warning("class index cache %s does not match its list (damaged?); rebuilding it", path)
        return None
    return [dict(zip(row[::2], row[1::2])) for row in rows], stats  # odd stats only mean a rescan


def _save_cache(path: str, counts: list[dict[int, int]], stats: list[int]) -> None:
    """Atomic write (tmp + rename); a read-only list folder only costs a warning."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            rows = [[x for item in row.items() for x in item] for row in counts]
            json.dump({"version": CACHE_VERSION, "counts": rows, "stats": stats}, f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError as e:
        log.warning("could not write class index cache %s (%s); it will be rebuilt next time", path, e)
        with contextlib.suppress(OSError):
            os.remove(tmp)
        return
    for old in glob.glob(glob.escape(path.rsplit(".cache-", 1)[0]) + ".cache-*.json"):
        if old != path:  # superseded caches of this list
            with contextlib.suppress(OSError):
                os.remove(old)


def label_counts(list_path: str, data_root: str, num_classes: int, *, workers: int | None = None,
                 use_cache: bool = True, reader: Callable[[str], np.ndarray] | None = None
                 ) -> tuple[list[tuple[str, str]], list[dict[int, int]]]:
    """Parsed list and per-image class pixel counts. A cache hit reads no label; labels whose
    stats changed since the cache was written are re-read (only those)."""
    pairs = parse_list(list_path, data_root)
    labels = [lbl for _, lbl in pairs]
    if not use_cache:
        return pairs, scan_labels(labels, num_classes, workers, reader)
    path = cache_path(list_path, data_root, num_classes, reader)
    stats = label_stats(labels)
    cached = _load_cache(path, len(pairs), num_classes)
    if cached is not None and cached[1] == stats:
        log.info("class index: loaded %s (%d labels)", path, len(pairs))
        return pairs, cached[0]
    if cached is None:
        log.info("class index: scanning %d labels of %s (cached afterwards)", len(pairs), list_path)
        counts = scan_labels(labels, num_classes, workers, reader)
    else:
        counts, old = cached
        changed = [i for i in range(len(labels)) if stats[4 * i:4 * i + 4] != old[4 * i:4 * i + 4]]
        log.info("class index: %d of %d labels of %s changed since %s was written; re-reading them",
                 len(changed), len(labels), list_path, path)
        for i, cnt in zip(changed, scan_labels([labels[i] for i in changed], num_classes, workers, reader)):
            counts[i] = cnt
    _save_cache(path, counts, stats)
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
