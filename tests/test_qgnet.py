"""QGNet end to end at tiny sizes: the prior extractor pre-trains on unlabeled images (no label
file is ever opened), writes checkpoints and tensorboard events and resumes; its checkpoint
drives `model qgnet` (1- and 5-shot shapes and gradients) and the `qgnet_prior` channel of the
PFENet baseline and NTRENet."""
import os

import cv2
import numpy as np
import pytest
import torch

import pretrain_prior
import util.data.benchmarks as benchmarks
import util.data.dataset as dataset
import util.data.index as index
from model import build_model
from model.checkpoints.safe_load import load_file
from util.config import load_config
from util.errors import UserError
from tests.conftest import read_events

SIZE = 33


def _images(root, n=6):
    """n small images with a few coloured shapes, listed with label paths that do not exist."""
    rng = np.random.default_rng(0)
    os.makedirs(root / "img", exist_ok=True)
    lines = []
    for i in range(n):
        img = np.full((40, 48, 3), rng.integers(0, 255, 3), np.uint8)
        for _ in range(3):
            y, x = rng.integers(0, 30, 2)
            img[y:y + 12, x:x + 14] = rng.integers(0, 255, 3)
        cv2.imwrite(str(root / "img" / f"{i}.png"), img)
        lines.append(f"img/{i}.png missing_labels/{i}.png")
    (root / "train.txt").write_text("\n".join(lines) + "\n")


def _prior_overrides(root, out, *extra):
    return ["dataset", "pascal", "data_root", str(root), "train_list", str(root / "train.txt"), "backbone", "vgg",
            "pretrained", "false", "prior_crop", str(SIZE), "prior_batch_size", "2", "prior_epochs", "1",
            "prior_max_iters_per_epoch", "2", "prior_queue", "16", "prior_dim", "8", "prior_segments", "6",
            "prior_patches_per_image", "3", "num_workers", "0", "device", "cpu", "print_freq", "1",
            "save_path", str(out), *extra]


