"""HSNet at small sizes: the center-pivot 4D convolution against its definition computed position
by position, shapes and gradients for 1-way and 2-way episodes, K shots, the support mask's
effect, and strict loading of a checkpoint in the release's layout (key names and shapes of the
released model in tests/fixtures/hsnet_release_layout.json), refusal of other layouts."""
import itertools
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from model import build_model, load_weights
from model.fscs.conv4d import CenterPivotConv4d
from model.fscs.ifsl import fscs_predict
from model.fscs.asnet import ASNet
from model.fscs.hsnet import HSNet
from util.config import ConfigError, load_config
from util.errors import UserError
from util.report.fscs import _reference, method_name
from util.report.load import variant_of

LAYOUT = json.loads((Path(__file__).parent / "fixtures" / "hsnet_release_layout.json").read_text())
SIZE = 41


def _cfg(*extra):
    return load_config(None, ["model", "hsnet", "pretrained", "false", "dataset", "toy", *extra])


def _loop_center_pivot(conv: CenterPivotConv4d, x: torch.Tensor) -> torch.Tensor:
    """The definition, one output position at a time: the query-plane kernel at the pivot support
    position plus the support-plane kernel at the pivot query position, zero padding."""
    w1, b1, w2, b2 = conv.conv1.weight, conv.conv1.bias, conv.conv2.weight, conv.conv2.bias
    stride = conv.query_stride + conv.support_stride
    k = tuple(w1.shape[-2:]) + tuple(w2.shape[-2:])
    size = x.shape[2:]
    out_size = [(n + 2 * (kk // 2) - kk) // s + 1 for n, kk, s in zip(size, k, stride)]
    out = torch.zeros(x.shape[0], w1.shape[0], *out_size)

    def at(pos):
        inside = all(0 <= p < n for p, n in zip(pos, size))
        return x[(slice(None), slice(None), *pos)] if inside else torch.zeros(x.shape[:2])

    for o in itertools.product(*(range(n) for n in out_size)):
        c = [p * s for p, s in zip(o, stride)]  # pivot in the input
        acc = b1 + b2
        for a in range(k[0]):
            for b in range(k[1]):
                acc = acc + at((c[0] + a - k[0] // 2, c[1] + b - k[1] // 2, c[2], c[3])) @ w1[:, :, a, b].T
        for d in range(k[2]):
            for e in range(k[3]):
                acc = acc + at((c[0], c[1], c[2] + d - k[2] // 2, c[3] + e - k[3] // 2)) @ w2[:, :, d, e].T
        out[(slice(None), slice(None), *o)] = acc
    return out


@pytest.mark.parametrize("kernel,stride", [((3, 3, 3, 3), (1, 1, 2, 2)), ((3, 1, 5, 3), (1, 1, 1, 1)),
                                           ((3, 3, 5, 5), (2, 1, 4, 2))])
def test_center_pivot_conv4d_matches_its_definition(kernel, stride):
    torch.manual_seed(0)
    conv = CenterPivotConv4d(2, 3, kernel, stride)
    x = torch.randn(2, 2, 4, 3, 5, 6)
    with torch.no_grad():
        y, ref = conv(x), _loop_center_pivot(conv, x)
    assert y.shape == ref.shape
    assert torch.allclose(y, ref, atol=1e-5)


def test_center_pivot_conv4d_by_hand():
    """One channel, 3x3x3x3 kernel of ones on both planes, input one at a single position:
    every output within the query or support cross around it sees it once, the pivot twice."""
    conv = CenterPivotConv4d(1, 1, (3, 3, 3, 3), (1, 1, 1, 1), bias=False)
    with torch.no_grad():
        conv.conv1.weight.fill_(1.0)
        conv.conv2.weight.fill_(1.0)
    x = torch.zeros(1, 1, 3, 3, 3, 3)
    x[0, 0, 1, 1, 1, 1] = 1.0
    with torch.no_grad():
        y = conv(x)[0, 0]
    assert y[1, 1, 1, 1] == 2.0  # both planes
    assert y[0, 2, 1, 1] == 1.0 and y[1, 1, 2, 0] == 1.0  # query plane, support plane
    assert y[0, 0, 0, 0] == 0.0 and y.sum() == 2.0 + 8 + 8
    with pytest.raises(ValueError, match="4 odd kernel sizes"):
        CenterPivotConv4d(1, 1, (3, 3, 2, 2), (1, 1, 1, 1))


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return build_model(_cfg())


@pytest.fixture(scope="module")
def episode():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 3, SIZE, SIZE, generator=g)
    s = torch.randn(1, 2, 2, 3, SIZE, SIZE, generator=g)
    m = torch.zeros(1, 2, 2, SIZE, SIZE, dtype=torch.long)
    m[..., :30, :26] = 1  # reaches a corner: at this size the stage-4 support map is 2x2 corner samples
    m[..., 40, 40] = 255  # ignore pixels count as background of the support
    return q, s, m


@pytest.mark.parametrize("way", [1, 2])
def test_hsnet_shapes(net, episode, way):
    assert isinstance(net, HSNet) and not any(p.requires_grad for p in net.backbone.parameters())
    q, s, m = episode
    net.eval()
    with torch.no_grad():
        fg = net(q, s[:, :way, :1], m[:, :way, :1])
    assert fg.shape == (1, way, 2, SIZE, SIZE) and (fg <= 0).all()
    assert torch.allclose(fg.exp().sum(dim=2), torch.ones(1, way, SIZE, SIZE), atol=1e-5)
    presence, merged = fscs_predict(fg)
    assert presence.shape == (1, way) and merged.shape == (1, way + 1, SIZE, SIZE)


def test_k_shots_average_the_shots_log_probabilities(net, episode):
    q, s, m = episode
    net.eval()
    with torch.no_grad():
        both = net(q, s, m)
        one, two = (net(q, s[:, :, k:k + 1], m[:, :, k:k + 1]) for k in (0, 1))
    assert torch.allclose(both, (one + two) / 2, atol=1e-6)


def test_support_mask_selects_the_support_features(net, episode):
    q, s, m = episode
    net.eval()
    empty = torch.zeros_like(m[:, :1, :1])
    with torch.no_grad():
        fg = net(q, s[:, :1, :1], m[:, :1, :1])
        moved = net(q, s[:, :1, :1], torch.roll(m[:, :1, :1], 12, dims=-1))
        # no support pixel: every support feature is zeroed, so the support image no longer matters
        a, b = net(q, s[:, :1, :1], empty), net(q, torch.randn_like(s[:, :1, :1]), empty)
    assert not torch.allclose(fg, moved, atol=1e-4)
    assert torch.equal(a, b) and not torch.allclose(a, fg, atol=1e-4)


def test_hsnet_trains_the_learner_only(net, episode):
    q, s, m = episode
    net.train()
    assert not net.backbone.training and net.learner.training
    qm = torch.zeros(1, SIZE, SIZE, dtype=torch.long)
    qm[0, 10:20, 10:30] = 1
    net.zero_grad()
    fg, losses = net(q, s[:, :1, :1], m[:, :1, :1], query_mask=qm)
    assert fg.shape == (1, 1, 2, SIZE, SIZE) and set(losses) == {"total", "seg"}
    expected = F.nll_loss(torch.cat([fg[:, :, 0], fg[:, :, 1]], dim=1), qm)
    assert torch.allclose(losses["total"], expected)
    losses["total"].backward()
    grads = [p.grad for p in net.learner.parameters()]
    assert all(g is not None for g in grads) and all(float(g.abs().sum()) > 0 for g in grads)
    assert all(p.grad is None for p in net.backbone.parameters())
    net.eval()


def test_channels_last_gives_the_same_maps(net, episode):
    """Unlike ASNet (3D convolutions), HSNet's weights are all 2D, so `channels_last` stays free."""
    q, s, m = episode
    net.eval()
    try:
        with torch.no_grad():
            ref = net(q, s[:, :1, :1], m[:, :1, :1])
            net.to(memory_format=torch.channels_last)
            nhwc = net(q.contiguous(memory_format=torch.channels_last), s[:, :1, :1], m[:, :1, :1])
    finally:
        net.to(memory_format=torch.contiguous_format)
    assert torch.allclose(ref, nhwc, atol=1e-5)


def _release_state(backbone: str, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.zeros((), dtype=torch.long) if k.endswith("num_batches_tracked") else
            torch.randn(shape, generator=g) for k, shape in LAYOUT[backbone]}


@pytest.mark.parametrize("backbone", ["resnet50", "resnet101"])
def test_parameter_names_are_the_releases(backbone):
    ours = [[k, list(v.shape)] for k, v in HSNet(backbone).state_dict().items()]
    assert ours == LAYOUT[backbone]


def test_release_checkpoint_loads_strictly(net, tmp_path):
    state = _release_state("resnet50", 0)
    assert len(state) == 418 and "learner.encoder_layer2.0.conv1.weight" in state
    path = tmp_path / "hsnet-pascal-fold0.ckpt"
    torch.save({"epoch": 5, "global_step": 100, "pytorch-lightning_version": "1.3.8", "state_dict": state}, path)
    load_weights(net, str(path))
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    deeper = tmp_path / "hsnet-resnet101.ckpt"
    torch.save({"state_dict": _release_state("resnet101", 1)}, deeper)
    with pytest.raises(UserError, match=r"(?s)does not fit this model.*backbone resnet101 \(model: resnet50\).*"
                                        r"backbone \(resnet50 vs resnet101\): backbone\.layer3\."):
        load_weights(net, str(deeper))
    asnet = tmp_path / "asnet.ckpt"
    torch.save({"state_dict": ASNet("resnet50").state_dict()}, asnet)
    with pytest.raises(UserError, match=r"(?s)does not fit this model.*not in the model.*model \(asnet / hsnet"
                                        r".*learner\.encoder_layer2\.0\.attn\..*not in the checkpoint"
                                        r".*learner\.encoder_layer2\.0\.conv1\."):
        load_weights(net, str(asnet))


def test_hsnet_settings_and_report_row():
    assert _cfg().ifsl is True
    with pytest.raises(ConfigError, match="'ifsl' = False.*fixes it to True"):
        _cfg("ifsl", "false")
    with pytest.raises(ConfigError, match="weak true.*model 'hsnet' learns from masks"):
        _cfg("weak", "true")
    with pytest.raises(UserError, match="model hsnet needs backbone resnet50 or resnet101"):
        build_model(_cfg("backbone", "vgg"))
    cfg = dict(_cfg("dataset", "pascal"))
    name = method_name(variant_of(cfg), cfg)
    assert name == "HSNet"
    assert _reference("pascal", "resnet50", 1, name, 2)[1][4] == 43.5  # iFSL Table 1, 2-way mIoU
