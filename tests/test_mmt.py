"""Meta-memory transfer against hand computations: channel statistics, the momentum update of the
slots, L_orth, the enhancement, L_cont, L_pro, the ablation switches, and the memory saved and
restored exactly by resume."""
import math
import os
import shutil

import pytest
import torch

import train
from conftest import toy_overrides
from model import build_model
from model.mmt.meta_memory import (MetaMemory, MetaMemoryTransfer, channel_stats, contrastive_loss, enhance, orthogonality_loss,
                       prototype_loss)
from util.config import load_config
from util.engine.checkpoint import read_checkpoint

EPS = 1e-5


def test_channel_stats():
    feat = torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]]])  # [1, 2, 1, 2]
    mu, v = channel_stats(feat)
    assert mu.tolist() == [[2.0, 2.0]]
    assert torch.allclose(v, torch.tensor([[math.sqrt(1 + EPS), math.sqrt(EPS)]]))


def test_memory_update_by_similarity_weighted_momentum():
    mem = MetaMemory(2, slots=2, momentum=0.5, temperature=1.0)
    with torch.no_grad():
        mem.means.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        mem.variances.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    feat = torch.tensor([[2.0, 0.0], [0.0, 3.0]])[..., None, None]  # two instances, 1 x 1: mu_b = value, var 0
    mem.update(feat)
    e = math.e
    s11, s12 = e / (e + 1), 1 / (e + 1)  # softmax over the batch of cos(m_1, mu_b) = (1, 0)
    assert torch.allclose(mem.means[0], torch.tensor([0.5 + 0.5 * 2 * s11, 0.5 * 3 * s12]))
    assert torch.allclose(mem.means[1], torch.tensor([0.5 * 2 * s12, 0.5 + 0.5 * 3 * s11]))
    # both instances have v_b = sqrt(eps) (1, 1): equal weights 1/2 for every slot
    r = math.sqrt(EPS)
    assert torch.allclose(mem.variances, torch.tensor([[0.5 + 0.5 * r, 0.5 * r], [0.5 * r, 0.5 + 0.5 * r]]))


def test_orthogonality_loss():
    means = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # |cos| = 1/sqrt(2), counted twice (ij and ji)
    variances = torch.tensor([[1.0, 0.0], [0.0, 3.0]])  # orthogonal: 0
    assert torch.allclose(orthogonality_loss(means, variances), torch.tensor(math.sqrt(2) / 8))
    assert orthogonality_loss(variances, variances) == 0


def test_enhancement_mixes_own_and_memory_statistics():
    feat = torch.tensor([[[[0.0, 2.0]]]])  # mu 1, v 1
    out = enhance(feat, mu_memory=torch.tensor([[3.0]]), v_memory=torch.tensor([[2.0]]), alpha=0.5, eps=0.0)
    assert torch.allclose(out, torch.tensor([[[[-1.5 + 2.0, 1.5 + 2.0]]]]))  # f_norm (-1, 1) * 1.5 + 2
    same = enhance(feat, torch.tensor([[3.0]]), torch.tensor([[2.0]]), alpha=1.0, eps=0.0)
    assert torch.allclose(same, feat)  # alpha 1: the feature's own statistics, unchanged


def test_contrastive_loss():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # each of the 4 views: partner cos 1, two others cos 0 -> -log(e / (e + 2))
    assert torch.allclose(contrastive_loss(a, a.clone(), temperature=1.0), torch.tensor(math.log(1 + 2 / math.e)))
    assert contrastive_loss(a[:1], a[:1], temperature=1.0) == 0  # one episode: no negative


def test_prototype_loss():
    query = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # pixels (1, 0) and (0, 1)
    supports = query[:, None].clone()
    support_masks = torch.tensor([[[[1.0, 0.0]]]])  # target = pixel 0
    query_mask = torch.tensor([[[1, 0]]])
    loss = prototype_loss(query, supports, support_masks, query_mask, scale=2.0)
    assert torch.allclose(loss, torch.tensor(math.log(1 + math.exp(-2))))  # each pixel: its logit 2 vs 0
    ignored = prototype_loss(query, supports, support_masks, torch.tensor([[[1, 255]]]), scale=2.0)
    assert torch.allclose(ignored, loss)


def test_switches_and_eval_leave_memory_alone():
    torch.manual_seed(0)
    mmt = MetaMemoryTransfer(3, slots=2, enhance_train=False, enhance_test=False)
    q, s = torch.randn(2, 3, 4, 4), torch.randn(2, 1, 3, 4, 4)
    before = mmt.memory.means.detach().clone()
    q2, s2, other = mmt.views(q, s)
    assert q2 is q and s2 is s and torch.allclose(other, mmt.memory(q))  # Cons only: enhanced view for L_cont
    assert not torch.equal(mmt.memory.means, before)  # training updated the slots
    mmt.eval()
    after = mmt.memory.means.detach().clone()
    assert mmt.views(q, s) == (q, s, None) and torch.equal(mmt.memory.means, after)
    mmt.enhance_test = True
    q3, s3, _ = mmt.views(q, s)
    assert torch.allclose(q3, mmt.memory(q)) and s3.shape == s.shape and torch.equal(mmt.memory.means, after)


def test_ntrenet_and_pfenet_train_with_mmt():
    for model in ("ntrenet", "pfenet"):
        cfg = load_config(None, ["model", model, "use_mmt", "true", "pretrained", "false", "backbone", "vgg",
                                 "ppm_scales", "[1.0]", "reduce_dim", "16", "pcl_samples", "4"])
        torch.manual_seed(0)
        net = build_model(cfg).train()
        q, s = torch.randn(2, 3, 33, 33), torch.randn(2, 1, 3, 33, 33)
        sm, qm = (torch.rand(2, 1, 33, 33) > 0.5).long(), (torch.rand(2, 33, 33) > 0.5).long()
        _, losses = net(q, s, sm, qm, torch.tensor([0, 1]))
        parts = losses["mmt_orth"] + losses["mmt_cont"] + losses["mmt_pro"]
        assert torch.allclose(losses["mmt"], parts) and losses["mmt_cont"] > 0
        losses["total"].backward()
        assert net.mmt.memory.means.grad.abs().sum() > 0 and net.reduce_query[0].weight.grad is not None


def test_memory_resumes_exactly(toy_tree, tmp_path):
    cfg = "config/toy/toy_split0_vgg.yaml"
    args = [*toy_overrides(toy_tree), "use_mmt", "true", "pretrained", "false", "val_every", "0", "reduce_dim", "16",
            "max_iters_per_epoch", "1"]
    kept = []
    original = train.Run.save

    def save_and_keep(self, name):
        original(self, name)
        if name == "last.pth" and self.epoch == 1:
            kept.append(shutil.copy(os.path.join(self.model_dir, name), os.path.join(self.model_dir, "epoch1.pth")))

    train.Run.save = save_and_keep
    try:
        assert train.main(["--config", cfg, *args, "save_path", str(tmp_path / "full")]) == 0
    finally:
        train.Run.save = original
    assert train.main(["--config", cfg, *args, "save_path", str(tmp_path / "resumed"), "resume", kept[0]]) == 0
    a = read_checkpoint(str(tmp_path / "full/model/last.pth"))["model"]
    b = read_checkpoint(str(tmp_path / "resumed/model/last.pth"))["model"]
    first = read_checkpoint(kept[0])["model"]
    assert "mmt.memory.means" in a and not torch.equal(first["mmt.memory.means"], a["mmt.memory.means"])
    assert all(torch.equal(a[k], b[k]) for k in a)
