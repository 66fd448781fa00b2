"""Training forms: the released code's BG loss, PCL and learning rate, and the paper's as switches.

The reference functions below are written from the released NTRENet's training code (loop per
image, as it is written there), independently of model/, and fed the same weights and inputs
as the training forward.
"""
import logging
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import train
from model import build_model
from model.ntrenet.bgmm import BGMM, bg_mining_loss
from util.config import SCHEMA, TRAINING_REFERENCES, dump_config, load_config

SIZE = 65  # feature size 9
GAP_EPS = 5e-4


@pytest.fixture(scope="module")
def shared_net():
    """Built once (release forms, the defaults); `forms` switches it and empties the bank."""
    return make_net()


def forms(net, norm="per_image", region="nearest", positive="support_mask"):
    net.bg_loss_norm, net.pcl.region, net.pcl.positive = norm, region, positive
    for buf in net.pcl.bank.buffers():
        buf.zero_()
    return net


def make_net():
    torch.manual_seed(0)
    cfg = load_config(None, ["pretrained", "false", "ppm_scales", "[8,4,2]", "reduce_dim", "32", "bg_dim", "16",
                             "feature_dropout", "0", "pcl_bank_size", "64", "pcl_samples", "64"])
    net = build_model(cfg)
    for m in net.modules():  # the heads' Dropout2d(0.1) too: the reference recomputes the same pass
        if isinstance(m, (nn.Dropout, nn.Dropout2d)):
            m.p = 0.0
    return calibrate(net.train())


@torch.no_grad()
def calibrate(net):
    """Shift the BG head's and the final head's biases so that, as in a trained model, BG and the
    target each cover part of the image (random heads predict one class everywhere, which would
    leave the DO regions and the query target prototype empty)."""
    q, s, sm, _, _ = episode(1)
    for head, key in ((net.bgmm.head[-1], "bg"), (net.fem.head[-1], "logits")):
        out = net._run(q, s, sm)
        logits = out.bg_query if key == "bg" else out.logits
        margin = (logits[:, 1] - logits[:, 0]).flatten().quantile(0.6 if key == "bg" else 0.7)
        head.bias[1] -= margin
    return net


def labels(b, offset):
    """Objects of unequal areas with 255 bands on their borders and a 255 strip on the right."""
    boxes = [(4, 60, 6, 58), (20, 30, 25, 33), (8, 30, 30, 62), (40, 62, 2, 20)]
    y = torch.zeros(b, SIZE, SIZE, dtype=torch.long)
    for i in range(b):
        t, bo, l, r = boxes[(i + offset) % len(boxes)]
        y[i, t:bo, l:r] = 1
        y[i, max(t - 2, 0):t, l:r] = 255
        y[i, t:bo, r:r + 2] = 255
        y[i, :, SIZE - 3 - i:] = 255
    return y


def episode(k):
    g = torch.Generator().manual_seed(3)
    b = 3
    q = torch.randn(b, 3, SIZE, SIZE, generator=g)
    s = torch.randn(b, k, 3, SIZE, SIZE, generator=g)
    support_masks = torch.stack([labels(b, 1 + j) for j in range(k)], dim=1)
    return q, s, support_masks, labels(b, 0), torch.tensor([0, 3, 0])


