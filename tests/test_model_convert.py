"""Checkpoints: official PFENet / NTRENet layouts (fakes built from the reference .tsv
shapes), the project's own format, and ImageNet backbone files."""
import ast
import os

import pytest
import torch

from model import build_model, load_weights
from model.backbones.encoder import build_backbone
from model.checkpoints.convert import from_official, read_state, to_official
from util.config import load_config
from util.errors import UserError

REFERENCE = "/work/shared/reference"
needs_reference = pytest.mark.skipif(not os.path.isdir(REFERENCE), reason="reference layouts not present")


def tsv_layout(name):
    rows = [line.split("\t") for line in open(os.path.join(REFERENCE, name)).read().splitlines() if line]
    return {k: (ast.literal_eval(shape), dtype.strip()) for k, shape, dtype in rows}


def fake_state(layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.zeros(shape, dtype=torch.long) if dtype == "torch.int64" else torch.randn(shape, generator=g))
            for k, (shape, dtype) in layout.items()}


def make_cfg(*overrides):
    return load_config(None, ["pretrained", "false", "pcl_bank_size", "4", "pcl_samples", "2", *overrides])


PFENET = ("use_bgem", "false", "use_doem", "false", "use_pcl", "false")


@pytest.fixture(scope="module")
def pfenet():
    return build_model(make_cfg(*PFENET))  # paper baseline, bins 60/30/15/8


@needs_reference
def test_all_off_matches_pfenet_layout_exactly(pfenet):
    layout = tsv_layout("pfenet_resnet50.tsv")
    ours = {k: tuple(v.shape) for k, v in to_official(pfenet.state_dict()).items()}
    assert ours == {k: shape for k, (shape, _) in layout.items()}


@needs_reference
def test_full_model_matches_ntrenet_release_layout():
    net = build_model(make_cfg("bg_dim", "256"))
    layout = tsv_layout("nertnet_resnet50_bgpro1.tsv")
    ours = {k: tuple(v.shape) for k, v in to_official(net.state_dict()).items()}
    assert ours == {k: shape for k, (shape, _) in layout.items()}


@needs_reference
@pytest.mark.parametrize("wrap,prefix", [("state_dict", True), (None, False)])
def test_fake_official_pfenet_checkpoint_loads_strictly(pfenet, tmp_path, wrap, prefix):
    state = fake_state(tsv_layout("pfenet_resnet50.tsv"))
    if not prefix:
        state = {k[len("module."):]: v for k, v in state.items()}
    path = tmp_path / "pfenet.pth"
    torch.save({"epoch": 200, wrap: state, "optimizer": {}} if wrap else state, path)
    load_weights(pfenet, str(path))
    own = pfenet.state_dict()
    assert torch.equal(own["fm.merge.2.0.weight"], state[("module." if prefix else "") + "init_merge.2.0.weight"])
    assert torch.equal(own["backbone.layer0.0.weight"], state[("module." if prefix else "") + "layer0.0.weight"])


@pytest.fixture(scope="module")
def ntrenet_release(tmp_path_factory):
    """A fake released NTRENet checkpoint (bgpro_num 1: bg_dim 256): (path, state)."""
    state = fake_state(tsv_layout("nertnet_resnet50_bgpro1.tsv"), seed=1)
    path = tmp_path_factory.mktemp("release") / "ntre.pth"
    torch.save({"epoch": 1, "state_dict": state, "optimizer": {}}, path)
    return str(path), state


@needs_reference
def test_fake_ntrenet_release_loads_and_own_format_round_trips(tmp_path, ntrenet_release):
    net = build_model(make_cfg("bg_dim", "256"))
    path, state = ntrenet_release
    load_weights(net, path)
    assert torch.equal(net.bgmm.prototype, state["module.bg_prototype"])
    assert torch.equal(net.doem.convs[3][0].weight, state["module.init_merge3.3.0.weight"])
    assert net.pcl.bank.count.sum() == 0  # the release has no bank
    net.pcl.bank.push(torch.randn(3, 256), torch.tensor([0, 0, 5]))
    torch.save({"model": net.state_dict(), "epoch": 3, "optimizer": {}}, tmp_path / "own.pth")
    other = build_model(make_cfg("bg_dim", "256"))
    load_weights(other, str(tmp_path / "own.pth"))
    for k, v in net.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k
    assert read_state(str(tmp_path / "own.pth"))[1] == "own"


