"""Third bad-input catalogue, class "image files": every image, label and mask the project opens
goes through one reader that checks the header's size before decoding, and predict.py reads an
RGBA mask by its colours, not by an opaque alpha channel (docs/reliability.md)."""
import struct
import zlib

import cv2
import numpy as np
import pytest

import predict
from util.data.dataset import read_image
from util.data.index import read_label
from util.errors import UserError
from util.prepare.masks import read_mask_file


def giant_png(path, width=12_000, height=9_000, colour_type=0):
    """A PNG whose header claims width x height pixels (a few bytes of data follow)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("reader, what", [
    (lambda p: read_image(str(p)), "image"),
    (lambda p: read_label(str(p)), "label"),
    (lambda p: read_mask_file(p), "mask"),
    (lambda p: predict.read_image(str(p)), "image"),
    (lambda p: predict.read_mask(str(p), (4, 4), "q.png"), "mask"),
])
def test_a_header_claiming_gigapixels_is_refused_before_decoding(tmp_path, reader, what):
    path = giant_png(tmp_path / "big.png")
    with pytest.raises(UserError, match=rf"{what} '.*big.png' claims 12000x9000 pixels in its header"):
        reader(path)


def test_a_palette_label_claiming_gigapixels_is_refused(tmp_path):
    path = giant_png(tmp_path / "pal.png", 50_000, 50_000, colour_type=3)  # past PIL's own limit too
    with pytest.raises(UserError, match="label '.*pal.png' claims 2,500,000,000 pixels"):
        read_label(str(path))


def test_an_ordinary_large_image_is_still_read(tmp_path):
    cv2.imwrite(str(tmp_path / "ok.png"), np.full((300, 2000, 3), 7, np.uint8))
    assert read_image(str(tmp_path / "ok.png")).shape == (300, 2000, 3)


def test_an_opaque_rgba_mask_is_read_by_its_colours(tmp_path):
    mask = np.zeros((6, 8, 4), np.uint8)
    mask[..., 3] = 255  # opaque everywhere
    mask[2:4, 3:5, :3] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    got = predict.read_mask(str(tmp_path / "m.png"), (6, 8), "q.png")
    assert got.sum() == 4 and got[2:4, 3:5].all()


def test_an_rgba_mask_painted_into_its_alpha_is_read_by_its_alpha(tmp_path):
    mask = np.zeros((6, 8, 4), np.uint8)
    mask[1:3, 1:4, 3] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    assert predict.read_mask(str(tmp_path / "m.png"), (6, 8), "q.png").sum() == 6
