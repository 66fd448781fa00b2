"""NTRENet end to end on tiny episodes with random backbones."""
import pytest
import torch

from model import build_model
from util.config import load_config

SIZE = 65  # feature size 9


def make_cfg(*overrides):
    return load_config(None, ["pretrained", "false", "ppm_scales", "[8,4,2]", "reduce_dim", "64", "pcl_bank_size", "16",
                              "pcl_samples", "8", *overrides])


def episode(b=2, k=1, size=SIZE, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, 3, size, size, generator=g)
    s = torch.randn(b, k, 3, size, size, generator=g)
    sm = torch.zeros(b, k, size, size, dtype=torch.long)
    sm[..., 10:40, 15:50] = 1
    sm[..., :2, :] = 255
    qm = torch.zeros(b, size, size, dtype=torch.long)
    qm[:, 20:50, 5:35] = 1
    qm[:, -3:, :] = 255
    return q, s, sm, qm, torch.arange(b) % 15


@pytest.fixture(scope="module")
def full_net():
    torch.manual_seed(0)
    return build_model(make_cfg())


def test_eval_returns_logits_train_returns_losses(full_net):
    q, s, sm, qm, cls = episode()
    full_net.eval()
    with torch.no_grad():
        out = full_net(q, s, sm)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 2, SIZE, SIZE)
    full_net.train()
    logits, losses = full_net(q, s, sm, qm, cls)
    assert logits.shape == (2, 2, SIZE, SIZE)
    assert set(losses) == {"main", "ini", "fem", "bg", "pcl", "scnet", "total"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    assert all(losses[k] > 0 for k in ("main", "ini", "fem", "bg"))
    w = full_net.loss_weights
    expected = losses["main"] + w.ini * losses["ini"] + w.fem * losses["fem"] + w.bg * losses["bg"] \
        + w.pcl * losses["pcl"]
    assert torch.allclose(losses["total"], expected)


def test_predict_maps_shares_forward_path(full_net):
    q, s, sm, _, _ = episode(b=1)
    full_net.eval()
    maps = full_net.predict_maps(q, s, sm)
    assert {k: tuple(v.shape) for k, v in maps.items()} == {
        "logits": (1, 2, SIZE, SIZE), "ini": (1, 2, SIZE, SIZE), "bg": (1, 1, SIZE, SIZE),
        "do": (1, 1, SIZE, SIZE), "prior": (1, 1, SIZE, SIZE)}
    with torch.no_grad():
        assert torch.equal(maps["logits"], full_net(q, s, sm))
    assert (maps["bg"] >= 0).all() and (maps["bg"] <= 1).all()
    assert (maps["prior"] >= 0).all() and (maps["prior"] <= 1 + 1e-6).all()


def test_two_shot_training_backward_and_frozen_backbone(full_net):
    q, s, sm, qm, cls = episode(b=2, k=2)
    full_net.train()
    full_net.zero_grad(set_to_none=True)
    _, losses = full_net(q, s, sm, qm, cls)
    losses["total"].backward()
    assert all(p.grad is None and not p.requires_grad for p in full_net.backbone.parameters())
    heads = [(n, p) for n, p in full_net.named_parameters() if not n.startswith("backbone.")]
    assert all(p.requires_grad for _, p in heads)
    assert [n for n, p in heads if p.grad is None] == []
    assert full_net.bgmm.prototype.grad.abs().sum() > 0
    assert (full_net.pcl.bank.count <= full_net.pcl.bank.capacity).all() and full_net.pcl.bank.count.sum() > 0


@pytest.mark.parametrize("fill", [0, 255])
def test_empty_support_masks_give_no_nan(full_net, fill):
    q, s, sm, qm, cls = episode(b=1, k=2)
    sm.fill_(fill)
    full_net.train()
    logits, losses = full_net(q, s, sm, qm, cls)
    losses["total"].backward()
    assert torch.isfinite(logits).all() and all(torch.isfinite(v) for v in losses.values())
    assert all(torch.isfinite(p.grad).all() for p in full_net.parameters() if p.grad is not None)


def test_training_requires_targets(full_net):
    q, s, sm, qm, _ = episode(b=1)
    full_net.train()
    with pytest.raises(ValueError, match="query_mask"):
        full_net(q, s, sm)
    with pytest.raises(ValueError, match="classes"):
        full_net(q, s, sm, qm)
    with pytest.raises(ValueError, match="0..14"):
        full_net(q, s, sm, qm, torch.tensor([15]))
    with pytest.raises(ValueError, match="disagree"):
        full_net(q, s[:, :, :, :33], sm, qm, torch.tensor([0]))


def test_all_off_is_pfenet_with_zero_terms():
    net = build_model(make_cfg("use_bgem", "false", "use_doem", "false", "use_pcl", "false"))
    assert net.bgmm is None and net.bgem is None and net.doem is None and net.pcl is None
    q, s, sm, qm, _ = episode(b=1)
    net.train()
    _, losses = net(q, s, sm, qm)  # no classes needed without PCL
    assert losses["ini"] == 0 and losses["bg"] == 0 and losses["pcl"] == 0 and losses["fem"] > 0
    net.eval()
    maps = net.predict_maps(q, s, sm)
    assert (maps["bg"] == 0).all() and (maps["do"] == 0).all() and (maps["ini"] == 0).all()


def test_doem_alone_builds_bg_branch_and_masked_pooling():
    net = build_model(make_cfg("use_bgem", "false", "use_pcl", "false", "do_pooling", "masked", "bg_dim", "32"))
    assert net.bgmm is not None and net.bgem is None and net.doem.pooling == "masked"
    q, s, sm, qm, _ = episode(b=1)
    net.train()
    _, losses = net(q, s, sm, qm)
    assert losses["bg"] > 0 and losses["ini"] > 0


@pytest.mark.parametrize("negatives", ["bg", "nontarget"])
def test_pcl_negative_kinds(negatives):
    net = build_model(make_cfg("use_bgem", "false", "use_doem", "false", "pcl_negatives", negatives))
    assert (net.bgmm is None) == (negatives == "nontarget")
    q, s, sm, qm, cls = episode(b=1)
    net.train()
    _, losses = net(q, s, sm, qm, cls)
    assert torch.isfinite(losses["pcl"])
    stored = int(net.pcl.bank.count.sum())  # query + support; an empty predicted-BG region is skipped
    assert stored == 2 if negatives == "nontarget" else stored <= 2


def test_frozen_bn_batched_equals_separate_calls():
    torch.manual_seed(1)
    frozen = build_model(make_cfg("backbone_bn", "frozen", "use_pcl", "false"))
    for m in frozen.backbone.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    reference = build_model(make_cfg("backbone_bn", "reference", "use_pcl", "false"))
    reference.load_state_dict(frozen.state_dict())
    frozen.train()
    assert not any(m.training for m in frozen.backbone.modules())
    assert all(m.training for m in reference.train().backbone.modules())
    frozen.eval(), reference.eval()
    q, s, sm, _, _ = episode(b=2, k=2)
    with torch.no_grad():
        a, b = frozen.predict_maps(q, s, sm), reference.predict_maps(q, s, sm)
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5, rtol=1e-4), key


