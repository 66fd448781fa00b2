"""SCNet's self-contrastive query branch: k-means, eq. 5-7, loss wiring (eq. 9), eval unchanged."""
import dataclasses
import glob

import pytest
import torch

from model import build_model
from model.scnet.kmeans import kmeans_cosine
from model.losses.objective import LossWeights, weighted_total
from model.scnet.self_contrastive import SelfContrastBranch, background_regions, expand, region_prototypes
from util.config import load_config

SIZE = 41  # feature size 6


def make_cfg(*overrides):
    return load_config(None, ["pretrained", "false", "ppm_scales", "[4,2]", "reduce_dim", "32", "pcl_bank_size", "8",
                              "pcl_samples", "4", "bg_dim", "16", *overrides])


OFF = ("use_bgem", "false", "use_doem", "false", "use_pcl", "false")


def episode(b=2, k=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, 3, SIZE, SIZE, generator=g)
    s = torch.randn(b, k, 3, SIZE, SIZE, generator=g)
    sm = torch.zeros(b, k, SIZE, SIZE, dtype=torch.long)
    sm[..., 8:30, 10:35] = 1
    qm = torch.zeros(b, SIZE, SIZE, dtype=torch.long)
    qm[:, 12:32, 4:24] = 1
    qm[:, -3:, :] = 255
    return q, s, sm, qm, torch.arange(b) % 15


