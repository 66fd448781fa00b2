"""QGNet's pure functions against hand computations: the global and local contrastive losses
(eq. 1, 6, 7), patch pooling and choice, the key queue, the prior region map (eq. 9-12) and the
patch generators (SLIC, Felzenszwalb)."""
import math

import numpy as np
import pytest
import torch

from model.qgnet.contrastive import (combined_loss, global_contrastive_loss, info_nce, local_contrastive_loss,
                               patch_embeddings)
from model.qgnet.prior_extractor import Queue, choose_patches
from model.qgnet.prior_region import prior_region_map
from util.data.felzenszwalb import felzenszwalb
from util.data.slic import enforce_connectivity, slic


def _nce(pos: float, negs: list[float], t: float) -> float:
    """-log exp(pos/t) / (exp(pos/t) + sum exp(neg/t)), written out."""
    return -math.log(math.exp(pos / t) / (math.exp(pos / t) + sum(math.exp(n / t) for n in negs)))


def test_info_nce_one_row_by_hand():
    q, k = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    # logits / t = [1, 0, -1] / 0.5
    assert info_nce(q, k, queue, 0.5).item() == pytest.approx(_nce(1.0, [0.0, -1.0], 0.5), rel=1e-6)


def test_global_loss_pairs_rows_of_the_same_image_and_normalises():
    s = math.sqrt(0.5)
    q = torch.tensor([[2.0, 0.0], [0.0, 3.0]])           # unit after normalising: (1,0), (0,1)
    k = torch.tensor([[3.0, 4.0], [0.0, -1.0]])          # (0.6,0.8), (0,-1)
    queue = torch.tensor([[s, s]])
    t = 0.2
    row0 = _nce(0.6, [s], t)                             # q0.k0 = 0.6, q0.queue = s
    row1 = _nce(-1.0, [s], t)                            # q1.k1 = -1, q1.queue = s
    assert global_contrastive_loss(q, k, queue, t).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)
    # the positive is the key of the same row: swapping the keys gives the swapped pairs' value
    swapped = (_nce(0.0, [s], t) + _nce(0.8, [s], t)) / 2  # q0.k1 = 0, q1.k0 = 0.8
    assert global_contrastive_loss(q, k.flip(0), queue, t).item() == pytest.approx(swapped, rel=1e-6)


def test_other_keys_of_the_batch_are_not_negatives_only_the_queue():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    queue = torch.zeros(0, 2)
    # no negatives: every row's loss is -log 1 = 0, whatever the other rows are
    assert global_contrastive_loss(q, q, queue, 0.2).item() == pytest.approx(0.0, abs=1e-7)


def test_patch_embeddings_mean_over_each_patch_by_hand():
    # feature map 2x2 with 2 channels; input patch map 4x4 -> each feature cell covers a 2x2 block
    feats = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]]]])  # [1,2,2,2]
    patches = torch.tensor([[[0, 0, 1, 1],
                             [0, 0, 1, 1],
                             [0, 0, 0, 1],
                             [2, 0, 0, 1]]])
    rows = torch.tensor([[0, 0], [0, 1], [0, 2]])
    emb = patch_embeddings(feats, patches, rows)
    # patch 0: cell(0,0) 4/4, cell(1,0) 3/4, cell(1,1) 2/4 -> weights 1, .75, .5 on features 1, 3, 4
    w = (1.0, 0.75, 0.5)
    exp0 = [(1 * w[0] + 3 * w[1] + 4 * w[2]) / sum(w), (10 * w[0] + 30 * w[1] + 40 * w[2]) / sum(w)]
    # patch 1: cell(0,1) 4/4, cell(1,1) 2/4
    exp1 = [(2 + 4 * 0.5) / 1.5, (20 + 40 * 0.5) / 1.5]
    # patch 2: cell(1,0) 1/4 only
    assert emb.flatten().tolist() == pytest.approx(exp0 + exp1 + [3.0, 30.0], rel=1e-6)


def test_local_loss_positive_is_the_same_patch_in_the_other_view():
    # view 1 and view 2 show patches 0 and 1 in swapped places: pooling follows the id, not the place
    f1 = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])     # [1,2,1,2]: left (1,0), right (0,1)
    f2 = torch.tensor([[[[0.0, 1.0]], [[1.0, 0.0]]]])     # left (0,1), right (1,0)
    p1 = torch.tensor([[[0, 1]]])
    p2 = torch.tensor([[[1, 0]]])
    rows = choose_patches(p1, p2, per_image=8)
    assert rows.tolist() == [[0, 0], [0, 1]]
    q, k = patch_embeddings(f1, p1, rows), patch_embeddings(f2, p2, rows)
    assert torch.equal(q, k)                              # patch 0 is (1,0) in both views, patch 1 is (0,1)
    queue = torch.tensor([[0.0, 1.0]])
    t = 0.5
    expected = (_nce(1.0, [0.0], t) + _nce(1.0, [1.0], t)) / 2
    assert local_contrastive_loss(q, k, queue, t).item() == pytest.approx(expected, rel=1e-6)


