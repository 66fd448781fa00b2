"""Speed work: `amp auto`, the bf16 warning, cached BN folding, the in-place residual, the
FLOP-reducing options (capped bins, foreground-only prior) and the compare command's parts."""
import json
import logging

import pytest
import torch

from model import build_model
from model.layers.fem import FEM
from model.backbones.fold import conv_bn, folded
from model.layers.prior import prior_mask
from model.backbones.resnet import Bottleneck
from util.bench import compare, release
from util.config import load_config
from util.engine import precision as prec
from util.engine.precision import Precision
from util.errors import UserError

CPU = torch.device("cpu")
HOST_CPU_FLAGS = prec.cpu_flags  # taken at import, before any test mocks it


# ----------------------------------------------------------------------------- channels_last auto
def test_channels_last_auto_is_on_for_the_cpu_only():
    cfg = load_config(None, [])
    assert cfg.channels_last == "auto"
    assert Precision.from_config(cfg, CPU).channels_last is True
    assert prec.resolve_channels_last("auto", torch.device("cuda")) is False
    assert load_config(None, ["channels_last", "false"]).channels_last == "off"  # YAML false -> off
    assert Precision.from_config(load_config(None, ["channels_last", "off"]), CPU).channels_last is False
    assert Precision.from_config(load_config(None, ["channels_last", "true"]), CPU).memory_format == torch.channels_last


def test_eval_backbone_runs_query_and_supports_in_one_call_with_the_same_features():
    """In eval mode BN uses running statistics (per image), so one batched call is exact;
    while training with `backbone_bn reference`, BN sees each group's batch as released."""
    cfg = load_config(None, ["pretrained", "false", "backbone", "vgg", "shot", "2"])
    torch.manual_seed(0)
    bb = build_model(cfg).backbone.eval()
    q, s = torch.randn(2, 3, 41, 41), torch.randn(2, 2, 3, 41, 41)
    fg = (torch.rand(2, 2, 41, 41) > 0.5).float()
    calls = []
    layer3 = bb._layer3
    bb._layer3 = lambda x: (calls.append(x.shape[0]), layer3(x))[1]
    feats = bb(q, s, fg)
    assert calls == [6]  # (1 + K) x B images in one call
    alone = bb(q[:1], s[:1], fg[:1])
    assert torch.allclose(feats.query_high[:1], alone.query_high, atol=1e-5)
    assert torch.allclose(feats.support_high[:1], alone.support_high, atol=1e-5)
    calls.clear()
    bb.train()
    bb(q, s, fg)
    assert calls == [2, 2, 2]  # query batch, then each shot's batch


# ----------------------------------------------------------------------------- amp
def test_amp_default_is_fp32():
    cfg = load_config(None, [])
    assert cfg.amp == "off"
    for training in (True, False):
        p = Precision.from_config(cfg, CPU, training)
        assert p.amp == "off" and p.dtype is None and p.name == "fp32" and not p.reduced


@pytest.mark.parametrize("training", [True, False])
def test_amp_auto_is_fp32_on_a_cpu_without_native_bf16(monkeypatch, training):
    monkeypatch.setattr(prec, "cpu_flags", lambda: {"avx2", "avx512f", "avx512bw"})
    p = Precision(CPU, "auto", training=training)
    assert p.amp == "off" and p.dtype is None and p.requested == "auto" and p.name == "fp32"
    (level, line), = p.log_lines()
    assert level == logging.INFO and line.startswith(f"{'training' if training else 'evaluation'} precision fp32")
    assert ("avx512_bf16 or amx_bf16 missing" in line) == training


@pytest.mark.parametrize("flag", ["avx512_bf16", "amx_bf16"])
def test_amp_auto_trains_bf16_and_evaluates_fp32_on_a_cpu_with_native_bf16(monkeypatch, flag):
    monkeypatch.setattr(prec, "cpu_flags", lambda: {"avx2", flag})
    p = Precision(CPU, "auto", training=True)
    assert p.amp == "bf16" and p.dtype == torch.bfloat16 and p.name == "bf16" and p.reduced
    assert p.log_lines() == [(logging.INFO, "training precision bf16 because amp auto and the CPU has native bf16 "
                                            f"({flag}); memory format contiguous (NCHW)")]
    ev = p.for_evaluation()
    assert ev.amp == "off" and ev.name == "fp32" and not ev.training
    assert ev.log_lines()[0][1].startswith("evaluation precision fp32 because amp auto evaluates in fp32")
    assert Precision(CPU, "auto").name == "fp32"  # an evaluation built directly: the same


