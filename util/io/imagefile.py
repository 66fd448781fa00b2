"""Opening a user's image or label file: its size is read from the header before anything is
decoded, so a file that claims gigapixels (a crafted or damaged header) is one clear error
instead of an allocation failure or an OpenCV exception."""
from __future__ import annotations

import os
import re
import warnings

import cv2
import numpy as np
from PIL import Image

from util.errors import UserError

MAX_PIXELS = 80_000_000  # ~8,900 x 8,900: 8x the largest benchmark image (DeepGlobe 2448 x 2448 is 6 MP)


def header_pixels(path: str) -> tuple[int, str] | None:
    """(pixel count, 'WxH') from the file's header without decoding it; None if no header is
    readable (then the decoder's own refusal names the file)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.size[0] * im.size[1], f"{im.size[0]}x{im.size[1]}"
    except Image.DecompressionBombError as e:  # PIL's own limit (2x its warning size) names the count only
        found = re.findall(r"\((\d+) pixels\)", str(e))
        count = int(found[0]) if found else MAX_PIXELS + 1
        return count, f"{count:,}"
    except (OSError, ValueError, SyntaxError):
        return None


def header_size(path: str) -> tuple[int, int] | None:
    """(width, height) from the header, None when unreadable (as header_pixels)."""
    found = header_pixels(path)
    if found is None or "x" not in found[1]:
        return None
    w, h = found[1].split("x")
    return int(w), int(h)


def check_pixels(path: str, what: str) -> None:
    """Refuse a file whose header claims more than MAX_PIXELS pixels, before decoding it."""
    found = header_pixels(path)
    if found is not None and found[0] > MAX_PIXELS:
        raise UserError(f"{what} '{path}' claims {found[1]} pixels in its header, more than the "
                        f"{MAX_PIXELS:,} this project reads: a damaged or crafted file, or resize the image")


def imread(path: str, flags: int, what: str) -> np.ndarray | None:
    """cv2.imread after the header check; None for a missing or undecodable file (OpenCV may
    also raise on odd headers: read as None, so every caller names the file its own way)."""
    if not os.path.isfile(path):
        return None
    check_pixels(path, what)
    try:
        return cv2.imread(path, flags)
    except cv2.error:
        return None


def imdecode(data: np.ndarray, flags: int, path: str, what: str) -> np.ndarray | None:
    """cv2.imdecode of bytes read from `path`, after the same header check."""
    check_pixels(path, what)
    try:
        return cv2.imdecode(data, flags)
    except cv2.error:
        return None