def test_choose_patches_keeps_patches_seen_in_both_views_and_caps_them():
    p1 = torch.tensor([[[0, 1, 2, -1]], [[5, 5, 6, 7]]])
    p2 = torch.tensor([[[2, 1, 3, -1]], [[7, 6, 5, 9]]])
    rows = choose_patches(p1, p2, per_image=8)
    assert rows.tolist() == [[0, 1], [0, 2], [1, 5], [1, 6], [1, 7]]
    capped = choose_patches(p1, p2, per_image=2, generator=torch.Generator().manual_seed(0))
    assert (capped[:, 0] == 1).sum() == 2 and (capped[:, 0] == 0).sum() == 2
    assert set(map(tuple, capped.tolist())) <= set(map(tuple, rows.tolist()))


def test_combined_loss_is_the_sum_or_one_term():
    g, l = torch.tensor(1.5), torch.tensor(0.25)
    assert combined_loss(g, l, True, True).item() == 1.75          # eq. 7
    assert combined_loss(g, l, True, False).item() == 1.5
    assert combined_loss(g, l, False, True).item() == 0.25


def test_queue_replaces_the_oldest_keys_and_wraps():
    queue = Queue(3, 2)
    queue.push(torch.tensor([[1.0, 0.0], [2.0, 0.0]]))
    queue.push(torch.tensor([[3.0, 0.0], [4.0, 0.0]]))
    assert queue.keys[:, 0].tolist() == [4.0, 2.0, 3.0] and int(queue.ptr) == 1


def test_prior_region_map_by_hand():
    s = math.sqrt(0.5)
    bridge = torch.tensor([[[[1.0, 0.0, -1.0]], [[0.0, 2.0, 0.0]]]])   # pixels (1,0), (0,2), (-1,0)
    prior = torch.tensor([[[[3.0, 1.0]], [[0.0, 1.0]]]])                 # pixels (3,0), (1,1)
    # best cosines: 1, s, -s -> min-max: 1, (s + s) / (1 + s), 0
    out = prior_region_map(bridge, prior)
    assert out.shape == (1, 1, 1, 3)
    assert out.flatten().tolist() == pytest.approx([1.0, 2 * s / (1 + s), 0.0], abs=1e-6)


def test_prior_region_map_uses_every_prior_pixel_of_the_image_only():
    bridge = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]], [[[1.0, 0.0]], [[0.0, 1.0]]]])
    prior = torch.tensor([[[[1.0]], [[0.0]]], [[[0.0]], [[1.0]]]])       # image 0 prior (1,0), image 1 (0,1)
    out = prior_region_map(bridge, prior).flatten(1)
    assert out[0].tolist() == pytest.approx([1.0, 0.0], abs=1e-6)
    assert out[1].tolist() == pytest.approx([0.0, 1.0], abs=1e-6)


def _three_regions() -> np.ndarray:
    img = np.zeros((40, 48, 3), np.float32)
    img[:, 24:] = (255, 0, 0)
    img[20:, :24] = (0, 0, 255)
    return img


def test_slic_patches_never_cross_a_colour_edge():
    img = _three_regions()
    ids = slic(img, segments=12, compactness=10.0)
    assert ids.shape == img.shape[:2] and ids.min() == 0
    assert 6 <= ids.max() + 1 <= 16
    for k in range(ids.max() + 1):
        assert len(np.unique(img[ids == k].reshape(-1, 3), axis=0)) == 1


def test_felzenszwalb_finds_the_three_regions_without_smoothing():
    ids = felzenszwalb(_three_regions(), scale=300.0, sigma=0.0, min_size=20)
    assert ids.max() + 1 == 3
    assert np.bincount(ids.ravel()).tolist() == [480, 960, 480]


def test_enforce_connectivity_splits_pieces_and_merges_small_ones():
    labels = np.array([[0, 0, 1, 0],
                       [0, 0, 1, 0],
                       [1, 1, 1, 0]])
    out = enforce_connectivity(labels, min_size=1)
    assert out.max() + 1 == 3          # label 0 is two pieces, label 1 one
    out = enforce_connectivity(labels, min_size=4)
    assert out.max() + 1 == 2          # the 3-pixel piece of label 0 joins the largest neighbour
