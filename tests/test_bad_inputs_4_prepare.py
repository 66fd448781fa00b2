"""Third bad-input catalogue, class "prepared lists": every preparer checks that a mask has its
image's size before listing it, and a list line whose file names hold spaces round-trips
(tab-separated) while old space-separated lists still read (docs/reliability.md)."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from target_fixtures import MAKERS
from util.data.index import list_fields, list_line, parse_list
from util.prepare.cli import main as prepare_main

WRONG_SIZE = {  # one mask per preparer replaced by a mask of another size (values still valid)
    "fss1000": lambda src: cv2.imwrite(str(src / "bus/1.png"), np.full((30, 24), 255, np.uint8)),
    "isic": lambda src: cv2.imwrite(str(src / "ISIC2018_Task1_Training_GroundTruth/ISIC_0000002_segmentation.png"),
                                    np.zeros((40, 52), np.uint8)),
    "chestxray": lambda src: cv2.imwrite(str(src / "masks/CHNCXR_0002_0_mask.png"), np.zeros((41, 40), np.uint8)),
    "suim": lambda src: cv2.imwrite(str(src / "masks/d_r_0_.bmp"), np.zeros((50, 40, 3), np.uint8)),
}


def run_prepare(tmp_path: Path, name: str, damage=None) -> tuple[int, Path, Path]:
    src, out, lists = tmp_path / "download", tmp_path / "data", tmp_path / "lists"
    extra = MAKERS[name](src)
    if damage:
        damage(src)
    rc = prepare_main([name, "--src", str(src), "--out", str(out), "--lists", str(lists), "--workers", "1", *extra])
    return rc, src, lists / "test.txt"


@pytest.mark.parametrize("name", sorted(WRONG_SIZE))
def test_a_mask_of_another_size_than_its_image_stops_the_preparer(tmp_path, capsys, name):
    rc, _, lst = run_prepare(tmp_path, name, WRONG_SIZE[name])
    err = capsys.readouterr().err.strip().split("\n")[-1]
    assert rc == 2 and err.startswith("error: mask '") and "but its image '" in err, err
    assert not lst.exists()


def test_a_chestxray_file_name_with_spaces_round_trips(tmp_path):
    def copy_with_space(src):
        for folder, name in (("CXR_png", "CHNCXR_0002_0"), ("masks", "CHNCXR_0002_0_mask")):
            data = (src / folder / f"{name}.png").read_bytes()
            (src / folder / f"{name.replace('_0002_0', '_0002_0 (1)')}.png").write_bytes(data)
    rc, _, lst = run_prepare(tmp_path, "chestxray", copy_with_space)
    assert rc == 0
    pairs = parse_list(str(lst), str(tmp_path / "data"))
    spaced = [p for p in pairs if "(1)" in p[0]]
    assert len(pairs) == 4 and len(spaced) == 1 and spaced[0][1].endswith("labels/CHNCXR_0002_0 (1).png")
    assert all(Path(p).is_file() for pair in pairs for p in pair)
    before = lst.read_text()
    assert prepare_main(["chestxray", "--src", str(tmp_path / "download"), "--out", str(tmp_path / "data"),
                         "--lists", str(tmp_path / "lists"), "--workers", "1"]) == 0
    assert lst.read_text() == before  # a rerun writes the same list again


@pytest.mark.parametrize("line, fields", [
    ("a.jpg b.png", ["a.jpg", "b.png"]),
    ("  a.jpg \t  b.png \r", ["a.jpg", "b.png"]),
    ("x/my photo.jpg\tx/my mask.png", ["x/my photo.jpg", "x/my mask.png"]),
    ("a b.jpg c.png", ["a", "b.jpg", "c.png"]),  # spaces without a tab: three fields, refused by parse_list
])
def test_list_fields(line, fields):
    assert list_fields(line) == fields


def test_list_line_uses_a_tab_only_when_needed():
    assert list_line("a.jpg", "b.png") == "a.jpg b.png"
    assert list_fields(list_line("CXR_png/x (1).png", "labels/x (1).png")) == ["CXR_png/x (1).png", "labels/x (1).png"]