@pytest.mark.parametrize("supported, expected", [(True, "bf16"), (False, "off")])
def test_amp_auto_on_cuda_follows_bf16_support(monkeypatch, supported, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    assert prec.resolve_amp("auto", torch.device("cuda"), training=True)[0] == expected
    assert prec.resolve_amp("auto", torch.device("cuda"))[0] == "off"


@pytest.mark.parametrize("amp", ["bf16", "off"])
def test_an_explicit_amp_holds_for_training_and_evaluation(monkeypatch, amp):
    monkeypatch.setattr(prec, "cpu_flags", lambda: {"avx512_bf16"})
    p = Precision(CPU, amp, training=True)
    assert p.amp == p.for_evaluation().amp == amp


def test_bf16_without_native_support_warns_once_with_the_measured_slowdown(monkeypatch):
    monkeypatch.setattr(prec, "cpu_flags", lambda: set())
    calls = []
    monkeypatch.setattr(prec, "bf16_slowdown", lambda: calls.append(1) or 7.25)
    p = Precision(CPU, "bf16", training=True)
    assert p.dtype == torch.bfloat16 and p.amp == "bf16"
    warnings = [m for level, m in p.log_lines() + p.for_evaluation().log_lines() if level == logging.WARNING]
    assert len(warnings) == 2 and "7.2x slower than fp32" in warnings[0] and "amp off" in warnings[0]
    assert len(calls) == 1  # measured once per run, not again for the validation's precision


def test_bf16_with_native_support_does_not_warn(monkeypatch):
    monkeypatch.setattr(prec, "cpu_flags", lambda: {"avx512_bf16"})
    assert all(level == logging.INFO for level, _ in Precision(CPU, "bf16").log_lines())


def test_bf16_slowdown_is_a_real_ratio():
    ratio = prec.bf16_slowdown(reps=1)
    assert 0 < ratio < 1000


def test_cpu_flags_reads_this_machine():
    flags = HOST_CPU_FLAGS()  # the function itself, not the suite's --cpu-flags mock
    assert isinstance(flags, set)
    with open("/proc/cpuinfo") as f:
        assert ("avx512_bf16" in f.read()) == ("avx512_bf16" in flags)


# ----------------------------------------------------------------------------- BN folding
def _conv_bn(seed=0):
    torch.manual_seed(seed)
    conv, bn = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False), torch.nn.BatchNorm2d(4).eval()
    bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5), bn.bias.data.uniform_(-0.2, 0.2)
    return conv, bn


def test_folded_weights_are_cached_and_follow_every_change():
    conv, bn = _conv_bn()
    x = torch.randn(2, 3, 6, 6)
    w1, _ = folded(conv, bn)
    assert folded(conv, bn)[0] is w1                                   # reused, not recomputed
    assert torch.allclose(conv_bn(conv, bn, x), bn(conv(x)), atol=1e-5)
    bn.running_var.mul_(4)                                             # in-place buffer change
    assert folded(conv, bn)[0] is not w1
    assert torch.allclose(conv_bn(conv, bn, x), bn(conv(x)), atol=1e-5)
    other_conv, other_bn = _conv_bn(seed=1)
    conv.load_state_dict(other_conv.state_dict()), bn.load_state_dict(other_bn.state_dict())
    assert torch.allclose(conv_bn(conv, bn, x), bn(conv(x)), atol=1e-5)
    with torch.no_grad():
        conv.weight.add_(1.0)                                          # an optimiser-style step
    assert torch.allclose(conv_bn(conv, bn, x), bn(conv(x)), atol=1e-5)
    assert "_folded" not in str(conv.state_dict().keys())


