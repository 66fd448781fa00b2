"""Joint image/label transforms of PFENet (docs/design.md §3.5), with cv2 and numpy.

Every op is called as `op(image, label, rng)`: image float32 [H, W, 3] RGB in 0..255,
label uint8 [H, W]; labels are always resized/rotated nearest-neighbour. All randomness
comes from the `numpy.random.Generator` passed in, so an episode is reproducible from its
seed and nothing here touches global random state.
"""
from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np
import torch

MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)  # ImageNet, RGB, 0..255 scale
STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
IGNORE = 255

Op = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple]


class Compose:
    """Applies ops in order; a fresh unseeded generator is used only when none is given."""

    def __init__(self, ops: Sequence[Op]):
        self.ops = list(ops)

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator | None = None):
        rng = rng if rng is not None else np.random.default_rng()
        for op in self.ops:
            image, label = op(image, label, rng)
        return image, label


class RandScale:
    """Isotropic rescale by a factor drawn uniformly in [lo, hi]."""

    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = lo, hi

    def __call__(self, image, label, rng):
        s = self.lo + (self.hi - self.lo) * rng.random()
        image = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, None, fx=s, fy=s, interpolation=cv2.INTER_NEAREST)
        return image, label


class RandRotate:
    """Rotation about the centre with probability p; corners filled with mean / ignore."""

    def __init__(self, lo: float, hi: float, pad=MEAN, ignore: int = IGNORE, p: float = 0.5):
        self.lo, self.hi, self.pad, self.ignore, self.p = lo, hi, tuple(pad), ignore, p

    def __call__(self, image, label, rng):
        if rng.random() >= self.p:
            return image, label
        angle = self.lo + (self.hi - self.lo) * rng.random()
        h, w = label.shape
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        image = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=self.pad)
        label = cv2.warpAffine(label, m, (w, h), flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=self.ignore)
        return image, label


class RandomGaussianBlur:
    """PFENet's blur: Gaussian kernel of `radius` pixels, image only, probability p."""

    def __init__(self, radius: int = 5, p: float = 0.5):
        self.radius, self.p = radius, p

    def __call__(self, image, label, rng):
        if rng.random() < self.p:
            image = cv2.GaussianBlur(image, (self.radius, self.radius), 0)
        return image, label


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, image, label, rng):
        if rng.random() < self.p:
            image, label = image[:, ::-1].copy(), label[:, ::-1].copy()
        return image, label


class Crop:
    """Pads (centred) to at least h x w with mean / ignore, then takes a random h x w window."""

    def __init__(self, h: int, w: int, pad=MEAN, ignore: int = IGNORE):
        self.h, self.w, self.pad, self.ignore = h, w, tuple(pad), ignore

    def __call__(self, image, label, rng):
        ph, pw = max(self.h - label.shape[0], 0), max(self.w - label.shape[1], 0)
        if ph or pw:
            t, l = ph // 2, pw // 2
            image = cv2.copyMakeBorder(image, t, ph - t, l, pw - l, cv2.BORDER_CONSTANT, value=self.pad)
            label = cv2.copyMakeBorder(label, t, ph - t, l, pw - l, cv2.BORDER_CONSTANT, value=self.ignore)
        y = int(rng.integers(0, label.shape[0] - self.h + 1))
        x = int(rng.integers(0, label.shape[1] - self.w + 1))
        return image[y:y + self.h, x:x + self.w], label[y:y + self.h, x:x + self.w]


def resized_hw(h: int, w: int, size: int) -> tuple[int, int]:
    """PFENet test geometry: longer side -> size, then both sides floored to a multiple of 8."""
    if h >= w:
        nh, nw = size, int(w * size / h)
    else:
        nh, nw = int(h * size / w), size
    return max(nh // 8 * 8, 8), max(nw // 8 * 8, 8)


class TestResize:
    """Resize into the top-left corner of a size x size square (image pad 0, label pad 255)."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, size: int, ignore: int = IGNORE):
        self.size, self.ignore = size, ignore

    def __call__(self, image, label, rng=None):
        nh, nw = resized_hw(label.shape[0], label.shape[1], self.size)
        out_img = np.zeros((self.size, self.size, 3), np.float32)
        out_lbl = np.full((self.size, self.size), self.ignore, np.uint8)
        out_img[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        out_lbl[:nh, :nw] = cv2.resize(label, (nw, nh), interpolation=cv2.INTER_NEAREST)
        return out_img, out_lbl


class ToTensor:
    """HWC float image -> [3, H, W] float tensor; label -> [H, W] long tensor."""

    def __call__(self, image, label, rng=None):
        img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
        return img, torch.from_numpy(label.astype(np.int64))


class Normalize:
    def __init__(self, mean=MEAN, std=STD):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, image, label, rng=None):
        return (image - self.mean) / self.std, label


def train_transform(cfg) -> Compose:
    """PFENet's training pipeline, sizes and ranges from the config."""
    return Compose([
        RandScale(cfg.scale_min, cfg.scale_max),
        RandRotate(cfg.rotate_min, cfg.rotate_max, MEAN, cfg.ignore_label),
        RandomGaussianBlur(),
        RandomHorizontalFlip(),
        Crop(cfg.train_h, cfg.train_w, MEAN, cfg.ignore_label),
        ToTensor(),
        Normalize(),
    ])


def test_transform(cfg) -> Compose:
    """PFENet's deterministic test pipeline: Resize to a val_size square, then normalise."""
    return Compose([TestResize(cfg.val_size, cfg.ignore_label), ToTensor(), Normalize()])


test_transform.__test__ = False  # a builder, not a pytest test, when imported into test modules