def up(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def weighted_gap(feat, mask):
    area = mask.sum(dim=(2, 3), keepdim=True) + GAP_EPS
    return (feat * mask).sum(dim=(2, 3), keepdim=True) / area


# ---------------------------------------------------------------- references (released code's forms)
def ref_bg_loss(bg_logits_per_group, label_groups, alpha=0.5):
    """Per group: per-image target term (sum over label == 1 of -log p(not BG), / (N_img + 1e-5)),
    averaged over the images, + alpha x mean over all pixels of -log p(BG); groups averaged."""
    total = 0.0
    for logits, y in zip(bg_logits_per_group, label_groups):
        logits = up(logits, y.shape[-2:])
        per_image = []
        for x, lab in zip(logits, y):
            ce0 = -torch.log_softmax(x, dim=0)[0]
            z = (lab == 1).float()
            per_image.append((z * ce0).sum() / (z.sum() + 1e-5))
        target = torch.stack(per_image).mean()
        all_bg = (-torch.log_softmax(logits, dim=1)[:, 1]).mean()
        total = total + target + alpha * all_bg
    return total / len(label_groups)


def nearest(y, size):
    """Nearest-resized label with 255 set to 0 (released PCL)."""
    y = F.interpolate(y[:, None].float(), size=size, mode="nearest")
    return torch.where(y == 255, torch.zeros_like(y), y)


def ref_pcl(xq, xs, logits, bg_q, bg_s, qm, sms, classes, bank):
    """Released PCL: DO region relu(1 - argmax(BG) - label), label nearest-resized with 255 -> 0;
    every image's DO prototype pushed before the loss (newest first); positive pooled from the
    support features over the nearest-resized mask (shots averaged); P^q over argmax(y^q);
    -log(exp(cos+) / sum exp(cos-) + 1e-8), averaged over the episodes."""
    size = xq.shape[-2:]
    y_q = nearest(qm, size)
    bank = {c: list(v) for c, v in bank.items()}
    new = {}
    do_q = torch.relu(1 - bg_q.argmax(1, keepdim=True).float() - y_q)
    for i, c in enumerate(classes.tolist()):
        new.setdefault(c, []).append(weighted_gap(xq[i:i + 1], do_q[i:i + 1]).flatten())
    positives = []
    for j in range(xs.shape[1]):
        y_s = nearest(sms[:, j], size)
        do_s = torch.relu(1 - bg_s[:, j].argmax(1, keepdim=True).float() - y_s)
        positives.append(weighted_gap(xs[:, j], y_s).flatten(1))
        for i, c in enumerate(classes.tolist()):
            new[c].append(weighted_gap(xs[i:i + 1, j], do_s[i:i + 1]).flatten())
    for c, protos in new.items():
        bank[c] = protos + bank.get(c, [])
    positive = torch.stack(positives).mean(0)
    pq = weighted_gap(xq, logits.argmax(1, keepdim=True).float()).flatten(1)
    loss = 0.0
    for i, c in enumerate(classes.tolist()):
        pos = torch.exp(F.cosine_similarity(pq[i], positive[i], dim=0))
        negs = torch.stack(bank[c])
        neg = torch.exp(F.cosine_similarity(pq[i][None], negs, dim=1)).sum()
        loss = loss - torch.log(pos / neg + 1e-8)
    return loss / len(classes), new


def ce_mean(logits, target):
    return F.cross_entropy(up(logits, target.shape[-2:]), target, ignore_index=255)


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("k", [1, 2])
def test_release_mode_losses_equal_the_released_formulas(k, shared_net):
    net = forms(shared_net)
    assert (net.bg_loss_norm, net.pcl.region, net.pcl.positive) == ("per_image", "nearest", "support_mask")
    q, s, sm, qm, classes = episode(k)
    g = torch.Generator().manual_seed(5)
    prefill = torch.randn(14, 32, generator=g).relu()
    prefill_classes = torch.tensor([0] * 9 + [3] * 5)
    net.pcl.bank.push(prefill, prefill_classes)
    bank = {c: [p for p, pc in zip(prefill, prefill_classes) if pc == c][::-1] for c in (0, 3)}  # newest first
    with torch.no_grad():
        _, losses = net(q, s, sm, query_mask=qm, classes=classes)
        out = net._run(q, s, sm)  # the same pass again (no dropout): the reference's inputs
        bg_s = net.bgmm(out.xs.flatten(0, 1)).unflatten(0, (3, k))           # [B,K,2,h,w]
    groups = [out.bg_query] + [bg_s[:, j] for j in range(k)]
    label_groups = [qm] + [sm[:, j] for j in range(k)]
    expected = {
        "main": ce_mean(out.logits, qm),
        "fem": sum(ce_mean(h, qm) for h in out.fem_heads) / len(out.fem_heads),
        "ini": sum(ce_mean(h, qm) for h in out.ini_heads) / len(out.ini_heads),
        "bg": ref_bg_loss(groups, label_groups),
    }
    expected["pcl"], pushed = ref_pcl(out.xq, out.xs, out.logits, out.bg_query, bg_s, qm, sm, classes, bank)
    for name, value in expected.items():
        assert losses[name].item() == pytest.approx(value.item(), rel=1e-5, abs=1e-6), name
    assert losses["total"].item() == pytest.approx(
        (expected["main"] + 0.6 * expected["ini"] + 0.4 * expected["fem"] + expected["bg"]
         + 0.01 * expected["pcl"]).item(), rel=1e-5)
    # the bank now holds what the released code pushes, empty DO regions included as zero vectors
    for c, protos in pushed.items():
        n_before = int((prefill_classes == c).sum())
        stored = net.pcl.bank.protos[c, n_before:int(net.pcl.bank.count[c])]
        assert stored.shape[0] == len(protos) == 2 * (1 + k) if c == 0 else len(protos) == 1 + k
        for p in protos:  # same set (the release orders queries first, this bank episode by episode)
            assert (stored - p).abs().amax(dim=1).min() < 1e-5


def test_inputs_exercise_the_differences(shared_net):
    """On these inputs each other form changes its term: the test above could not pass with them."""
    q, s, sm, qm, classes = episode(1)
    losses = {}
    for name, kwargs in (("release", {}), ("pooled", {"norm": "pooled"}), ("bilinear", {"region": "bilinear"}),
                         ("prototype", {"positive": "prototype"})):
        with torch.no_grad():
            _, losses[name] = forms(shared_net, **kwargs)(q, s, sm, query_mask=qm, classes=classes)
    release = losses["release"]
    assert abs(losses["pooled"]["bg"].item() - release["bg"].item()) > 1e-3
    assert abs(losses["bilinear"]["pcl"].item() - release["pcl"].item()) > 1e-4
    assert abs(losses["prototype"]["pcl"].item() - release["pcl"].item()) > 1e-4
    for other in ("pooled", "bilinear", "prototype"):
        for name in ("main", "fem", "ini"):
            assert losses[other][name].item() == pytest.approx(release[name].item(), rel=1e-6)


def test_bg_loss_norm_hand_case():
    """Two images, one target pixel in the first and three in the second."""
    p_bg = torch.tensor([[[0.2, 0.6, 0.9, 0.5]], [[0.3, 0.4, 0.1, 0.7]]])         # [2,1,4]
    logits = torch.stack([torch.zeros_like(p_bg), torch.log(p_bg / (1 - p_bg))], dim=1)  # [2,2,1,4]
    y = torch.tensor([[[1, 0, 255, 0]], [[1, 1, 1, 255]]])
    t0, t1 = -math.log(0.8), -(math.log(0.7) + math.log(0.6) + math.log(0.9))
    all_bg = -(sum(math.log(v) for v in [0.2, 0.6, 0.9, 0.5, 0.3, 0.4, 0.1, 0.7])) / 8
    per_image = (t0 / 1 + t1 / 3) / 2 + 0.5 * all_bg
    pooled = (t0 + t1) / 4 + 0.5 * all_bg
    assert bg_mining_loss(logits, y, alpha=0.5, norm="per_image").item() == pytest.approx(per_image, rel=1e-6)
    assert bg_mining_loss(logits, y, alpha=0.5, norm="pooled").item() == pytest.approx(pooled, rel=1e-6)
    with pytest.raises(ValueError, match="bg_loss_norm"):
        bg_mining_loss(logits, y, alpha=0.5, norm="batch")


@pytest.mark.parametrize("region,stored", [("bilinear", (3, 2)), ("nearest", (4, 2))])
def test_empty_negative_regions(shared_net, region, stored):
    """Query 0 has no non-target pixel: bilinear skips its negative, nearest stores it as zeros (released)."""
    net = forms(shared_net, region=region)
    q, s, sm, qm, classes = episode(1)
    qm_empty = qm.clone()
    qm_empty[0] = 1
    with torch.no_grad():
        _, losses = net(q, s, sm, query_mask=qm_empty, classes=classes)
    assert (int(net.pcl.bank.count[0]), int(net.pcl.bank.count[3])) == stored
    assert torch.isfinite(losses["pcl"]) and torch.isfinite(losses["bg"])
    if region == "nearest":
        assert (net.pcl.bank.protos[0, 0] == 0).all() and (net.pcl.bank.protos[0, 1:4].abs().sum(1) > 0).all()


def test_bg_init():
    assert (BGMM(feat_dim=8, bg_dim=640).prototype == 0).all()
    torch.manual_seed(0)
    p = BGMM(feat_dim=8, bg_dim=640, init="random").prototype
    assert p.shape == (1, 640, 1, 1) and 0.9 < p.std().item() < 1.1 and abs(p.mean().item()) < 0.1
    with pytest.raises(ValueError, match="bg_init"):
        BGMM(feat_dim=8, bg_dim=4, init="uniform")


def test_training_reference_preset():
    release, paper = TRAINING_REFERENCES["release"], TRAINING_REFERENCES["paper"]
    assert {k: SCHEMA[k].default for k in release} == release  # the schema defaults are the release's
    cfg = load_config(None, ["training_reference", "paper"])
    assert {k: cfg[k] for k in paper} == paper == {"bg_dim": 640, "bg_init": "random", "do_pooling": "masked",
                                                   "pcl_negative_region": "bilinear", "pcl_positive": "prototype"}
    explicit = load_config(None, ["training_reference", "paper", "bg_dim", "512", "pcl_positive", "support_mask"])
    assert (explicit.bg_dim, explicit.pcl_positive, explicit.bg_init) == (512, "support_mask", "random")
    # a file's key wins over the preset too; the Fig. 6 files set only the width
    fig6 = load_config("config/pascal/pascal_split1_resnet50_bg640.yaml", ["training_reference", "release"])
    assert (fig6.bg_dim, fig6.split, fig6.bg_init, fig6.pcl_negative_region) == (640, 1, "zeros", "nearest")


def test_preset_round_trip(tmp_path):
    cfg = load_config("config/pascal/pascal_split0_resnet50.yaml", ["training_reference", "paper", "bg_dim", "384"])
    dump_config(cfg, str(tmp_path / "config.yaml"))
    again = load_config(str(tmp_path / "config.yaml"))
    assert {k: again[k] for k in SCHEMA} == {k: cfg[k] for k in SCHEMA}


def test_shipped_configs_state_the_applied_rate():
    for path, rate in (("config/pascal/pascal_split0_resnet50.yaml", 0.3), ("config/coco/coco_split0_resnet50.yaml", 0.3),
                       ("config/pascal/pascal_split0_resnet50_scnet.yaml", 0.025),
                       ("config/coco/coco_split0_resnet50_scnet.yaml", 0.05),
                       ("config/toy/toy_split0_vgg.yaml", 0.001)):
        cfg = load_config(path)
        assert cfg.base_lr * cfg.scale_lr == pytest.approx(rate), path


def test_learning_rate_is_scaled_on_every_group_and_logged(caplog):
    """PFENet's poly_learning_rate(index_split=-1, scale_lr=10): lr x 10 on every group."""
    params = [nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(3))]
    opt = torch.optim.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=1.0)
    cfg = load_config(None, ["base_lr", "0.0025", "batch_size", "4"])
    assert train.set_learning_rate(opt, cfg, 0, 100) == [pytest.approx(0.025)] * 2
    assert train.set_learning_rate(opt, cfg, 50, 100) == [pytest.approx(0.025 * 0.5 ** 0.9)] * 2
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.025 * 0.5 ** 0.9)] * 2
    run = SimpleNamespace(cfg=cfg, opt=opt, iteration=0, max_iter=100)
    with caplog.at_level(logging.INFO, logger="train"):
        train.log_learning_rate(run, train.set_learning_rate(opt, cfg, 0, 100))
    text = caplog.text
    assert "iteration 1: learning rate applied to parameter group 0 (1 tensors) = 0.025 " in text
    assert "group 1 (1 tensors) = 0.025 = base_lr 0.0025 x scale_lr 10 x poly 1.000000" in text


def test_paper_preset_trains():
    """`training_reference paper`: D = 640, random P_BG, eq. 8 pooling, bilinear regions, P^s positive."""
    torch.manual_seed(0)
    cfg = load_config(None, ["training_reference", "paper", "pretrained", "false", "ppm_scales", "[8,4,2]",
                             "reduce_dim", "32", "pcl_bank_size", "16", "pcl_samples", "8"])
    net = build_model(cfg).train()
    assert net.bgmm.prototype.shape == (1, 640, 1, 1) and net.bgmm.prototype.abs().sum() > 0
    assert (net.doem.pooling, net.pcl.region, net.pcl.positive, net.bg_loss_norm) == \
        ("masked", "bilinear", "prototype", "per_image")
    q, s, sm, qm, classes = episode(1)
    _, losses = net(q, s, sm, query_mask=qm, classes=classes)
    losses["total"].backward()
    assert all(torch.isfinite(v) for v in losses.values()) and net.bgmm.prototype.grad.abs().sum() > 0