def test_folded_weights_follow_dtype_changes():
    conv, bn = _conv_bn()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    conv.double(), bn.double()
    assert folded(conv, bn)[0].dtype == torch.float64
    assert torch.allclose(conv_bn(conv, bn, x), bn(conv(x)), atol=1e-10)


def test_bottleneck_in_place_residual_matches_the_autograd_path():
    torch.manual_seed(0)
    block = Bottleneck(64, 16).eval()
    for m in block.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2), m.running_mean.uniform_(-0.5, 0.5)
    x = torch.randn(2, 64, 7, 7)
    with torch.no_grad():
        fast = block(x.clone())
    x.requires_grad_(True)
    slow = block(x)
    assert slow.requires_grad and torch.equal(fast, slow.detach())


def test_model_eval_logits_unchanged_by_the_speed_fixes():
    """Folded BN (cached) against BN as its own pass on the whole model: identical logits within 1e-5."""
    cfg = load_config(None, ["pretrained", "false", "ppm_scales", "[8,4]", "reduce_dim", "32", "pcl_bank_size",
                             "16", "pcl_samples", "8", "backbone", "resnet50", "backbone_bn", "frozen"])
    torch.manual_seed(0)
    net = build_model(cfg).eval()
    for m in net.backbone.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2), m.running_mean.uniform_(-0.2, 0.2)
    q, s = torch.randn(1, 3, 41, 41), torch.randn(1, 1, 3, 41, 41)
    sm = torch.zeros(1, 1, 41, 41, dtype=torch.long)
    sm[..., 10:30, 8:25] = 1
    with torch.no_grad():
        first, again = net(q, s, sm), net(q, s, sm)
        net.backbone.set_bn_folding(False)
        plain = net(q, s, sm)
    assert torch.equal(first, again)
    assert (first - plain).abs().max() < 1e-5


# ----------------------------------------------------------------------------- FLOP options
def test_capped_bins_hand_cases():
    fem = FEM(feat_dim=8, bins=(60, 30, 15, 8))
    capped = FEM(feat_dim=8, bins=(60, 30, 15, 8), cap_bins=True)
    assert [fem.bin_size(i, (31, 31)) for i in range(4)] == [(60, 60), (30, 30), (15, 15), (8, 8)]
    assert [capped.bin_size(i, (31, 31)) for i in range(4)] == [(31, 31), (30, 30), (15, 15), (8, 8)]
    assert [capped.bin_size(i, (60, 60)) for i in range(4)] == [(60, 60), (30, 30), (15, 15), (8, 8)]
    fractions = FEM(feat_dim=8, bins=(1.0, 0.5), cap_bins=True)
    assert [fractions.bin_size(i, (13, 13)) for i in range(2)] == [(13, 13), (6, 6)]


def test_capped_bins_reach_the_model_and_cut_flops():
    base = ["pretrained", "false", "ppm_scales", "[12,6]", "reduce_dim", "16", "backbone", "vgg",
            "backbone_bn", "frozen", "use_pcl", "false"]
    q, s = torch.randn(1, 3, 33, 33), torch.randn(1, 1, 3, 33, 33)
    sm = torch.ones(1, 1, 33, 33, dtype=torch.long)
    flops = {}
    for cap in ("false", "true"):
        torch.manual_seed(0)
        net = build_model(load_config(None, base + ["cap_bins", cap])).eval().requires_grad_(False)
        assert net.fem.cap_bins == (cap == "true")
        flops[cap] = compare.frozen_count(net, lambda: net(q, s, sm))
    assert flops["true"] < flops["false"]


def test_foreground_prior_hand_case():
    """One channel pair: query pixels (1,0) and (0,1); support fg pixel (1,1)/sqrt2, bg pixel ignored."""
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 2, 1, 2)        # C=2, h=1, w=2
    s = torch.tensor([[1.0, -3.0], [1.0, 5.0]]).view(1, 1, 2, 1, 2)
    m = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    for fg in (False, True):
        out = prior_mask(q, s, m, foreground_only=fg)
        # both query pixels: cosine 1/sqrt2 with the fg pixel -> equal -> min-max gives 0, 0
        assert torch.allclose(out, torch.zeros(1, 1, 1, 2), atol=1e-6)
    q2 = torch.tensor([[1.0, 1.0], [0.0, 1.0]]).view(1, 2, 1, 2)       # pixel 0 (1,0), pixel 1 (1,1)
    for fg in (False, True):
        out = prior_mask(q2, s, m, foreground_only=fg)
        assert torch.allclose(out, torch.tensor([0.0, 1.0]).view(1, 1, 1, 2), atol=1e-5)


