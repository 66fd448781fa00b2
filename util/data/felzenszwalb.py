"""Felzenszwalb-Huttenlocher graph segmentation ("Efficient graph-based image segmentation"),
the alternative patch generator of the prior extractor ("Few-Shot Segmentation with Global and
Local Contrastive Learning", Sec. IV-A2, Algorithm 1; Table V).

Pixels are vertices, 8-neighbour edges weigh the colour difference of the (Gaussian-smoothed)
pixels; edges are visited by increasing weight and merge two components when the weight is at
most both components' internal difference MInt = max edge inside + k / size. Components under
`min_size` pixels are then merged along the lightest edges. Written with numpy only.
"""
from __future__ import annotations

import cv2
import numpy as np

from util.data.slic import enforce_connectivity


def felzenszwalb(image: np.ndarray, scale: float, sigma: float = 0.8, min_size: int = 20) -> np.ndarray:
    """image [H,W,3] RGB (0-255) -> int64 [H,W] component ids 0..n-1."""
    h, w = image.shape[:2]
    smooth = cv2.GaussianBlur(image.astype(np.float32), (0, 0), sigma) if sigma > 0 else image.astype(np.float32)
    src, dst, weight = _edges(smooth)
    order = np.argsort(weight, kind="stable")
    parent = np.arange(h * w)
    size = np.ones(h * w, np.int64)
    threshold = np.full(h * w, float(scale))  # MInt of a single pixel: 0 + k / 1

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(a: int, b: int) -> int:
        if size[a] < size[b]:
            a, b = b, a
        parent[b] = a
        size[a] += size[b]
        return a

    for e in order:
        a, b = find(int(src[e])), find(int(dst[e]))
        if a != b and weight[e] <= min(threshold[a], threshold[b]):
            root = union(a, b)
            threshold[root] = weight[e] + scale / size[root]
    for e in order:  # small components join along the lightest edge first
        a, b = find(int(src[e])), find(int(dst[e]))
        if a != b and (size[a] < min_size or size[b] < min_size):
            union(a, b)
    roots = np.array([find(i) for i in range(h * w)]).reshape(h, w)
    return enforce_connectivity(roots, min_size=1)


def _edges(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-neighbour edges (right, down, down-right, down-left) as (src, dst, colour distance)."""
    h, w = image.shape[:2]
    idx = np.arange(h * w).reshape(h, w)
    pairs = [((slice(None), slice(0, -1)), (slice(None), slice(1, None))),
             ((slice(0, -1), slice(None)), (slice(1, None), slice(None))),
             ((slice(0, -1), slice(0, -1)), (slice(1, None), slice(1, None))),
             ((slice(0, -1), slice(1, None)), (slice(1, None), slice(0, -1)))]
    src, dst, weight = [], [], []
    for a, b in pairs:
        src.append(idx[a].ravel())
        dst.append(idx[b].ravel())
        weight.append(np.sqrt(((image[a] - image[b]) ** 2).sum(-1)).ravel())
    return np.concatenate(src), np.concatenate(dst), np.concatenate(weight)