def _no_labels(monkeypatch):
    """Every way a label could be read raises: the label reader, the benchmarks' reader, and
    cv2/numpy reads of any path under missing_labels/."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a label was read: {args[:1]}")

    monkeypatch.setattr(index, "read_label", refuse)
    monkeypatch.setattr(benchmarks, "read_label", refuse)
    monkeypatch.setattr(dataset, "remap", refuse)
    real_imread, real_fromfile = cv2.imread, np.fromfile

    def imread(path, *args):
        if "missing_labels" in str(path):
            refuse(path)
        return real_imread(path, *args)

    def fromfile(path, *args, **kwargs):
        if "missing_labels" in str(path):
            refuse(path)
        return real_fromfile(path, *args, **kwargs)
    monkeypatch.setattr(cv2, "imread", imread)
    monkeypatch.setattr(np, "fromfile", fromfile)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """One finished tiny pre-training (VGG, SLIC patches): (data root, output folder)."""
    root = tmp_path_factory.mktemp("unlabeled")
    _images(root)
    out = root / "exp"
    mp = pytest.MonkeyPatch()
    try:
        _no_labels(mp)
        torch.manual_seed(0)
        assert pretrain_prior.main(["--config", "", *_prior_overrides(root, out)]) == 0
    finally:
        mp.undo()
    return root, out


def test_pretraining_reads_no_label_and_writes_checkpoints_and_events(pretrained):
    root, out = pretrained
    assert not (root / "missing_labels").exists()
    state = load_file(str(out / "model" / "prior.pth"))
    assert state["format"] == "qgnet-prior-extractor-v1" and state["epoch"] == 1 and state["iteration"] == 2
    assert any(k.startswith("encoder.layer4") for k in state["model"])
    assert int(state["model"]["global_queue.ptr"]) == 4                # 2 steps x 2 images pushed
    tags = {t for t, _, _ in read_events(str(out / "tb"))}
    assert {"loss/global", "loss/local", "loss/total", "lr"} <= tags
    values = {t: v for t, s, v in read_events(str(out / "tb")) if s == 1}
    assert values["loss/total"] == pytest.approx(values["loss/global"] + values["loss/local"], rel=1e-5)
    assert (out / "result" / "pretrain.log").is_file()


def test_pretraining_resumes_and_extends(pretrained, tmp_path, monkeypatch):
    root, out = pretrained
    _no_labels(monkeypatch)
    last = out / "model" / "last.pth"
    longer = tmp_path / "longer"
    args = _prior_overrides(root, longer, "prior_epochs", "2", "prior_max_iters_per_epoch", "1", "resume", str(last))
    assert pretrain_prior.main(["--config", "", *args]) == 0
    state = load_file(str(longer / "model" / "prior.pth"))
    assert state["epoch"] == 2 and state["iteration"] == 3


def test_pretraining_refuses_a_training_checkpoint_as_resume(pretrained, tmp_path):
    root, _ = pretrained
    bogus = tmp_path / "bogus.pth"
    torch.save({"format": "ntrenet-checkpoint-v1"}, bogus)
    with pytest.raises(UserError, match="not a prior extractor checkpoint"):
        pretrain_prior.main(["--config", "", *_prior_overrides(root, tmp_path / "o", "resume", str(bogus))])


def _net_cfg(prior_dir, *overrides):
    return load_config(None, ["dataset", "pascal", "backbone", "vgg", "pretrained", "false", "ppm_scales", "[4,2]",
                              "reduce_dim", "16", "pcl_bank_size", "16", "pcl_samples", "8", "prior_epochs", "1",
                              "qgnet_prior_weight", str(prior_dir / "model" / "prior.pth"), *overrides])


def _episode(b, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, s = torch.randn(b, 3, SIZE, SIZE, generator=g), torch.randn(b, k, 3, SIZE, SIZE, generator=g)
    sm = torch.zeros(b, k, SIZE, SIZE, dtype=torch.long)
    sm[..., 5:25, 8:28] = 1
    qm = torch.zeros(b, SIZE, SIZE, dtype=torch.long)
    qm[:, 10:30, 4:20] = 1
    return q, s, sm, qm, torch.arange(b) % 15


@pytest.mark.parametrize("shot", [1, 5])
def test_qgnet_shapes_and_gradients(pretrained, shot):
    _, out = pretrained
    torch.manual_seed(0)
    net = build_model(_net_cfg(out, "model", "qgnet", "shot", str(shot)))
    assert net.prior_region is not None and net.bgmm is None and net.pcl is None
    assert net.fm.merge[0][0].in_channels == 2 * 16 + 2               # bridge, guider, guided + prior region map
    b = 2 if shot == 1 else 1
    q, s, sm, qm, cls = _episode(b, shot)
    net.train()
    logits, losses = net(q, s, sm, query_mask=qm, classes=cls)
    assert logits.shape == (b, 2, SIZE, SIZE) and torch.isfinite(losses["total"])
    losses["total"].backward()
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in trainable)
    assert all(not p.requires_grad for p in net.prior_region.parameters())
    assert all(not p.requires_grad for p in net.backbone.parameters())
    net.eval()
    with torch.no_grad():
        maps = net.predict_maps(q, s, sm)
    assert maps["region"].shape == (b, 1, SIZE, SIZE)
    assert float(maps["region"].min()) >= 0 and float(maps["region"].max()) <= 1


def test_prior_extractor_weights_are_the_pretrained_encoder(pretrained):
    _, out = pretrained
    state = load_file(str(out / "model" / "prior.pth"))["model"]
    net = build_model(_net_cfg(out, "model", "qgnet"))
    own = net.prior_region.encoder.state_dict()
    assert own.keys() == {k[len("encoder."):] for k in state if k.startswith("encoder.")}
    assert all(torch.equal(own[k], state[f"encoder.{k}"]) for k in own)
    net.train()
    assert not net.prior_region.encoder.training                         # frozen BN even while training


def test_prior_channel_on_the_pfenet_baseline_and_ntrenet(pretrained):
    _, out = pretrained
    q, s, sm, qm, cls = _episode(1, 1)
    for model in ("pfenet", "ntrenet"):
        plain = build_model(_net_cfg(out, "model", model))
        guided = build_model(_net_cfg(out, "model", model, "qgnet_prior", "true"))
        assert plain.prior_region is None and guided.prior_region is not None
        assert guided.fm.merge[0][0].in_channels == plain.fm.merge[0][0].in_channels + 1
        guided.train()
        _, losses = guided(q, s, sm, query_mask=qm, classes=cls)
        losses["total"].backward()
        assert guided.fm.merge[0][0].weight.grad[:, -1].abs().sum() > 0   # the region channel is learned from


def test_region_map_reaches_the_head(pretrained):
    """Changing only the prior region map changes QGNet's prediction."""
    _, out = pretrained
    torch.manual_seed(0)
    net = build_model(_net_cfg(out, "model", "qgnet")).eval()
    q, s, sm, _, _ = _episode(1, 1)
    with torch.no_grad():
        a = net(q, s, sm)
        net.prior_region.forward = lambda query, bridge: torch.zeros(1, 1, *bridge.shape[-2:])
        b = net(q, s, sm)
    assert not torch.allclose(a, b)


def _unfinished(out, tmp_path):
    """The finished checkpoint relabelled as epoch 1 of a 2-epoch pre-training."""
    state = load_file(str(out / "model" / "prior.pth"))
    state["config"]["prior_epochs"] = 2
    path = tmp_path / "unfinished.pth"
    torch.save(state, path)
    return path


def test_qgnet_refuses_missing_or_mismatched_prior(pretrained, tmp_path):
    _, out = pretrained
    with pytest.raises(UserError, match="qgnet_prior_weight is empty"):
        build_model(_net_cfg(out, "model", "qgnet", "qgnet_prior_weight", ""))
    with pytest.raises(UserError, match="prior_patches"):
        build_model(_net_cfg(out, "model", "qgnet", "prior_patches", "felzenszwalb"))
    with pytest.raises(UserError, match="prior_epochs"):
        build_model(_net_cfg(out, "model", "qgnet", "prior_epochs", "3"))
    with pytest.raises(UserError, match="stopped after epoch 1 of 2"):
        build_model(_net_cfg(out, "model", "qgnet", "prior_epochs", "2",
                            "qgnet_prior_weight", str(_unfinished(out, tmp_path))))
    with pytest.raises(UserError, match="fixes it"):
        load_config(None, ["model", "qgnet", "qgnet_prior", "false"])