def planted(b=2, h=6, w=8, c=16, seed=0):
    """Feature maps [B,C,h,w] made of 3 regions with distinct directions, random magnitudes and noise."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.eye(c)[:3] * 4 + 0.3 * torch.rand(3, c, generator=g)   # three distinct directions
    labels = torch.zeros(b, h, w, dtype=torch.long)
    labels[:, :, w // 2:] = 1
    labels[:, h // 2:, : w // 2] = 2
    labels[1:] = labels[1:].flip(-1)                                      # a different layout per image
    feats = dirs[labels] * (0.5 + 2 * torch.rand(b, h, w, 1, generator=g))  # cosine ignores magnitude
    feats = feats + 0.2 * torch.rand(b, h, w, c, generator=g)
    return feats.permute(0, 3, 1, 2), labels


def same_partition(a, b):
    """a and b label the same partition (up to renaming the clusters)."""
    pairs = set(zip(a.flatten().tolist(), b.flatten().tolist()))
    return len(pairs) == len(set(a.flatten().tolist())) == len(set(b.flatten().tolist()))


def test_kmeans_recovers_planted_regions_batched_and_deterministic():
    feats, labels = planted()
    rng = torch.get_rng_state()
    assign, centres = kmeans_cosine(feats.flatten(2).transpose(1, 2), 3)
    assert torch.equal(torch.get_rng_state(), rng)  # draws nothing from the global RNG
    assign = assign.view(labels.shape)
    assert all(same_partition(assign[i], labels[i]) for i in range(2))
    assert torch.allclose(centres.norm(dim=-1), torch.ones(2, 3))
    again, _ = kmeans_cosine(feats.flatten(2).transpose(1, 2), 3)
    assert torch.equal(again.view(labels.shape), assign)
    one, _ = kmeans_cosine(feats.flatten(2).transpose(1, 2), 1)
    assert (one == 0).all()


def test_kmeans_leaves_surplus_clusters_empty_without_nan():
    x = torch.ones(1, 20, 4)  # identical pixels: one real cluster
    assign, centres = kmeans_cosine(x, 3)
    assert torch.isfinite(centres).all() and len(assign.unique()) == 1


def test_foreground_is_excluded_from_regions():
    feats, labels = planted(b=1)
    fg = torch.zeros(1, 1, 6, 8)
    fg[..., 1:4, 2:7] = 1  # overlaps all three clusters
    regions = background_regions(labels, 3, 1 - fg)                     # eq. 5
    assert (regions * fg).sum() == 0
    assert torch.equal(regions.sum(dim=1, keepdim=True), 1 - fg)
    protos = region_prototypes(feats, regions)                           # eq. 6
    manual = feats[0][:, (labels[0] == 1) & (fg[0, 0] == 0)].mean(dim=1)
    assert torch.allclose(protos[0, 1], manual, atol=1e-3)


def branch_inputs():
    high, labels = planted(b=2, c=16)
    proto_feat = torch.randn(2, 8, 6, 8)
    query_mask = torch.zeros(2, 6, 8, dtype=torch.long)  # label at feature size for exact checks
    query_mask[:, 0:3, 0:4] = 1    # in image 0 this is all of cluster 0 (cluster 0 becomes empty)
    query_mask[:, 5, 7] = 255
    return high, proto_feat, torch.rand(2, 1, 6, 8), query_mask, labels


def test_pairing_own_prototype_on_background_random_nonempty_one_on_foreground():
    high, proto_feat, prior, query_mask, labels = branch_inputs()
    branch = SelfContrastBranch(clusters=3)
    assign = kmeans_cosine(high.flatten(2).transpose(1, 2), 3)[0].view(2, 6, 8)
    protos = region_prototypes(proto_feat, background_regions(assign, 3, (query_mask == 0).float()[:, None]))
    bg, seen = query_mask == 0, set()
    for seed in range(8):
        ep = branch.episode(high, proto_feat, prior, query_mask, torch.Generator().manual_seed(seed))
        assert torch.allclose(ep.protos.permute(0, 2, 3, 1)[bg], protos[bg.nonzero()[:, 0], assign[bg]])
        for i in range(2):
            fg = ep.protos[i][:, query_mask[i] == 1]                      # [C, n_fg], one prototype
            assert torch.allclose(fg, fg[:, :1].expand_as(fg))
            match = [r for r in range(3) if torch.allclose(fg[:, 0], protos[i, r])]
            assert match, "the foreground prototype is not one of the region prototypes"
            nonempty = [r for r in range(3) if (bg[i] & (assign[i] == r)).any()]
            assert set(match) & set(nonempty)
            seen.add((i, match[0]))
    assert {r for i, r in seen if i == 1} == {0, 1, 2}  # every region gets picked at some point
    assert len({r for i, r in seen if i == 0}) == 2     # image 0: the empty region never is


def test_targets_and_prior_choices():
    high, proto_feat, prior, query_mask, _ = branch_inputs()
    ep = SelfContrastBranch(clusters=3).episode(high, proto_feat, prior, query_mask)
    assert torch.equal(ep.target[query_mask == 1], torch.zeros_like(ep.target[query_mask == 1]))
    assert (ep.target[query_mask == 0] == 1).all() and (ep.target[query_mask == 255] == 255).all()
    assert ep.prior.shape == (2, 1, 6, 8) and ep.prior.min() >= 0 and ep.prior.max() <= 1 + 1e-6
    bg, fg = ep.prior[:, 0][query_mask == 0], ep.prior[:, 0][query_mask == 1]
    assert bg.mean() > fg.mean()  # a pixel resembles its own region more than a random one
    zeros = SelfContrastBranch(prior="zeros").episode(high, proto_feat, prior, query_mask)
    support = SelfContrastBranch(prior="support").episode(high, proto_feat, prior, query_mask)
    assert (zeros.prior == 0).all() and torch.equal(support.prior, prior)
    all_fg = torch.ones_like(query_mask)
    none = SelfContrastBranch().episode(high, proto_feat, prior, all_fg)
    assert (none.target == 255).all() and torch.isfinite(none.protos).all()
    with pytest.raises(ValueError, match="scnet_prior"):
        SelfContrastBranch(prior="max")


def test_weighted_total_is_eq9():
    terms = {k: torch.tensor(v) for k, v in
             dict(main=1.0, ini=2.0, fem=3.0, bg=4.0, pcl=5.0, scnet=6.0).items()}
    w = LossWeights(scnet=0.3)
    seg = 1.0 + w.ini * 2.0 + w.fem * 3.0
    expected = 0.7 * seg + 0.3 * 6.0 + w.bg * 4.0 + w.pcl * 5.0
    assert torch.allclose(weighted_total(terms, w)["total"], torch.tensor(expected))


def train_losses(net, ep, seed=0):
    torch.manual_seed(seed)
    net.train()
    return net(*ep[:3], ep[3], ep[4])[1]


@pytest.fixture(scope="module")
def pfenet_pair():
    """PFENet baseline without / with the branch (lambda 0.3), same weights."""
    torch.manual_seed(0)
    off = build_model(make_cfg(*OFF))
    on = build_model(make_cfg(*OFF, "use_scnet", "true", "scnet_lambda", "0.3"))
    assert list(on.state_dict()) == list(off.state_dict())  # no parameters: official checkpoints keep loading
    on.load_state_dict(off.state_dict())
    return off, on


def assert_same_losses(off, on, ep):
    a, b = train_losses(off, ep), train_losses(on, ep)
    assert a["scnet"] == 0 and b["scnet"] > 0
    assert all(torch.equal(a[k], b[k]) for k in ("main", "ini", "fem", "bg", "pcl", "total"))


def test_lambda0_reproduces_baseline_loss(pfenet_pair, monkeypatch):
    off, on = pfenet_pair
    assert on.loss_weights.scnet == 0.3 and off.loss_weights.scnet == 0 and off.scnet is None
    monkeypatch.setattr(on, "loss_weights", dataclasses.replace(on.loss_weights, scnet=0.0))
    assert_same_losses(off, on, episode(b=1))


def test_lambda0_reproduces_ntrenet_loss():
    torch.manual_seed(0)
    off = build_model(make_cfg())
    on = build_model(make_cfg("use_scnet", "true", "scnet_lambda", "0"))
    assert list(on.state_dict()) == list(off.state_dict())
    on.load_state_dict(off.state_dict())
    assert_same_losses(off, on, episode(b=1))  # BG/PCL terms draw the same random numbers


def test_gradients_reach_shared_head_from_both_branches(pfenet_pair):
    net = pfenet_pair[1]
    ep = episode(b=1)
    shared = {"fm.merge.0.0.weight", "fem.head.3.weight", "fem.refine.1.0.weight", "reduce_query.0.weight",
              "reduce_support.0.weight"}
    params = dict(net.named_parameters())
    for branch in ("main", "scnet"):
        net.zero_grad(set_to_none=True)
        losses = train_losses(net, ep)
        losses[branch].backward()
        assert all(params[n].grad is not None and params[n].grad.abs().sum() > 0 for n in shared), branch
    w = net.loss_weights
    seg = losses["main"] + w.ini * losses["ini"] + w.fem * losses["fem"]
    assert torch.allclose(losses["total"], 0.7 * seg + 0.3 * losses["scnet"])


def test_eval_logits_identical_and_branch_not_run(pfenet_pair, monkeypatch):
    off, on = pfenet_pair
    on.load_state_dict(off.state_dict())
    off.eval(), on.eval()
    monkeypatch.setattr(on.scnet, "episode", lambda *a, **k: pytest.fail("branch ran at eval"))
    q, s, sm, _, _ = episode(b=1, k=2)
    with torch.no_grad():
        assert torch.equal(on(q, s, sm), off(q, s, sm))
    assert torch.equal(on.predict_maps(q, s, sm)["logits"], off.predict_maps(q, s, sm)["logits"])


def test_ablation_configs():
    grid = {p: load_config(p) for p in glob.glob("config/pascal/pascal_split0_resnet50_scnet*.yaml")}
    clusters = sorted(c.scnet_clusters for c in grid.values() if c.use_scnet and c.scnet_lambda == 0.5)
    lambdas = sorted(c.scnet_lambda for c in grid.values() if c.use_scnet and c.scnet_clusters == 3)
    assert clusters == [1, 2, 3, 4, 5] and lambdas == [0.1, 0.3, 0.5, 0.7, 0.9, 1.0]
    assert all(not (c.use_bgem or c.use_doem or c.use_pcl) and c.base_lr == 0.0025 for c in grid.values())
    combo = load_config("config/pascal/pascal_split2_resnet50_ntrenet_scnet.yaml")
    assert combo.use_scnet and combo.use_bgem and combo.use_doem and combo.use_pcl and combo.split == 2


def test_report_prints_scnet_numbers_beside_ours(tmp_path):
    from test_report import BASE, FULL, write_result
    from util import report
    sc = {**BASE, "use_scnet": True, "scnet_clusters": 3, "scnet_lambda": 0.5, "test_num": 5000}  # SCNet's protocol
    write_result(tmp_path, "base", split=0, miou=61.0, flags=BASE)
    write_result(tmp_path, "sc", split=0, miou=62.5, flags=sc)
    write_result(tmp_path, "n1", split=0, miou=61.5, flags={**sc, "scnet_clusters": 1})
    write_result(tmp_path, "l9", split=0, miou=60.5, flags={**sc, "scnet_lambda": 0.9})
    write_result(tmp_path, "l1", split=0, miou=60.0, flags={**sc, "scnet_lambda": 0.1})
    write_result(tmp_path, "combo", split=0, miou=65.0, flags={**FULL, "use_scnet": True})
    write_result(tmp_path, "coco", split=1, miou=40.0, dataset="coco", flags={**sc, "test_num": 20000})
    md = report.make_report(tmp_path, "md")["md"]
    pascal = md.split("Table 1 (PASCAL-5i)")[1].split("###")[0].splitlines()
    assert "62.5 (62.2, +0.3)" in next(line for line in pascal if line.startswith("| ResNet-50 SCNet |"))
    assert next(line for line in pascal if line.startswith("| ResNet-50 NTRENet+SCNet"))
    assert "40.0 (41.9, -1.9)" in md.split("Table 2 (COCO-20i)")[1]
    clusters = md.split("SCNet Table 3 (background clusters n")[1].split("###")[0]
    assert "| n=0 (no branch) | 61.0 (61.7, -0.7)" in clusters and "| n=1 | 61.5 (61.7, -0.2)" in clusters
    lambdas = md.split("SCNet Table 5 (loss weight")[1].split("###")[0]
    rows = [line.split(" |")[0] for line in lambdas.splitlines() if line.startswith("| λ")]
    assert rows == ["| λ=0 (no branch)", "| λ=0.1", "| λ=0.5", "| λ=0.9"]
    assert "60.5 (59.8, +0.7)" in lambdas and "57.7" in lambdas and "average 60.6" in lambdas
    assert "Table 3 (module ablation)" not in md  # branch runs are not module combinations