@needs_reference
def test_ntrenet_checkpoint_into_pfenet_config_names_keys_and_switches(pfenet, ntrenet_release):
    with pytest.raises(UserError) as err:
        load_weights(pfenet, ntrenet_release[0])
    msg = str(err.value)
    assert "use_bgem True (model: False)" in msg and "use_doem True" in msg and "bg_dim 256" in msg
    assert "bg_cls.0.weight (= bgmm.head.0.weight)" in msg and "init_merge3.0.0.weight (= doem.convs.0.0.weight)" in msg


def test_unknown_and_wrong_shape_keys_are_readable(pfenet, tmp_path):
    state = to_official(pfenet.state_dict())
    state["module.mystery.weight"] = torch.zeros(1)
    torch.save({"state_dict": state}, tmp_path / "bad.pth")
    with pytest.raises(UserError, match="mystery.weight.*right file"):
        load_weights(pfenet, str(tmp_path / "bad.pth"))
    del state["module.mystery.weight"]
    state["module.bg_prototype"] = torch.zeros(1, 640, 1, 1)
    torch.save({"state_dict": state}, tmp_path / "bg.pth")
    with pytest.raises(UserError, match="bg_dim 640"):
        load_weights(pfenet, str(tmp_path / "bg.pth"))
    with pytest.raises(UserError, match="not found"):
        load_weights(pfenet, str(tmp_path / "absent.pth"))


def test_from_official_reports_unmapped():
    mapped, unmapped = from_official({"module.layer4.0.conv1.weight": 1, "module.cls.3.bias": 2, "x.y": 3})
    assert mapped == {"backbone.layer4.0.conv1.weight": 1, "fem.head.3.bias": 2} and unmapped == ["x.y"]


@needs_reference
@pytest.mark.parametrize("arch", ["resnet50", "resnet101"])
def test_initmodel_files_load_strictly(tmp_path, arch):
    state = fake_state(tsv_layout(f"{arch}_v2_deepstem_initmodel.tsv"))
    assert "fc.weight" in state  # present in the real files, unused
    torch.save(state, tmp_path / f"{arch}_v2.pth")
    backbone = build_backbone(arch, pretrained=True, initmodel_dir=str(tmp_path), bn_mode="frozen")
    assert torch.equal(backbone.layer0[3].weight, state["conv2.weight"])
    assert torch.equal(backbone.layer3[5].bn3.running_var, state["layer3.5.bn3.running_var"])
    assert all(not p.requires_grad for p in backbone.parameters())
    if arch == "resnet50":
        del state["layer2.0.conv1.weight"]
        state["layer9.weight"] = torch.zeros(1)
        torch.save(state, tmp_path / "resnet50_v2.pth")
        with pytest.raises(UserError, match=r"(?s)missing \(1\): layer2.0.conv1.weight.*unexpected \(1\): layer9"):
            build_backbone(arch, pretrained=True, initmodel_dir=str(tmp_path), bn_mode="frozen")


def test_vgg_initmodel_is_torchvision_layout(tmp_path):
    import torchvision
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"], batch_norm=True)
    state = {f"features.{k}": torch.randn_like(v.float()).to(v.dtype) for k, v in features.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)
    torch.save(state, tmp_path / "vgg16_bn.pth")
    backbone = build_backbone("vgg", pretrained=True, initmodel_dir=str(tmp_path), bn_mode="reference")
    assert torch.equal(backbone.layer2[7].weight, state["features.21.weight"])  # 14-23 -> layer2
    assert torch.equal(backbone.layer4[0].weight, state["features.34.weight"])


def test_missing_initmodel_says_where_to_get_it(tmp_path):
    with pytest.raises(UserError) as err:
        build_model(load_config(None, ["initmodel_dir", str(tmp_path)]))
    msg = str(err.value)
    assert os.path.join(str(tmp_path), "resnet50_v2.pth") in msg and "PFENet" in msg and "pretrained false" in msg
