"""Model building blocks on hand-computed cases and tiny tensors."""
import io
import math

import pytest
import torch

from model.ntrenet.bgem import BGEM
from model.ntrenet.bgmm import BGMM, bg_mining_loss
from model.ntrenet.doem import DOEM, do_mask, do_prototype
from model.layers.fem import FEM
from model.ntrenet.fm import FeatureMatching
from model.ntrenet.pcl import PCL, PrototypeBank, negative_region, pcl_loss
from model.layers.prior import prior_mask
from model.layers.prototype import masked_average_pooling


def test_masked_average_pooling_hand_case():
    feat = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    mask = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 1, 2, 2)
    assert masked_average_pooling(feat, mask).item() == pytest.approx(5.0 / (2 + 5e-4))
    empty = masked_average_pooling(feat, torch.zeros_like(mask))
    assert empty.shape == (1, 1, 1, 1) and empty.item() == 0.0


def test_prior_hand_case_two_shots():
    # query pixels (1,0), (0,1), (1,1); shot 0 keeps support pixel (1,0), shot 1 keeps (0,1)
    q = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]).view(1, 2, 1, 3)
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 1, 2, 1, 2).repeat(1, 2, 1, 1, 1)
    m = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]).view(1, 2, 1, 2)
    c = math.sqrt(0.5)
    shot0 = torch.tensor([1.0, 0.0, c])   # cosines [1, 0, c], already in [0, 1] after min-max
    shot1 = torch.tensor([0.0, 1.0, c])
    out = prior_mask(q, s, m)
    assert out.shape == (1, 1, 1, 3)
    assert torch.allclose(out.flatten(), (shot0 + shot1) / 2, atol=1e-5)
    one = prior_mask(q, s[:, :1], m[:, :1])
    assert torch.allclose(one.flatten(), shot0, atol=1e-5)


def test_prior_min_max_and_empty_mask():
    q, s = torch.randn(2, 8, 5, 5), torch.randn(2, 1, 8, 5, 5)
    out = prior_mask(q, s, torch.ones(2, 1, 5, 5))
    flat = out.flatten(1)
    assert torch.allclose(flat.min(1).values, torch.zeros(2)) and torch.allclose(flat.max(1).values, torch.ones(2))
    empty = prior_mask(q, s, torch.zeros(2, 1, 5, 5))
    assert torch.isfinite(empty).all() and (empty == 0).all()


def _logits_for(p_bg):
    """2-class logits whose softmax channel 1 (BG) equals p_bg."""
    p = torch.as_tensor(p_bg)
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=0)


def test_bg_mining_loss_hand_case():
    logits = _logits_for([[0.2, 0.6, 0.9]]).unsqueeze(0)       # [1,2,1,3]
    labels = torch.tensor([[[1, 0, 255]]])                     # target, other, ignore
    alpha = 0.5
    expected = -math.log(1 - 0.2) / 1 - alpha * (math.log(0.2) + math.log(0.6) + math.log(0.9)) / 3
    assert bg_mining_loss(logits, labels, alpha=alpha).item() == pytest.approx(expected, rel=1e-5)
    # no target pixel: the first term is 0, not NaN
    none = bg_mining_loss(logits, torch.zeros_like(labels), alpha=alpha).item()
    assert none == pytest.approx(-alpha * (math.log(0.2) + math.log(0.6) + math.log(0.9)) / 3, rel=1e-5)
    # groups: mean of the per-group losses (query batch, each shot's batch)
    two = bg_mining_loss(torch.cat([logits, logits]), torch.cat([labels, torch.zeros_like(labels)]),
                         alpha=alpha, groups=2)
    assert two.item() == pytest.approx((expected + none) / 2, rel=1e-5)


def test_bgmm_shapes_and_zero_prototype():
    bgmm = BGMM(feat_dim=16, bg_dim=8)
    assert bgmm.prototype.shape == (1, 8, 1, 1) and (bgmm.prototype == 0).all()
    assert bgmm(torch.randn(3, 16, 7, 5)).shape == (3, 2, 7, 5)
    assert bgmm.expand(torch.randn(3, 16, 7, 5)).shape == (3, 8, 7, 5)


def test_bgem_fm_doem_shapes():
    x, proto, prior = torch.randn(2, 16, 6, 6), torch.randn(2, 16, 1, 1), torch.rand(2, 1, 6, 6)
    assert BGEM(feat_dim=16, bg_dim=8, num_bins=2)(x, torch.randn(2, 8, 6, 6), 1).shape == (2, 16, 6, 6)
    x_act, ini = FeatureMatching(feat_dim=16, num_bins=2, with_initial_head=True)(x, proto, prior, 0)
    assert x_act.shape == (2, 16, 6, 6) and ini.shape == (2, 2, 6, 6)
    plain, none = FeatureMatching(feat_dim=16, num_bins=2, with_initial_head=False)(x, proto, prior, 1)
    assert plain.shape == (2, 16, 6, 6) and none is None
    out, y_do = DOEM(feat_dim=16, num_bins=2)(x_act, x, torch.randn(2, 2, 6, 6), ini, 1)
    assert out.shape == (2, 16, 6, 6) and y_do.shape == (2, 1, 6, 6)


