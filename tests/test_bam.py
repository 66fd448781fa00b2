"""BAM: Gram matrix and scene difference, ensemble, K-shot weights on hand-computed cases;
release checkpoints (synthesised with the release's module names) load strictly; stage 2
refuses a missing or foreign stage-1 file."""
import math

import pytest
import torch

from model import build_model, load_weights
from model.backbones.encoder import build_backbone
from model.bam.ensemble import Ensemble, base_foreground
from model.bam.gram import adjustment_factor, gram_matrix
from model.bam.kshot import ShotWeights
from model.bam.pspnet import PSPNet
from util.config import load_config
from util.errors import UserError

TINY = ["model", "bam", "dataset", "toy", "backbone", "vgg", "pretrained", "false", "reduce_dim", "16",
        "base_weight", "none", "feature_dropout", "0"]
# the release's module names (BAM OneModel / PSPNet OneModel) -> this project's, written from the release
RELEASE_NAMES = {"learner_base.0.": "base_learner.ppm.", "learner_base.1.": "base_learner.cls.",
                 "down_query.": "reduce_query.", "down_supp.": "reduce_support.", "init_merge.": "merge.",
                 "ASPP_meta.": "aspp.", "res1_meta.": "fuse.", "res2_meta.": "refine.", "cls_meta.": "head.",
                 "gram_merge.": "ensemble.gram_merge.", "cls_merge.": "ensemble.cls_merge.",
                 "kshot_rw.": "shot_weights.net."}


def cfg(*extra):
    return load_config(None, [*TINY, *extra])


def test_gram_matrix_and_adjustment_factor_by_hand():
    q = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).view(1, 2, 1, 2)    # channels (1,0) and (1,1)
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 2, 1, 2)    # orthogonal channels
    r = 1 / math.sqrt(2)
    assert torch.allclose(gram_matrix(q), torch.tensor([[[1.0, r], [r, 1.0]]]), atol=1e-6)
    assert torch.allclose(gram_matrix(s), torch.eye(2)[None], atol=1e-6)
    # |G_q - G_s|_F = sqrt(2 r^2) = 1, normalised by |ones(2x2)|_F = 2
    assert adjustment_factor(q, s).shape == (1, 1, 1, 1)
    assert adjustment_factor(q, s).item() == pytest.approx(0.5, abs=1e-6)
    assert adjustment_factor(q, q).item() == pytest.approx(0.0, abs=1e-6)


def test_base_foreground_sums_base_classes_and_leaves_the_episode_class_out():
    p = torch.tensor([0.1, 0.2, 0.3, 0.4]).view(1, 4, 1, 1).repeat(2, 1, 1, 1)   # bg + 3 base classes
    assert torch.allclose(base_foreground(p).flatten(), torch.tensor([0.9, 0.9]))
    out = base_foreground(p, exclude=torch.tensor([0, 2]))        # channels 1 and 3 left out
    assert torch.allclose(out.flatten(), torch.tensor([0.7, 0.5]))


def test_ensemble_by_hand():
    ens = Ensemble()
    with torch.no_grad():
        ens.gram_merge.weight.copy_(torch.tensor([2.0, -1.0]).view(1, 2, 1, 1))
        ens.cls_merge.weight.copy_(torch.tensor([0.5, 3.0]).view(1, 2, 1, 1))
    meta = torch.tensor([0.0, math.log(3.0)]).view(1, 2, 1, 1)          # softmax (0.25, 0.75)
    base = torch.log(torch.tensor([0.5, 0.3, 0.2])).view(1, 3, 1, 1)  # base fg = 0.5
    psi = torch.tensor(0.1).view(1, 1, 1, 1)
    out = ens(meta, base, psi).flatten()
    bg = 2 * 0.25 - 0.1                                                # eq. 9 on the background
    fg = 2 * 0.75 - 0.1
    assert torch.allclose(out, torch.tensor([0.5 * bg + 3.0 * 0.5, fg]), atol=1e-6)
    # identity start: final = (meta bg + base fg x 0, meta fg)
    out = Ensemble()(meta, base, psi).flatten()
    assert torch.allclose(out, torch.tensor([0.25, 0.75]), atol=1e-6)


def test_shot_weights():
    psi = torch.tensor([0.3, 0.1, 0.2]).view(1, 3, 1, 1)
    assert torch.equal(ShotWeights(1, 2)(psi[:, :1]), torch.ones(1, 1, 1, 1))
    assert torch.allclose(ShotWeights(3, 0)(psi), torch.full((1, 3, 1, 1), 1 / 3))  # released init: equal
    torch.manual_seed(0)
    w = ShotWeights(3, 2)
    out = w(psi)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-6)
    perm = torch.tensor([2, 0, 1])                                     # weights follow their shot
    assert torch.allclose(w(psi[:, perm]), out[:, perm], atol=1e-6)


def _episode(shot=1, b=2, size=33):
    g = torch.Generator().manual_seed(3)
    return (torch.randn(b, 3, size, size, generator=g), torch.randn(b, shot, 3, size, size, generator=g),
            (torch.rand(b, shot, size, size, generator=g) > 0.5).long(), (torch.rand(b, size, size, generator=g) > 0.5).long())


