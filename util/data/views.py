"""MoCo v2's augmentations for the prior extractor ("Few-Shot Segmentation with Global and Local
Contrastive Learning", Sec. V-A: blur, colour distortion, random crop, random flip, following
"Improved baselines with momentum contrastive learning").

One view = random resized crop (area 0.2-1, aspect 3/4-4/3), horizontal flip (0.5), colour
jitter (brightness/contrast/saturation 0.4, hue 0.1, applied with probability 0.8, in a random
order), greyscale (0.2), Gaussian blur with sigma in [0.1, 2] (0.5). The image's patch map goes
through the same crop and flip (nearest neighbour), so a patch id names the same image region in
both views. Every draw comes from the generator passed in.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from util.data.transform import MEAN, STD

JITTER = (0.4, 0.4, 0.4, 0.1)   # brightness, contrast, saturation, hue
P_JITTER, P_GREY, P_BLUR, P_FLIP = 0.8, 0.2, 0.5, 0.5
BLUR_SIGMA = (0.1, 2.0)
RATIO = (3 / 4, 4 / 3)


def crop_box(h: int, w: int, rng: np.random.Generator, scale_min: float) -> tuple[int, int, int, int]:
    """(y, x, height, width) of a random resized crop (torchvision's rule: 10 tries, then the centre)."""
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(scale_min, 1.0)
        ratio = math.exp(rng.uniform(math.log(RATIO[0]), math.log(RATIO[1])))
        cw, ch = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    side = min(h, w)
    return (h - side) // 2, (w - side) // 2, side, side


def colour_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, saturation and hue factors drawn as torchvision's ColorJitter, in a random order."""
    b, c, s, hue = JITTER
    out = image
    for op in rng.permutation(4):
        if op == 0:
            out = out * rng.uniform(1 - b, 1 + b)
        elif op == 1:
            grey = _grey(out).mean()
            out = (out - grey) * rng.uniform(1 - c, 1 + c) + grey
        elif op == 2:
            grey = _grey(out)[..., None]
            out = (out - grey) * rng.uniform(1 - s, 1 + s) + grey
        else:
            hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
            hsv[..., 0] = (hsv[..., 0] + 360.0 * rng.uniform(-hue, hue)) % 360.0
            out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0
        out = np.clip(out, 0, 255)
    return out.astype(np.float32)


def _grey(image: np.ndarray) -> np.ndarray:
    return image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114


def augmented_view(image: np.ndarray, patches: np.ndarray, size: int, rng: np.random.Generator,
                   scale_min: float) -> tuple[torch.Tensor, torch.Tensor]:
    """image [H,W,3] RGB 0..255, patches [H,W] ids -> normalised [3,size,size], patch ids [size,size] long."""
    y, x, ch, cw = crop_box(*image.shape[:2], rng, scale_min)
    view = cv2.resize(image[y:y + ch, x:x + cw], (size, size), interpolation=cv2.INTER_LINEAR)
    ids = cv2.resize(patches[y:y + ch, x:x + cw].astype(np.int32), (size, size), interpolation=cv2.INTER_NEAREST)
    if rng.random() < P_FLIP:
        view, ids = view[:, ::-1], ids[:, ::-1]
    if rng.random() < P_JITTER:
        view = colour_jitter(view, rng)
    if rng.random() < P_GREY:
        view = np.repeat(_grey(view)[..., None], 3, axis=2)
    if rng.random() < P_BLUR:
        view = cv2.GaussianBlur(np.ascontiguousarray(view, dtype=np.float32), (0, 0), rng.uniform(*BLUR_SIGMA))
    tensor = torch.from_numpy(np.ascontiguousarray(view.transpose(2, 0, 1), dtype=np.float32))
    mean, std = (torch.tensor(v, dtype=torch.float32).view(3, 1, 1) for v in (MEAN, STD))
    return (tensor - mean) / std, torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64))