@pytest.mark.parametrize("relu", [True, False])
def test_foreground_prior_equals_the_full_form(relu):
    torch.manual_seed(0)
    q, s = torch.randn(2, 16, 7, 9), torch.randn(2, 3, 16, 7, 9)
    if relu:
        q, s = q.relu(), s.relu()
    m = torch.zeros(2, 3, 7, 9)
    m[:, :, 2:5, 3:7] = 1
    m[:, :, 5, 3:7] = 0.3                     # bilinear edge values
    m[1, 2] = 0                               # a shot without foreground
    m[0, 1] = 1                               # a shot without background
    full = prior_mask(q, s, m)
    fast = prior_mask(q, s, m, foreground_only=True)
    assert (full - fast).abs().max() < 1e-5


# ----------------------------------------------------------------------------- compare
def test_exclusive_flops_counts_each_op_once():
    counts = {"Global": {"mm": 100}, "Net": {"mm": 90}, "Net.fem.refine.0": {"mm": 30},
              "Net.fem.refine.0.conv": {"mm": 20}, "Net.fm": {"mm": 40}, "Net.fm.merge.0": {"mm": 25}}
    assert compare.exclusive_flops(counts) == {"outside": 10 + 90 - 70, "fem": 30, "fm": 40}


def test_leaf_flops_uses_leaf_modules_only():
    counts = {"Global": {"mm": 100}, "Net": {"mm": 100}, "Net.fm": {"mm": 60}, "Net.fm.merge.0": {"mm": 25},
              "Net.fem.head": {"mm": 30}}
    assert compare.leaf_flops(counts, {"fm.merge.0", "fem.head"}) == {"fm": 25, "fem": 30, "outside": 45}


def _fake_release(root):
    """A stand-in checkout with the text every edit expects (written here, not the release's code)."""
    (root / "model/base").mkdir(parents=True)
    (root / "model/base/resnet.py").write_text("VALUE = 50\n")
    (root / "model/base/vgg.py").write_text("VALUE = 16\n")
    (root / "model/prototypical_contrast.py").write_text(
        "import torch\nclass PrototypeContrastLoss:\n    def zero(self):\n        return torch.zeros(1).cuda()\n")
    (root / "model/ourmodel.py").write_text(
        "import torch\nimport model.base.resnet as models\nimport model.base.vgg as vgg_models\n"
        "from model.prototypical_contrast import PrototypeContrastLoss\n"
        "class NTRENet:\n    def __init__(self, vgg=False，bgpro_num = 1):\n"
        "        self.depth = models.VALUE + vgg_models.VALUE\n        self.loss = PrototypeContrastLoss()\n"
        "    def bg(self, supp_bg_out_list):\n        z = torch.zeros(1).cuda()\n"
        "            for j,supp_bg_out in enumerate(supp_bg_out_list):\n"
        "                aux_bg_loss = aux_bg_loss + supp_bg_out\n        return z + aux_bg_loss\n"
        .replace("        z = torch.zeros(1).cuda()\n            for", "        z = torch.zeros(1).cuda()\n"
                 "        if True:\n            for"))


def test_release_loader_applies_and_lists_every_edit(tmp_path):
    _fake_release(tmp_path)
    cls, edits = release.load_release(str(tmp_path))
    net = cls()
    assert net.depth == 66 and float(net.bg([1.0, 2.0])) == 3.0 and float(net.loss.zero()) == 0.0
    assert len(edits) == len(release.EDITS) and any("full-width comma" in e for e in edits)
    assert ".cuda()" in (tmp_path / "model/ourmodel.py").read_text()  # nothing changed on disk


