"""The iFSL release's PFENet checkpoints: its layout (key names and shapes of the released model in
tests/fixtures/ifsl_pfenet_release_layout.json) loads strictly into `model pfenet`, `ifsl true`,
`backbone resnet50_torchvision`; the torchvision-stem backbone reads torchvision's ImageNet file;
a deep-stem configuration refuses the file naming the backbone."""
import json
from pathlib import Path

import pytest
import torch
import torchvision

from model import build_model, load_weights
from model.backbones.encoder import build_backbone
from model.checkpoints.convert import official_to_own
from model.checkpoints.ifsl_pfenet import ifsl_key_to_pfenet, is_ifsl_pfenet
from util.config import load_config
from util.errors import UserError

LAYOUT = json.loads((Path(__file__).parent / "fixtures" / "ifsl_pfenet_release_layout.json").read_text())["resnet50"]


def _cfg(*extra):
    return load_config(None, ["model", "pfenet", "ifsl", "true", "backbone", "resnet50_torchvision", "pretrained",
                              "false", "dataset", "toy", "ppm_scales", "[50, 25, 13, 7]", *extra])


def test_ifsl_keys_by_hand():
    assert ifsl_key_to_pfenet("backbone0.1.running_mean") == "layer0.1.running_mean"
    assert ifsl_key_to_pfenet("backbone3.5.conv2.weight") == "layer3.5.conv2.weight"
    assert ifsl_key_to_pfenet("down_spt.0.weight") == "down_supp.0.weight"
    assert ifsl_key_to_pfenet("learner.init_merge.2.0.weight") == "init_merge.2.0.weight"
    assert official_to_own(ifsl_key_to_pfenet("learner.init_merge.2.0.weight")) == "fm.merge.2.0.weight"
    assert official_to_own(ifsl_key_to_pfenet("down_qry.0.weight")) == "reduce_query.0.weight"
    assert is_ifsl_pfenet({"down_qry.0.weight": None}) and not is_ifsl_pfenet({"learner.decoder1.0.weight": None})


@pytest.fixture(scope="module")
def release_file(tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    state = {k: torch.zeros((), dtype=torch.long) if k.endswith("num_batches_tracked") else
             torch.rand(shape, generator=g) + 0.5 if k.endswith("running_var") else
             torch.randn(shape, generator=g) * 0.1 for k, shape in LAYOUT}
    path = tmp_path_factory.mktemp("ifsl") / "pfenet-pascal-fold0.ckpt"
    torch.save({"epoch": 20, "pytorch-lightning_version": "1.3.8", "state_dict": state}, path)
    return path, state


def test_release_checkpoint_loads_strictly(release_file):
    path, state = release_file
    torch.manual_seed(0)
    net = build_model(_cfg())
    own = net.state_dict()
    assert len(own) == len(state) == 353
    assert own["backbone.layer0.0.weight"].shape == (64, 3, 7, 7)  # torchvision stem
    assert load_weights(net, str(path)) == {}
    own = net.state_dict()
    for key, value in state.items():
        assert torch.equal(own[official_to_own(ifsl_key_to_pfenet(key))], value), key
    net.eval()
    q, s = torch.randn(1, 3, 65, 65), torch.randn(1, 2, 1, 3, 65, 65)
    m = torch.zeros(1, 2, 1, 65, 65)
    m[..., 10:40, 20:50] = 1
    with torch.no_grad():
        fg = net(q, s, m)
    assert fg.shape == (1, 2, 2, 65, 65) and torch.isfinite(fg).all()


def test_deep_stem_configuration_refuses_it(release_file):
    path, _ = release_file
    net = build_model(_cfg("backbone", "resnet50"))
    with pytest.raises(UserError, match=r"(?s)does not fit this model.*backbone resnet50_torchvision \(model: "
                                        r"resnet50\).*deep stem resnet50 vs resnet50_torchvision"):
        load_weights(net, str(path))


def test_torchvision_stem_reads_torchvision_imagenet_file(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.resnet50(weights=None).state_dict()
    torch.save(tv, tmp_path / "resnet50_torchvision.pth")
    backbone = build_backbone("resnet50_torchvision", pretrained=True, initmodel_dir=str(tmp_path), bn_mode="frozen")
    own = backbone.state_dict()
    assert torch.equal(own["layer0.0.weight"], tv["conv1.weight"])
    assert torch.equal(own["layer0.1.running_var"], tv["bn1.running_var"])
    assert torch.equal(own["layer4.2.conv3.weight"], tv["layer4.2.conv3.weight"])
    torch.save(tv, tmp_path / "resnet50_v2.pth")  # the same file where the deep-stem one belongs
    with pytest.raises(UserError, match="does not fit the resnet50 backbone"):
        build_backbone("resnet50", pretrained=True, initmodel_dir=str(tmp_path), bn_mode="frozen")