def test_reference_bn_uses_batch_statistics_in_training():
    net = build_model(make_cfg("use_bgem", "false", "use_doem", "false", "use_pcl", "false"))
    bn = net.backbone.layer0[1]
    before = bn.running_mean.clone()
    q, s, sm, qm, _ = episode(b=2)
    net.train()
    net(q, s, sm, qm)
    assert not torch.equal(before, bn.running_mean)  # released behaviour: statistics drift


def test_vgg_backbone_forward():
    net = build_model(make_cfg("backbone", "vgg", "use_pcl", "false", "ppm_scales", "[1.0,0.5]"))
    assert net.backbone.mid_channels == 768 and net.reduce_query[0].in_channels == 768
    q, s, sm, _, _ = episode(b=1)
    net.eval()
    with torch.no_grad():
        assert net(q, s, sm).shape == (1, 2, SIZE, SIZE)


def test_bank_classes_follow_fold():
    net = build_model(make_cfg("dataset", "coco", "split", "1", "pcl_bank_size", "4"))
    assert net.pcl.bank.protos.shape == (60, 4, 64) and net.num_train_classes == 60


@pytest.mark.parametrize("arch,mid,high,side", [("resnet50", 1536, 2048, 9), ("vgg", 768, 512, 5)])
def test_backbone_features(arch, mid, high, side):
    from model.backbones.encoder import build_backbone
    backbone = build_backbone(arch, pretrained=False, initmodel_dir="", bn_mode="frozen").eval()
    q, s, sm, _, _ = episode(b=1, k=2)
    f = backbone(q, s, (sm == 1).float())
    assert f.query_mid.shape == (1, mid, side, side) and f.query_high.shape == (1, high, side, side)
    assert f.support_mid.shape == (1, 2, mid, side, side) and f.support_high.shape == (1, 2, high, side, side)
    assert f.support_mask.shape == (1, 2, side, side) and not f.query_mid.requires_grad


@pytest.mark.parametrize("arch", ["resnet50", "vgg"])
def test_folded_bn_equals_separate_bn_pass(arch):
    """Eval-mode BN folded into the convs (the fast path) gives the unfolded features."""
    from model.backbones.encoder import build_backbone
    torch.manual_seed(2)
    backbone = build_backbone(arch, pretrained=False, initmodel_dir="", bn_mode="frozen").eval()
    for m in backbone.modules():  # non-trivial statistics and affine terms
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.2, 0.2)
    q, s, sm, _, _ = episode(b=2, k=1)
    folded = backbone(q, s, (sm == 1).float())
    backbone.set_bn_folding(False)
    plain = backbone(q, s, (sm == 1).float())
    for name in ("query_mid", "query_high", "support_mid", "support_high"):
        a, b = getattr(folded, name), getattr(plain, name)
        assert torch.allclose(a, b, atol=1e-4 * b.abs().max().item(), rtol=1e-4), name


def test_folding_follows_bn_mode():
    """Training with reference BN keeps batch statistics (no folding): running stats still move."""
    from model.backbones.fold import conv_bn
    conv, bn = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4)
    x = torch.randn(2, 3, 5, 5)
    out = conv_bn(conv, bn.train(), x)
    assert torch.allclose(out, torch.nn.functional.batch_norm(conv(x), None, None, training=True), atol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    assert torch.allclose(conv_bn(conv, bn, x), bn(conv(x)), atol=1e-5)


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_feature_dropout_key(p):
    net = build_model(make_cfg("feature_dropout", str(p)))
    drops = [m for m in (*net.reduce_query, *net.reduce_support, *net.bgmm.reduce) if isinstance(m, torch.nn.Dropout2d)]
    assert len(drops) == (3 if p else 0) and all(d.p == p for d in drops)


def test_feature_dropout_must_be_below_one():
    from util.config import ConfigError
    with pytest.raises(ConfigError, match="feature_dropout"):
        make_cfg("feature_dropout", "1.0")
