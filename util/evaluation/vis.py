"""The paper's Fig. 5 row as one image: support+mask, query+GT, BG map, DO map, initial and
final prediction. Used by tensorboard, `test.py vis N` and predict.py."""
from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # tensors only pass through: the report reads the panel layout without loading torch
    import torch

MEAN = np.array([0.485, 0.456, 0.406]) * 255
STD = np.array([0.229, 0.224, 0.225]) * 255
TITLES = ("support", "query + GT", "BG map", "DO map", "initial", "final")
TITLE_HEIGHT = 16  # pixels of the band above each tile that holds its title


def to_rgb(image: torch.Tensor) -> np.ndarray:
    """[3,H,W] normalised tensor -> [H,W,3] uint8."""
    arr = image.detach().float().cpu().permute(1, 2, 0).numpy() * STD + MEAN
    return np.clip(arr, 0, 255).astype(np.uint8)


def overlay(rgb: np.ndarray, mask: np.ndarray, color=(255, 40, 40), alpha: float = 0.5) -> np.ndarray:
    """Tint mask==1 pixels; ignore (255) pixels are drawn white."""
    out = rgb.astype(np.float32)
    fg = mask == 1
    out[fg] = (1 - alpha) * out[fg] + alpha * np.array(color)
    out[mask == 255] = 255
    return out.astype(np.uint8)


def heat(prob: np.ndarray) -> np.ndarray:
    """[H,W] in [0,1] -> grey-to-yellow [H,W,3] uint8."""
    p = np.clip(prob, 0, 1)[..., None]
    return (p * np.array([255, 220, 0]) + (1 - p) * np.array([30, 30, 60])).astype(np.uint8)


def titled(tile: np.ndarray, title: str) -> np.ndarray:
    """`tile` under a dark band with `title` written in it (shrunk to fit narrow tiles)."""
    band = np.full((TITLE_HEIGHT, tile.shape[1], 3), 20, np.uint8)
    scale = 0.4
    width = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
    if width > tile.shape[1] - 4:
        scale *= (tile.shape[1] - 4) / width
    cv2.putText(band, title, (2, TITLE_HEIGHT - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([band, tile], axis=0)


def panel(query: torch.Tensor, support: torch.Tensor, support_mask: torch.Tensor,
          query_mask: torch.Tensor | None, maps: dict, index: int = 0) -> np.ndarray:
    """One episode of a batch as a row of six titled tiles [TITLE_HEIGHT + H, 6W, 3]; `maps` is
    predict_maps output."""
    q = to_rgb(query[index])
    gt = query_mask[index].cpu().numpy() if query_mask is not None else np.zeros(q.shape[:2], np.int64)
    tiles = [
        overlay(to_rgb(support[index, 0]), support_mask[index, 0].cpu().numpy(), (40, 200, 40)),
        overlay(q, gt, (40, 200, 40)),
        heat(maps["bg"][index, 0].float().cpu().numpy()),
        heat(maps["do"][index, 0].float().cpu().numpy()),
        overlay(q, maps["ini"][index].argmax(0).cpu().numpy()),
        overlay(q, maps["logits"][index].argmax(0).cpu().numpy()),
    ]
    return np.concatenate([titled(t, name) for t, name in zip(tiles, TITLES)], axis=1)
