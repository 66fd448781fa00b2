"""SLIC superpixels (Achanta et al., "SLIC superpixels compared to state-of-the-art superpixel
methods"), the patch generator of the prior extractor's local contrastive loss ("Few-Shot
Segmentation with Global and Local Contrastive Learning", Sec. IV-A2, Algorithm 2, eq. 2-5).

Pixels are points in labxy; K centres start on a grid of step S = sqrt(N / K), move to the
lowest gradient (eq. 5) in their 3 x 3 neighbourhood, then each pixel joins the nearest centre
within 2S x 2S under D = D_lab + D_xy / S * m (eq. 2-4) and centres move to their members'
mean until the centres stop moving. Disconnected leftovers join the largest neighbouring
superpixel. Written with numpy only so the project needs no image-processing package.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

SRGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                        [0.019334, 0.119193, 0.950227]], np.float32)
WHITE_D65 = np.array([0.950456, 1.0, 1.088754], np.float32)


def slic(image: np.ndarray, segments: int, compactness: float, iterations: int = 10,
         tolerance: float = 0.1) -> np.ndarray:
    """image [H,W,3] RGB (0-255) -> int64 [H,W] superpixel ids 0..n-1 (n close to `segments`)."""
    h, w = image.shape[:2]
    lab = rgb_to_lab(image)
    step = max(1, int(round(np.sqrt(h * w / max(1, segments)))))
    centres = _initial_centres(lab, step)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    labels = np.zeros((h, w), np.int64)
    for _ in range(iterations):
        dist = np.full((h, w), np.inf, np.float32)
        for k, (l, a, b, cy, cx) in enumerate(centres):
            y0, y1 = max(0, int(cy) - step), min(h, int(cy) + step + 1)
            x0, x1 = max(0, int(cx) - step), min(w, int(cx) + step + 1)
            d_lab = np.sqrt(((lab[y0:y1, x0:x1] - (l, a, b)) ** 2).sum(-1))                      # eq. 3
            d_xy = np.sqrt((yy[y0:y1, x0:x1] - cy) ** 2 + (xx[y0:y1, x0:x1] - cx) ** 2)     # eq. 4
            d = d_lab + d_xy / step * compactness                                           # eq. 2
            better = d < dist[y0:y1, x0:x1]
            dist[y0:y1, x0:x1][better] = d[better]
            labels[y0:y1, x0:x1][better] = k
        moved = _update_centres(centres, labels, lab, yy, xx)
        if moved <= tolerance:
            break
    return enforce_connectivity(labels, min_size=max(1, h * w // (4 * len(centres))))


def rgb_to_lab(image: np.ndarray) -> np.ndarray:
    """RGB 0..255 -> CIE Lab (D65; L 0..100), the colour space of eq. 3."""
    rgb = np.clip(image, 0, 255).astype(np.float32) / 255.0
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = linear @ SRGB_TO_XYZ.T / WHITE_D65
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])],
                    axis=-1).astype(np.float32)


def _initial_centres(lab: np.ndarray, step: int) -> np.ndarray:
    """Grid centres moved to the lowest gradient of eq. 5 within 3 x 3 -> [K,5] (l, a, b, y, x)."""
    h, w = lab.shape[:2]
    pad = np.pad(lab, ((1, 1), (1, 1), (0, 0)), mode="edge")
    grad = ((pad[1:-1, 2:] - pad[1:-1, :-2]) ** 2).sum(-1) + ((pad[2:, 1:-1] - pad[:-2, 1:-1]) ** 2).sum(-1)
    out = []
    for cy in range(step // 2, h, step):
        for cx in range(step // 2, w, step):
            y0, x0 = max(0, cy - 1), max(0, cx - 1)
            win = grad[y0:cy + 2, x0:cx + 2]
            dy, dx = np.unravel_index(int(np.argmin(win)), win.shape)
            y, x = y0 + dy, x0 + dx
            out.append([*lab[y, x], y, x])
    return np.asarray(out, np.float32)


def _update_centres(centres: np.ndarray, labels: np.ndarray, lab: np.ndarray, yy: np.ndarray,
                    xx: np.ndarray) -> float:
    """Centres to their members' mean labxy (in place); returns the largest xy move (residual E)."""
    k = len(centres)
    flat = labels.ravel()
    count = np.bincount(flat, minlength=k).astype(np.float32)
    feats = np.concatenate([lab.reshape(-1, 3), yy.reshape(-1, 1), xx.reshape(-1, 1)], axis=1)
    sums = np.stack([np.bincount(flat, weights=feats[:, c], minlength=k) for c in range(5)], axis=1)
    keep = count > 0
    new = centres.copy()
    new[keep] = sums[keep] / count[keep, None]
    moved = float(np.abs(new[:, 3:] - centres[:, 3:]).max()) if k else 0.0
    centres[:] = new
    return moved


def enforce_connectivity(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Every connected piece of a label becomes its own patch; pieces under `min_size` pixels join
    the largest neighbouring patch. Returns ids 0..n-1 in order of first appearance."""
    pieces = np.zeros(labels.shape, np.int64)
    n = 0
    for value in np.unique(labels):
        comp, count = ndimage.label(labels == value)
        pieces[comp > 0] = comp[comp > 0] + n - 1
        n += count
    sizes = np.bincount(pieces.ravel(), minlength=n)
    boxes = [[b[0].start, b[0].stop, b[1].start, b[1].stop] for b in ndimage.find_objects(pieces + 1)]
    h, w = labels.shape
    for piece in np.argsort(sizes):
        if sizes[piece] >= min_size or sizes[piece] == 0:
            continue
        y0, y1, x0, x1 = boxes[piece]
        y0, x0, y1, x1 = max(0, y0 - 1), max(0, x0 - 1), min(h, y1 + 1), min(w, x1 + 1)
        window = pieces[y0:y1, x0:x1]                          # the piece's box and a 1-pixel ring
        mask = window == piece
        neighbours = np.unique(window[ndimage.binary_dilation(mask) & ~mask])
        if len(neighbours) == 0:
            continue
        target = neighbours[np.argmax(sizes[neighbours])]
        window[mask] = target
        sizes[target] += sizes[piece]
        sizes[piece] = 0
        t = boxes[target]
        boxes[target] = [min(t[0], y0), max(t[1], y1), min(t[2], x0), max(t[3], x1)]
    _, first = np.unique(pieces.ravel(), return_index=True)
    order = pieces.ravel()[np.sort(first)]
    remap = np.zeros(n, np.int64)
    remap[order] = np.arange(len(order))
    return remap[pieces]
