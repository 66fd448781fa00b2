"""The iFSL head on hand tensors (background merge, presence by max pooling, L_S, L_C) and
around registered methods: N ways batched, 1-way training with the method's losses, state dict
unchanged, weak labels refused for methods without a class-tag objective."""
import math

import pytest
import torch
import torch.nn.functional as F

from model import build_model
from model.fscs.ifsl import (IFSLHead, class_presence, classification_loss, merge_background, segmentation_loss,
                        way_mask)
from util.config import ConfigError, load_config


def _logp(p_fg):
    """Per-way foreground probabilities [B,N,H,W] -> log-probabilities [B,N,2,H,W]."""
    return torch.stack([torch.log(1 - p_fg), torch.log(p_fg)], dim=2)


def test_merge_background_and_presence_by_hand():
    p = torch.tensor([[[[0.9, 0.2]], [[0.3, 0.4]]]])  # B1, N2, H1, W2
    fg = _logp(p)
    merged = merge_background(fg)
    assert merged.shape == (1, 3, 1, 2)
    bg = [(math.log(0.1) + math.log(0.7)) / 2, (math.log(0.8) + math.log(0.6)) / 2]
    assert merged[0, 0, 0].tolist() == pytest.approx(bg)
    assert merged.argmax(1)[0, 0].tolist() == [1, 0]
    assert class_presence(fg).tolist() == [[True, False]]  # way 2 peaks at 0.4 < 0.5
    assert class_presence(_logp(torch.full((1, 1, 2, 2), 0.5))).tolist() == [[True]]  # >= 0.5


def test_losses_by_hand():
    p = torch.tensor([[[[0.8, 0.25]]]])  # 1 way
    fg = _logp(p)
    target = torch.tensor([[[1, 255]]])
    assert float(segmentation_loss(fg, target)) == pytest.approx(-math.log(0.8))
    # L_C: NLL of the mean log-probabilities, tag "present"
    assert float(classification_loss(fg, torch.tensor([[True]]))) == pytest.approx(
        -(math.log(0.8) + math.log(0.25)) / 2)
    assert way_mask(torch.tensor([0, 2, 1, 255]), 2).tolist() == [0, 1, 0, 255]


def _cfg(model="pfenet", *extra):
    return load_config(None, ["model", model, "backbone", "vgg", "pretrained", "false", "reduce_dim", "16",
                              "ppm_scales", "[1.0,0.5]", "ifsl", "true", "pcl_samples", "4", "dataset", "toy",
                              *extra])


@pytest.mark.parametrize("model", ["pfenet", "ntrenet", "bam"])
def test_wrapped_method_ways_match_one_way_runs(model):
    torch.manual_seed(0)
    net = build_model(_cfg(model, "base_weight", "none")).eval()
    assert isinstance(net, IFSLHead)
    q, s = torch.randn(2, 3, 33, 33), torch.randn(2, 2, 1, 3, 33, 33)
    m = (torch.rand(2, 2, 1, 33, 33) > 0.5).long()
    with torch.no_grad():
        out = net(q, s, m)
        single = [F.log_softmax(net.net(q, s[:, n], m[:, n]), dim=1) for n in range(2)]
    assert out.shape == (2, 2, 2, 33, 33)
    for n in range(2):
        assert torch.allclose(out[:, n], single[n], atol=1e-5)
    assert set(net.state_dict()) == set(net.net.state_dict())  # checkpoints are the method's


@pytest.mark.parametrize("model, own", [("ntrenet", {"bg", "pcl"}), ("bam", {"main", "meta"})])
def test_wrapped_training_keeps_the_method_losses(model, own):
    torch.manual_seed(0)
    net = build_model(_cfg(model, "base_weight", "none")).train()
    q, s = torch.randn(2, 3, 33, 33), torch.randn(2, 1, 1, 3, 33, 33)
    m = (torch.rand(2, 1, 1, 33, 33) > 0.5).long()
    qm = torch.zeros(2, 33, 33, dtype=torch.long)
    qm[0, 5:20, 5:20] = 1  # episode 1: the class is absent, its label all background
    logp, losses = net(q, s, m, query_mask=qm, classes=torch.tensor([[0], [3]]))
    assert logp.shape == (2, 1, 2, 33, 33) and {"total", *own} <= set(losses)
    losses["total"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters() if p.requires_grad)


def test_weak_labels_need_asnet_and_a_tagged_benchmark():
    with pytest.raises(ConfigError, match="weak.*model asnet"):
        _cfg("pfenet", "weak", "true")
    with pytest.raises(ConfigError, match="weak.*needs ifsl true"):
        load_config(None, ["weak", "true"])
