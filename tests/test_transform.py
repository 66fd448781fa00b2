"""Joint transforms: mask values, shapes, padding values, test-time geometry, determinism."""
import numpy as np
import pytest
import torch

from util.config import load_config
from util.data.transform import (MEAN, STD, Crop, RandRotate, RandScale, TestResize, resized_hw,
                            test_transform, train_transform)


def _sample(h=40, w=56, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
    label = rng.choice(np.array([0, 1, 255], np.uint8), size=(h, w))
    return image, label


def _cfg(size=33):
    return load_config(None, ["train_h", str(size), "train_w", str(size), "val_size", str(size)])


def test_train_transform_shapes_values_and_determinism():
    image, label = _sample()
    t = train_transform(_cfg())
    outs = [t(image, label, np.random.default_rng(7)) for _ in range(2)]
    img, lbl = outs[0]
    assert img.shape == (3, 33, 33) and img.dtype == torch.float32
    assert lbl.shape == (33, 33) and lbl.dtype == torch.long
    assert set(torch.unique(lbl).tolist()) <= {0, 1, 255}
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    for seed in range(10):  # labels stay in {0,1,255} whatever the draws
        _, lbl = t(image, label, np.random.default_rng(seed))
        assert set(torch.unique(lbl).tolist()) <= {0, 1, 255}


def test_scale_is_nearest_for_labels():
    image, label = _sample()
    _, lbl = RandScale(1.37, 1.37)(image, label, np.random.default_rng(0))
    assert lbl.shape == (55, 77) and set(np.unique(lbl)) <= {0, 1, 255}


def test_rotate_pads_image_with_mean_and_label_with_255():
    image, label = np.full((41, 41, 3), 10, np.float32), np.ones((41, 41), np.uint8)
    img, lbl = RandRotate(30, 30, p=1.0)(image, label, np.random.default_rng(0))
    assert lbl[0, 0] == 255 and lbl[20, 20] == 1
    np.testing.assert_allclose(img[0, 0], MEAN, atol=1e-3)


def test_crop_pads_small_images():
    image, label = np.full((10, 12, 3), 5, np.float32), np.ones((10, 12), np.uint8)
    img, lbl = Crop(17, 17)(image, label, np.random.default_rng(0))
    assert img.shape == (17, 17, 3) and lbl.shape == (17, 17)
    assert (lbl == 255).sum() == 17 * 17 - 10 * 12 and (lbl == 1).sum() == 120
    np.testing.assert_allclose(img[lbl == 255], np.broadcast_to(MEAN, ((lbl == 255).sum(), 3)), atol=1e-3)


@pytest.mark.parametrize("h,w,size,expect", [(50, 100, 97, (48, 96)), (100, 50, 97, (96, 48)),
                                             (375, 500, 473, (352, 472)), (30, 30, 33, (32, 32))])
def test_resized_hw(h, w, size, expect):
    assert resized_hw(h, w, size) == expect
    assert all(v % 8 == 0 for v in resized_hw(h, w, size))


def test_test_resize_top_left_with_padding():
    image, label = np.full((50, 100, 3), 200, np.float32), np.ones((50, 100), np.uint8)
    img, lbl = TestResize(97)(image, label)
    assert img.shape == (97, 97, 3) and lbl.shape == (97, 97)
    assert (lbl[:48, :96] == 1).all() and (lbl[48:] == 255).all() and (lbl[:, 96:] == 255).all()
    assert (img[:48, :96] == 200).all() and (img[48:] == 0).all() and (img[:, 96:] == 0).all()


def test_test_transform_normalises_padding():
    image, label = _sample(20, 40)
    img, lbl = test_transform(_cfg(33))(image, label)
    pad = (-torch.tensor(MEAN) / torch.tensor(STD)).view(3, 1)
    assert img.shape == (3, 33, 33) and lbl.shape == (33, 33)
    assert torch.allclose(img[:, 32, :], pad.expand(3, 33), atol=1e-5)  # bottom row is padding
    assert (lbl[16:] == 255).all() and set(torch.unique(lbl).tolist()) <= {0, 1, 255}
