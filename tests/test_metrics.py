"""Metrics and evaluator against hand-computed counts (docs/design.md §5, PFENet ori_resize protocol)."""
import json
import logging

import pytest
import torch

from util.evaluation import metrics
from util.evaluation.evaluator import Evaluator, pad_to_square, score_at_original

IGN = 255


def onehot_logits(pred: torch.Tensor) -> torch.Tensor:
    """[B, H, W] 0/1 prediction -> [B, 2, H, W] logits whose argmax is that prediction."""
    return torch.stack([1 - pred, pred], dim=1).float()


def test_confusion_counts_hand_case_excludes_ignore():
    pred = torch.tensor([[1, 1, 1], [0, 1, 0]])
    target = torch.tensor([[1, 0, IGN], [0, 1, 1]])  # the predicted-fg ignore pixel must not count
    assert metrics.confusion_counts(pred, target).tolist() == [2, 1, 1, 1]
    iu = metrics.intersection_union(pred, target)
    assert iu.intersection.tolist() == [1, 2]  # (bg, fg)
    assert iu.union.tolist() == [3, 4]
    assert (int(iu.tp), int(iu.fp)) == (2, 1)


def test_confusion_counts_batched_and_ratios():
    pred = torch.tensor([[[1, 0], [0, 0]], [[0, 0], [0, 0]]])
    target = torch.tensor([[[1, 1], [IGN, IGN]], [[IGN, IGN], [IGN, IGN]]])
    c = metrics.confusion_counts(pred, target)
    assert c.tolist() == [[1, 0, 1, 0], [0, 0, 0, 0]]
    assert metrics.iou_fg(c[0]) == 0.5 and metrics.iou_bg(c[0]) == 0.0
    assert metrics.precision_fg(c[1]) == 0.0  # empty denominators give 0, as PFENet's eps does
    with pytest.raises(ValueError):
        metrics.confusion_counts(pred, target[:, :1])


def test_pad_to_square_bottom_right():
    label = torch.zeros(3, 5, dtype=torch.long)
    sq = pad_to_square(label)
    assert sq.shape == (5, 5)
    assert (sq[:3] == 0).all() and (sq[3:] == IGN).all()
    assert pad_to_square(label.T).shape == (5, 5) and (pad_to_square(label.T)[:, 3:] == IGN).all()


def _step_logits(axis: int) -> torch.Tensor:
    """[2, 8, 8]: fg logit +1 up to index 4 along `axis`, -1 from 5, bg logit 0. Resized to 5
    with align_corners=True, outputs 0..4 sample inputs 0, 1.75, 3.5, 5.25, 7: fg at 0-2."""
    fg = torch.where(torch.arange(8) <= 4, 1.0, -1.0)
    fg = fg.view(1, 8).expand(8, 8) if axis == 1 else fg.view(8, 1).expand(8, 8)
    return torch.stack([torch.zeros(8, 8), fg])


def test_ori_resize_protocol_hand_case():
    raw = torch.tensor([[1, 1, 0, 0, 0],
                        [1, IGN, 1, 0, 0],
                        [0, 0, 0, 0, 1]])
    # prediction on the 5x5 square: columns 0-2 fg in every row; rows 3-4 are 255 padding.
    # row0 tp2 fp1 tn2; row1 tp2 tn2 (one ignore); row2 fp3 tn1 fn1.
    expected = [4, 4, 1, 5]
    assert score_at_original(_step_logits(1), raw).tolist() == expected
    assert score_at_original(_step_logits(0), raw.T).tolist() == expected  # tall image: pad right
    ev = Evaluator([1, 2], "pascal")
    ev.update(_step_logits(1)[None], [raw], torch.tensor([1]))
    assert ev.counts().tolist() == [[0] * 5, expected + [1]]


def test_network_size_scoring_needs_masks():
    ev = Evaluator([1], "pascal", ori_resize=False)
    pred = torch.tensor([[[1, 1], [0, 0]]])
    ev.update(onehot_logits(pred), None, torch.tensor([0]), masks=torch.tensor([[[1, 0], [IGN, 0]]]))
    assert ev.counts().tolist() == [[1, 1, 0, 1, 1]]
    with pytest.raises(ValueError):
        ev.update(onehot_logits(pred), None, torch.tensor([0]))