def test_do_mask_and_pooling_hand_case():
    # pixels: BG, target, DO, DO (BG logits ch1 = BG; ini ch1 = target)
    bg = torch.stack([torch.tensor([0.0, 1, 1, 1]), torch.tensor([1.0, 0, 0, 0])]).view(1, 2, 1, 4)
    ini = torch.stack([torch.tensor([1.0, 0, 1, 1]), torch.tensor([0.0, 1, 0, 0])]).view(1, 2, 1, 4)
    y_do = do_mask(bg, ini)
    assert y_do.flatten().tolist() == [0, 0, 1, 1]
    x = torch.tensor([1.0, 2, 3, 5]).view(1, 1, 1, 4)
    assert do_prototype(x, y_do, "global").item() == pytest.approx(8 / 4)
    assert do_prototype(x, y_do, "masked").item() == pytest.approx(8 / (2 + 5e-4))


@pytest.mark.parametrize("bins,expected", [((8, 4, 2), [(8, 8), (4, 4), (2, 2)]),
                                           ((1.0, 0.5, 0.25), [(9, 13), (4, 6), (2, 3)])])
def test_fem_bins_sizes_and_fractions(bins, expected):
    fem = FEM(feat_dim=8, bins=bins)
    assert [fem.bin_size(i, (9, 13)) for i in range(3)] == expected
    xq, feats, prev = torch.randn(1, 8, 9, 13), [], None
    for i in range(3):
        prev, head = fem.step(fem.pool(xq, i), prev, i, (9, 13))
        assert prev.shape == (1, 8, 9, 13) and head.shape == (1, 2, *expected[i])
        feats.append(prev)
    assert fem.fuse_bins(feats).shape == (1, 2, 9, 13)


def test_bank_keeps_newest_and_never_exceeds_capacity():
    bank = PrototypeBank(num_classes=2, capacity=3, dim=1)
    values = torch.arange(7.0)[:, None]
    classes = torch.tensor([0, 0, 1, 0, 1, 0, 0])
    bank.push(values, classes)
    assert bank.count.tolist() == [3, 2]
    assert sorted(bank.protos[0, :, 0].tolist()) == [3.0, 5.0, 6.0]
    assert sorted(bank.protos[1, :2, 0].tolist()) == [2.0, 4.0]
    bank.push(torch.tensor([[7.0], [8.0]]), torch.tensor([0, 0]))
    assert bank.count.tolist() == [3, 2] and sorted(bank.protos[0, :, 0].tolist()) == [6.0, 7.0, 8.0]
    for _ in range(5):
        bank.push(torch.randn(10, 1), torch.randint(0, 2, (10,)))
        assert (bank.count <= 3).all() and bank.protos.shape == (2, 3, 1)
    neg, valid = bank.sample(torch.tensor([0, 1]), k=10)
    assert neg.shape == (2, 3, 1) and valid.all()


def test_bank_sample_only_filled_slots():
    bank = PrototypeBank(num_classes=3, capacity=5, dim=2)
    bank.push(torch.ones(2, 2), torch.tensor([1, 1]))
    neg, valid = bank.sample(torch.tensor([0, 1]), k=4)
    assert valid[0].sum() == 0 and valid[1].sum() == 2
    assert (neg[1][valid[1]] == 1).all()


def test_pcl_state_dict_round_trip_and_device_move():
    pcl = PCL(num_classes=4, dim=3, bank_size=5, samples=2)
    pcl.bank.push(torch.randn(6, 3), torch.tensor([0, 1, 1, 3, 3, 3]))
    buf = io.BytesIO()
    torch.save(pcl.state_dict(), buf)
    buf.seek(0)
    other = PCL(num_classes=4, dim=3, bank_size=5, samples=2)
    other.load_state_dict(torch.load(buf, weights_only=True))
    for k, v in pcl.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k
    assert set(pcl.state_dict()) == {"bank.protos", "bank.count", "bank.ptr"}
    assert other.double().bank.protos.dtype == torch.float64


def test_pcl_loss_values():
    q = torch.tensor([[1.0, 0.0]])
    pos = torch.tensor([[1.0, 0.0]])
    negs = torch.tensor([[[0.0, 1.0], [-1.0, 0.0], [5.0, 5.0]]])
    valid = torch.tensor([[True, True, False]])
    expected = math.log(math.exp(0.0) + math.exp(-1.0)) - 1.0
    assert pcl_loss(q, pos, negs, valid, 1.0).item() == pytest.approx(expected, rel=1e-5)
    # no negative at all: left out, and no NaN gradient
    q.requires_grad_(True)
    loss = pcl_loss(q, pos, negs, torch.zeros_like(valid), 1.0)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(q.grad).all()


def test_negative_regions():
    nontarget, bg = torch.tensor([1.0, 1.0, 0.0]), torch.tensor([1.0, 0.0, 0.0])
    assert negative_region("do", nontarget, bg).tolist() == [0.0, 1.0, 0.0]
    assert negative_region("bg", nontarget, bg).tolist() == [1.0, 0.0, 0.0]
    assert negative_region("nontarget", nontarget, None).tolist() == [1.0, 1.0, 0.0]
    with pytest.raises(ValueError):
        negative_region("do", nontarget, None)