@pytest.mark.parametrize("shot", [1, 2])
def test_training_step_reaches_only_the_meta_learner(shot):
    net = build_model(cfg("shot", str(shot)))
    q, s, m, y = _episode(shot)
    net.train()
    assert not net.backbone.training and not net.base_learner.training
    logits, losses = net(q, s, m, query_mask=y, classes=torch.tensor([0, 4]))
    assert logits.shape == (2, 2, 33, 33) and set(losses) == {"main", "meta", "total"}
    losses["total"].backward()
    assert all(p.grad is None for p in net.backbone.parameters())
    assert all(p.grad is None for p in net.base_learner.parameters())
    assert net.ensemble.cls_merge.weight.grad is not None and net.merge[0].weight.grad.abs().sum() > 0
    if shot > 1:
        assert net.shot_weights.net[0].weight.grad is not None
    net.eval()
    assert net(q, s, m).shape == (2, 2, 33, 33)


def _release_state(net, *, psp=False):
    """The state dict the release would save for `net`, with its names (DataParallel prefix)."""
    out = {}
    for key, value in net.state_dict().items():
        if key.startswith("backbone."):
            out["module." + key[len("backbone."):]] = value.clone()
            if psp:  # PSPNet's nn.Sequential `encoder` holds layer0..4 a second time
                out["module.encoder." + key[len("backbone.layer"):]] = value.clone()
            continue
        rel = {v: k for k, v in RELEASE_NAMES.items()}
        if psp:
            rel = {"base_learner.ppm.": "ppm.", "base_learner.cls.": "cls."}
        prefix = next(p for p in rel if key.startswith(p))
        out["module." + rel[prefix] + key[len(prefix):]] = value.clone()
    return out


@pytest.mark.parametrize("shot", [1, 2])
def test_release_bam_checkpoint_loads_strictly(tmp_path, shot):
    src = build_model(cfg("shot", str(shot)))
    torch.save({"epoch": 1, "state_dict": _release_state(src)}, tmp_path / "bam.pth")
    assert any(k.startswith("module.learner_base.1.4") for k in _release_state(src))
    dst = build_model(cfg("shot", str(shot)))
    assert load_weights(dst, str(tmp_path / "bam.pth")) == {}
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    bad = _release_state(src)
    bad["module.extra_head.weight"] = torch.zeros(1)
    torch.save({"state_dict": bad}, tmp_path / "bad.pth")
    with pytest.raises(UserError, match="extra_head"):
        load_weights(dst, str(tmp_path / "bad.pth"))


def _stage1(c, path, **config):
    psp = PSPNet(build_backbone(c.backbone, pretrained=False, initmodel_dir="", bn_mode="frozen"), c.num_train_classes)
    torch.save({"format": "x", "model": psp.state_dict(), "config": {**dict(c), **config}}, path)
    return psp


def test_stage2_loads_the_stage1_file_and_refuses_another_fold(tmp_path):
    c = cfg()
    psp = _stage1(c, tmp_path / "best.pth")
    net = build_model(c.replace(base_weight=str(tmp_path / "best.pth")))
    assert torch.equal(net.base_learner.cls[4].weight, psp.base_learner.cls[4].weight)
    assert torch.equal(net.backbone.layer2[0].weight, psp.backbone.layer2[0].weight)
    _stage1(c, tmp_path / "fold1.pth", split=1)
    with pytest.raises(UserError, match="another fold or backbone: split 1 .now 0."):
        build_model(c.replace(base_weight=str(tmp_path / "fold1.pth")))


def test_release_pspnet_checkpoint_with_encoder_copy_loads(tmp_path):
    c = cfg()
    psp = PSPNet(build_backbone("vgg", pretrained=False, initmodel_dir="", bn_mode="frozen"), c.num_train_classes)
    torch.save({"state_dict": _release_state(psp, psp=True)}, tmp_path / "psp.pth")
    net = build_model(c.replace(base_weight=str(tmp_path / "psp.pth")))
    assert torch.equal(net.base_learner.ppm.features[3][1].weight, psp.base_learner.ppm.features[3][1].weight)
    fresh = PSPNet(build_backbone("vgg", pretrained=False, initmodel_dir="", bn_mode="frozen"), c.num_train_classes)
    load_weights(fresh, str(tmp_path / "psp.pth"))
    assert torch.equal(fresh.backbone.layer4[0].weight, psp.backbone.layer4[0].weight)


def test_missing_stage1_file_names_path_and_command(tmp_path):
    c = cfg("base_weight", str(tmp_path / "exp/{dataset}/split{split}_{backbone}_pspnet/model/best.pth"))
    with pytest.raises(UserError) as e:
        build_model(c)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "exp/toy/split0_vgg_pspnet/model/best.pth") in msg
    assert "python train_base.py --config config/toy/toy_split0_vgg_pspnet.yaml" in msg


def test_ntrenet_as_meta_learner_trains_and_round_trips(tmp_path):
    c = cfg("meta_learner", "ntrenet", "shot", "2", "ppm_scales", "[1.0,0.5]", "bg_dim", "16", "pcl_samples", "4")
    net = build_model(c)
    q, s, m, y = _episode(shot=2)
    net.train()
    logits, losses = net(q, s, m, query_mask=y, classes=torch.tensor([1, 2]))
    assert {"main", "meta", "bg", "pcl", "total"} <= set(losses)
    assert losses["total"].item() == pytest.approx(losses["main"].item() + losses["meta"].item(), rel=1e-5)
    losses["total"].backward()
    assert all(p.grad is None for p in net.base_learner.parameters())
    assert net.shot_weights.net[0].weight.grad is not None and net.bgmm.prototype.grad is not None
    net.eval()
    final = net(q, s, m)
    torch.save({"model": net.state_dict()}, tmp_path / "nb.pth")
    other = build_model(c.replace(bam_output="meta"))
    load_weights(other, str(tmp_path / "nb.pth"))
    other.eval()
    meta = other(q, s, m)
    assert final.shape == meta.shape == (2, 2, 33, 33) and not torch.allclose(final, meta)