def _episodes():
    """Three episodes, two classes; per class sums differ from per-episode means."""
    preds = [[[1, 1], [0, 0]], [[1, 0], [0, 0]], [[1, 1], [1, 1]]]
    targets = [[[1, 0], [0, 0]], [[1, 1], [IGN, 1]], [[1, 1], [1, 0]]]
    # counts (tp, fp, fn, tn): e0 1 1 0 2 | e1 1 0 2 0 | e2 3 1 0 0
    return torch.tensor(preds), torch.tensor(targets), torch.tensor([0, 0, 1])


def test_class_miou_fbiou_precision_hand_computed(caplog):
    pred, target, idx = _episodes()
    ev = Evaluator([6, 7, 8], "pascal", ori_resize=False)  # class 8 never sampled
    ev.update(onehot_logits(pred), None, idx, masks=target)
    with caplog.at_level(logging.WARNING):
        m = ev.compute()
    assert "8 cat" in caplog.text
    # class 6: I = 2, U = 2 + 1 + 2 = 5 -> 40 (episode mean would be 41.7); class 7: 3/4 -> 75
    assert [c["iou"] for c in m["per_class"][:2]] == pytest.approx([40.0, 75.0])
    assert m["per_class"][2]["iou"] is None
    assert [(c["id"], c["name"], c["episodes"]) for c in m["per_class"]] == [
        (6, "bus", 2), (7, "car", 1), (8, "cat", 0)]
    assert m["miou"] == pytest.approx(57.5)  # unsampled class excluded from the mean
    # totals tp 5, fp 2, fn 2, tn 2: fg 5/9, bg 2/6, precision 5/7
    assert m["fg_iou"] == pytest.approx(500 / 9) and m["bg_iou"] == pytest.approx(100 / 3)
    assert m["fbiou"] == pytest.approx((500 / 9 + 100 / 3) / 2)
    assert m["precision"] == pytest.approx(500 / 7)
    assert m["episodes"] == 3
    json.dumps(m, allow_nan=False)


def _random_batch(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 2, 17, 17, generator=g)
    sizes = [(int(torch.randint(5, 30, (1,), generator=g)), int(torch.randint(5, 30, (1,), generator=g)))
             for _ in range(n)]
    raws = [torch.randint(0, 3, s, generator=g).masked_fill_(torch.rand(s, generator=g) > 0.8, IGN).clamp_max(IGN)
            for s in sizes]
    raws = [torch.where(r == 2, torch.zeros_like(r), r) for r in raws]
    return logits, raws, torch.randint(0, 5, (n,), generator=g)


def test_batched_equals_one_at_a_time_and_ranks_sum():
    logits, raws, idx = _random_batch(8, 0)
    whole = Evaluator(list(range(1, 6)), "pascal")
    whole.update(logits, raws, idx)
    single = Evaluator(list(range(1, 6)), "pascal")
    for i in range(8):
        single.update(logits[i:i + 1], raws[i:i + 1], idx[i:i + 1])
    assert torch.equal(whole.counts(), single.counts())
    assert whole.compute() == single.compute()
    a, b = Evaluator(list(range(1, 6)), "pascal"), Evaluator(list(range(1, 6)), "pascal")
    a.update(logits[:3], raws[:3], idx[:3])
    b.update(logits[3:], raws[3:], idx[3:])
    summed = a.counts().double() + b.counts().double()  # as an all-reduce in float64 would
    total = Evaluator(list(range(1, 6)), "pascal")
    total.add_counts(summed)
    assert torch.equal(total.counts(), whole.counts())
    a.merge(b)
    assert a.compute() == whole.compute()
    assert Evaluator.from_state(json.loads(json.dumps(whole.state()))).compute() == whole.compute()
    whole.reset()
    assert whole.counts().sum() == 0


def test_bad_inputs_are_rejected():
    ev = Evaluator([1, 2], "pascal")
    logits = torch.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match="0/1/255"):
        ev.update(logits, [torch.full((4, 4), 7)], torch.tensor([0]))
    with pytest.raises(ValueError, match="out of range"):
        ev.update(logits, [torch.zeros(4, 4, dtype=torch.long)], torch.tensor([2]))
    with pytest.raises(ValueError):
        ev.merge(Evaluator([1, 3], "pascal"))
    assert ev.compute()["miou"] is None