def test_release_loader_refuses_other_revisions(tmp_path):
    _fake_release(tmp_path)
    path = tmp_path / "model/ourmodel.py"
    path.write_text(path.read_text().replace("，", ","))
    with pytest.raises(UserError, match="model/ourmodel.py of the reference checkout.*full-width comma"):
        release.load_release(str(tmp_path))
    with pytest.raises(UserError, match="model/base/resnet.py not found; point --reference at a checkout"):
        release.load_release(str(tmp_path / "nowhere"))


def test_compare_without_reference_prints_our_figures(capsys):
    code = compare.main(["--config", "config/toy/toy_split0_vgg.yaml", "--rounds", "1", "--warmup", "0",
                         "--variant", "fast: cap_bins=true prior_foreground_only=true", "train_h", "33", "train_w", "33", "val_size", "33", "reduce_dim", "16",
                         "pcl_bank_size", "16", "pcl_samples", "8"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and "reference" not in out
    # channels_last auto is on for the CPU: the other variant is the contiguous layout
    both = {"ours", "ours_contiguous", "fast"}
    assert set(out["train_speed_vs_ours"]) == both and out["train_speed_vs_ours"]["ours"] == 1.0
    assert set(out["eval_speed_vs_ours"]) == both
    assert out["eval_logits_max_abs_diff"]["ours_contiguous vs ours"] < 1e-5
    assert set(out["gflop_per_train_step_ours_by_module"]) >= {"backbone", "fm", "fem", "outside"}
    assert len(out["load_avg_before"]) == 3 and "avx512_bf16" in out["cpu_flags"]
    assert out["eval_logits_max_abs_diff"]["fast vs ours"] >= 0 and out["gflop_per_train_step"]["fast"] > 0


def test_variant_specs_parse_and_bad_ones_name_the_form():
    assert compare.parse_variant("fast: cap_bins=true prior_foreground_only=true") == (
        "fast", ["cap_bins", "true", "prior_foreground_only", "true"])
    with pytest.raises(UserError, match="NAME: key=value"):
        compare.parse_variant("fast: cap_bins")
    with pytest.raises(UserError, match="NAME: key=value"):
        compare.parse_variant(": cap_bins=true")


def test_peak_rss_is_this_process_image():
    assert 10 < compare.peak_rss_mb() < 1e6


def test_flops_split_adds_up_and_charges_the_frozen_backbone_no_backward():
    cfg = load_config(None, ["pretrained", "false", "ppm_scales", "[6,3]", "reduce_dim", "16", "backbone", "vgg",
                             "backbone_bn", "frozen", "pcl_bank_size", "16", "pcl_samples", "8"])
    torch.manual_seed(0)
    net = build_model(cfg).train()
    q, s = torch.randn(2, 3, 41, 41), torch.randn(2, 1, 3, 41, 41)
    m = torch.zeros(2, 1, 41, 41, dtype=torch.long)
    m[..., 10:30, 10:30] = 1
    cls = torch.tensor([0, 1])

    def forward():
        return net(q, s, m, query_mask=m[:, 0], classes=cls)[1]["total"]

    split = compare.flops_split(net, forward, lambda: forward().backward())
    total = compare.count(lambda: forward().backward())[0]
    assert sum(v["forward"] + v["backward"] for v in split.values()) == total
    assert split["backbone"]["backward"] == 0 and split["backbone"]["forward"] > 0
    for head in ("fm", "fem", "bgmm"):   # 3x3 convs with trainable weights: backward = 2 x forward
        assert split[head]["backward"] == 2 * split[head]["forward"] > 0


def test_a_release_training_failure_drops_its_timing_and_is_reported():
    from util.bench.compare import _release_trains

    def broken():
        raise RuntimeError("The size of tensor a (256) must match the size of tensor b (5)")
    calls = []
    steps = {"ours": lambda: calls.append("ours"), "release": broken}
    out = _release_trains(steps)
    assert list(steps) == ["ours"] and "tensor b (5)" in out["release_train_error"]
    steps = {"ours": lambda: None, "release": lambda: calls.append("release")}
    assert _release_trains(steps) == {} and "release" in steps and calls == ["release"]
