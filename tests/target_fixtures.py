"""Synthetic downloads of the cross-domain targets in their real on-disk layouts (file names,
folders, mask encodings), a few tiny images each, for the prepare and loader tests."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from util.data.benchmarks import deepglobe, fss1000, suim

SIDE = 40


def _image(rng: np.random.Generator, mask: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    img = rng.integers(0, 80, (*mask.shape, 3)).astype(np.uint8)
    img[mask > 0] = colour
    return img


def _square(rng: np.random.Generator, side: int = SIDE) -> np.ndarray:
    mask = np.zeros((side, side), np.uint8)
    y, x = rng.integers(0, side // 2, 2)
    mask[y:y + side // 2, x:x + side // 2] = 255
    return mask


def make_fss1000(root: Path, per_class: int = 2) -> list[str]:
    """<class>/<n>.jpg + <n>.png (0/255) for every test class, n from 1."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(fss1000.NAMES):
        (root / name).mkdir(parents=True)
        for n in range(1, per_class + 1):
            mask = _square(rng, 24)
            cv2.imwrite(str(root / name / f"{n}.jpg"), _image(rng, mask, (c, 255 - c, 128)))
            cv2.imwrite(str(root / name / f"{n}.png"), mask)
    return []


def make_isic(root: Path) -> list[str]:
    """ISIC2018_Task1-2_Training_Input/<id>.jpg, ..._GroundTruth/<id>_segmentation.png and a
    class csv (two images per class, one image the csv does not list)."""
    rng = np.random.default_rng(1)
    images, masks = root / "ISIC2018_Task1-2_Training_Input", root / "ISIC2018_Task1_Training_GroundTruth"
    images.mkdir(parents=True)
    masks.mkdir()
    rows = ["ID,Class"]
    for i in range(7):
        mask = _square(rng)
        cv2.imwrite(str(images / f"ISIC_{i:07d}.jpg"), _image(rng, mask, (150, 90, 60)))
        cv2.imwrite(str(masks / f"ISIC_{i:07d}_segmentation.png"), mask)
        if i < 6:
            rows.append(f"ISIC_{i:07d},{('melanoma', 'nevus', 'seborrheic_keratosis')[i % 3]}")
    (root / "class_id.csv").write_text("\n".join(rows) + "\n")
    return ["--classes", str(root / "class_id.csv")]


def make_chestxray(root: Path) -> list[str]:
    """CXR_png/<id>.png (grey radiographs), masks/<id>_mask.png (Shenzhen) and <id>.png (Montgomery)."""
    rng = np.random.default_rng(2)
    (root / "CXR_png").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, (stem, mask_name) in enumerate([("CHNCXR_0001_0", "CHNCXR_0001_0_mask"), ("CHNCXR_0002_0", "CHNCXR_0002_0_mask"),
                                           ("MCUCXR_0001_0", "MCUCXR_0001_0")]):
        mask = _square(rng)
        cv2.imwrite(str(root / "CXR_png" / f"{stem}.png"), _image(rng, mask, (200, 200, 200))[..., 0])
        cv2.imwrite(str(root / "masks" / f"{mask_name}.png"), mask)
    return []


def _colour_label(rng: np.random.Generator, side: int, classes: list[int]) -> np.ndarray:
    """Vertical stripes of the given classes (0 = the background colour), equal widths."""
    label = np.zeros((side, side), np.uint8)
    for k, cls in enumerate(classes):
        label[:, k * side // len(classes):(k + 1) * side // len(classes)] = cls
    return label


def _to_colours(label: np.ndarray, colours: tuple, rng: np.random.Generator, drift: bool = True) -> np.ndarray:
    """RGB colour-coded mask (written BGR for cv2), colours drifted by up to 20 as lossy masks are."""
    palette = np.array([(0, 0, 0), *colours], np.int64)
    rgb = palette[label]
    if drift:
        rgb = np.where(rgb > 0, rgb - rng.integers(0, 20, rgb.shape), rgb + rng.integers(0, 20, rgb.shape))
    return np.ascontiguousarray(rgb[..., ::-1]).astype(np.uint8)


def make_suim(root: Path) -> list[str]:
    """images/<id>.jpg and masks/<id>.bmp (RGB codes); every class in two images."""
    rng = np.random.default_rng(3)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(4):
        label = _colour_label(rng, SIDE, [0] + [1 + (2 * i + k) % 7 for k in range(4)])
        cv2.imwrite(str(root / "images" / f"d_r_{i}_.jpg"), _image(rng, label, (20, 90, 160)))
        cv2.imwrite(str(root / "masks" / f"d_r_{i}_.bmp"), _to_colours(label, suim.COLOURS, rng))
    return []


def make_deepglobe(root: Path) -> list[str]:
    """<id>_sat.jpg + <id>_mask.png, 60 px (6 x 6 tiles of 10 px); stripes make kept tiles,
    one uniform image makes only dropped ones."""
    rng = np.random.default_rng(4)
    root.mkdir(parents=True)
    for i in range(3):
        side = 60
        label = np.zeros((side, side), np.uint8)
        for y in range(0, side, 10):
            for x in range(0, side, 10):
                a, b = 1 + (y // 10 + i) % 6, 1 + (x // 10 + 2 * i + 1) % 6
                label[y:y + 10, x:x + 5], label[y:y + 10, x + 5:x + 10] = a, (b if b != a else a % 6 + 1)
        if i == 2:
            label[:] = 4  # one colour only: every tile dropped
        cv2.imwrite(str(root / f"{100 + i}_sat.jpg"), _image(rng, label, (40, 160, 40)))
        cv2.imwrite(str(root / f"{100 + i}_mask.png"), _to_colours(label, deepglobe.COLOURS, rng, drift=False))
    return []


MAKERS = {"fss1000": make_fss1000, "isic": make_isic, "chestxray": make_chestxray, "suim": make_suim,
          "deepglobe": make_deepglobe}
