"""ASNet at small sizes: shapes, gradients (learner only), weak training, Table 2c ablations,
hypercorrelation on hand tensors, and strict loading of a checkpoint in the release's layout
(PyTorch Lightning: {'state_dict': {'backbone.*', 'learner.*'}, ...})."""
import hashlib

import pytest
import torch

from model import build_model, load_weights
from model.fscs.hypercorrelation import correlation, hypercorrelation
from model.fscs.ifsl import fscs_predict
from model.fscs.asnet import ASNet
from util.config import ConfigError, load_config
from util.errors import UserError

RELEASE_LAYOUT_SHA256 = "2b0ec448a59a7d10aef41656bfc66e8dcbc3ddc49124d1ab447015e8ab3edea8"


def _cfg(*extra):
    return load_config(None, ["model", "asnet", "pretrained", "false", "dataset", "toy", *extra])


@pytest.fixture(scope="module")
def episode():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 3, 49, 49, generator=g)
    s = torch.randn(1, 2, 1, 3, 41, 41, generator=g)
    m = torch.zeros(1, 2, 1, 41, 41, dtype=torch.long)
    m[..., 10:30, 8:25] = 1
    return q, s, m


def test_correlation_by_hand():
    q = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]]]])  # [1, C2, 1, 2]: vectors (1,0), (0,2)
    s = torch.tensor([[[[1.0]], [[1.0]]]])  # (1,1)
    c = correlation(q, s)
    assert c.shape == (1, 1, 2, 1, 1)
    assert c.flatten().tolist() == pytest.approx([0.7071, 0.7071], abs=1e-4)
    assert correlation(q, -s).abs().sum() == 0  # clamped at 0
    corrs = hypercorrelation([[q], [q, q]], [[s], [s, s]], way=1)
    assert [tuple(x.shape) for x in corrs] == [(1, 2, 1, 2, 1, 1), (1, 1, 1, 2, 1, 1)]  # deepest stage first


def test_asnet_shapes_and_gradients(episode):
    torch.manual_seed(0)
    net = build_model(_cfg())
    assert isinstance(net, ASNet) and not any(p.requires_grad for p in net.backbone.parameters())
    q, s, m = episode
    net.eval()
    with torch.no_grad():
        fg = net(q, s, m)
    assert fg.shape == (1, 2, 2, 49, 49) and (fg <= 0).all()  # log-probabilities (resized bilinearly)
    presence, merged = fscs_predict(fg)
    assert presence.shape == (1, 2) and merged.shape == (1, 3, 49, 49)
    net.train()
    assert not net.backbone.training
    qm = torch.zeros(1, 49, 49, dtype=torch.long)
    qm[0, 10:20, 10:30] = 1
    _, losses = net(q, s[:, :1], m[:, :1], query_mask=qm)
    losses["total"].backward()
    grads = [p.grad for p in net.learner.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_weak_training_uses_class_tags(episode, monkeypatch):
    torch.manual_seed(0)
    net = build_model(_cfg("weak", "true")).train()
    seen = []
    learner_forward = net.learner.forward
    monkeypatch.setattr(net.learner, "forward", lambda corrs, mask: seen.append(mask) or learner_forward(corrs, mask))
    q, s, m = episode
    _, losses = net(q, s[:, :1], m[:, :1], presence=torch.tensor([[False]]))
    assert set(losses) == {"total", "cls"} and losses["total"] > 0
    losses["total"].backward()
    assert seen == [None]  # no support mask reaches the attention with weak labels


def _corrs(g, batch=2):
    """Synthetic stage 4/3/2 correlations of the sizes a 400 px support gives after pooling."""
    return [torch.rand(batch, 3, 3, 3, 4, 4, generator=g), torch.rand(batch, 6, 5, 5, 17, 17, generator=g),
            torch.rand(batch, 4, 9, 9, 17, 17, generator=g)]


@pytest.mark.parametrize("keys,absent", [(["asnet_attention", "local"], "encoder_layer4.0.attn.khead"),
                                         (["asnet_fusion", "false"], "encoder_layer4to3"),
                                         (["asnet_masked_attention", "false"], None), ([], None)])
def test_table_2c_ablations(keys, absent):
    torch.manual_seed(0)
    net = build_model(_cfg(*keys)).eval()
    names = {k for k, _ in net.learner.named_modules()}
    assert absent is None or absent not in names
    g = torch.Generator().manual_seed(1)
    corrs, mask = _corrs(g), torch.zeros(2, 400, 400)
    mask[:, 100:300, 50:200] = 1
    with torch.no_grad():
        out = net.learner(corrs, mask if net.masked else None)
        other = net.learner(corrs, torch.roll(mask, 150, dims=2) if net.masked else None)
    assert out.shape == (2, 2, 18, 18) and torch.isfinite(out).all()
    assert torch.equal(out, other) == (not net.masked or keys == ["asnet_attention", "local"])


def test_release_checkpoint_loads_strictly(tmp_path):
    torch.manual_seed(0)
    src = ASNet("resnet50")
    # the release's Lightning file: backbone = torchvision ResNet (fc included), learner = AttentionLearner
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in src.state_dict().items()}
    assert "backbone.fc.weight" in state and "learner.encoder_layer4.0.attn.qhead.weight" in state
    # names and shapes, in order, of the released AttentiveSqueezeNetwork (ResNet-50), computed once from it
    layout = "\n".join(f"{k} {tuple(v.shape)}" for k, v in state.items())
    assert len(state) == 542 and sum(v.numel() for k, v in state.items() if k.startswith("learner.")) == 1320610
    assert hashlib.sha256(layout.encode()).hexdigest() == RELEASE_LAYOUT_SHA256
    assert state["learner.encoder_layer3.0.attn.qhead.weight"].shape == (16, 6, 1, 5, 5)
    assert state["learner.encoder_layer4to3.1.attn.short_cut.0.weight"].shape == (128, 128, 1, 2, 2)
    path = tmp_path / "asnet-pascal-fold0.ckpt"
    torch.save({"epoch": 3, "global_step": 100, "pytorch-lightning_version": "1.3.8", "state_dict": state}, path)
    net = build_model(_cfg())
    load_weights(net, str(path))
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    local = build_model(_cfg("asnet_attention", "local"))
    with pytest.raises(UserError, match="does not fit this model"):
        load_weights(local, str(path))


def test_asnet_bad_settings():
    with pytest.raises(UserError, match="asnet needs backbone resnet50 or resnet101"):
        build_model(_cfg("backbone", "vgg"))
    with pytest.raises(ConfigError, match="'ifsl' = False.*fixes it to True"):
        _cfg("ifsl", "false")
    with pytest.raises(ConfigError, match="'channels_last' = 'on'.*fixes it to 'off'"):
        _cfg("channels_last", "on")
    assert _cfg().channels_last == "off"  # 3D convolutions: no NHWC layout
