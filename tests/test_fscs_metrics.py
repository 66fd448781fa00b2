"""FS-CS metrics on hand counts: exact ratio, per-episode N+1 areas, the iFSL accounting of
per-class totals (way -> real class, background shared, mIoU over the fold with max(union, 1))."""
import numpy as np
import pytest
import torch

from util.data.fscs import episode_label
from util.evaluation.fscs import FSCSMeter, episode_areas, exact_hits, predict_at_original


def test_exact_hits_needs_every_way_right():
    pred = torch.tensor([[1, 0], [1, 1], [0, 0]], dtype=torch.bool)
    gt = torch.tensor([[1, 0], [1, 0], [0, 0]], dtype=torch.bool)
    assert exact_hits(pred, gt).tolist() == [True, False, True]


def test_episode_areas_by_hand():
    pred = torch.tensor([[0, 1, 1], [2, 2, 0], [1, 0, 2]])
    gt = torch.tensor([[0, 1, 2], [2, 255, 0], [0, 0, 255]])
    inter, union = episode_areas(pred, gt, way=2)
    # valid pixels (7): class 0: pred {00,12,21} gt {00,12,20,21} -> I 3, U 4
    #                  class 1: pred {01,02,20} gt {01}          -> I 1, U 3
    #                  class 2: pred {10}       gt {02,10}       -> I 1, U 2
    assert inter.tolist() == [3, 1, 1] and union.tolist() == [4, 3, 2]


def test_meter_accounting_by_hand():
    meter = FSCSMeter(class_ids=[1, 2, 3], num_classes=5)
    # episode A: ways (3, 1); episode B: ways (2, 3)
    pred_a = torch.tensor([[1, 1], [2, 0]]); gt_a = torch.tensor([[1, 0], [2, 0]])
    pred_b = torch.tensor([[0, 0], [0, 0]]); gt_b = torch.tensor([[2, 0], [0, 0]])
    meter.update(torch.tensor([[1, 1], [0, 0]]), torch.tensor([[1, 1], [0, 1]]), [pred_a, pred_b],
                 [gt_a, gt_b], torch.tensor([[3, 1], [2, 3]]))
    # A: class0 I1 U2, way1 (class 3) I1 U2, way2 (class 1) I1 U1; B: class0 I3 U4, way1 (class 2) I0 U0,
    # way2 (class 3) I0 U1
    assert meter.inter.tolist() == [4, 1, 0, 1, 0, 0] and meter.union.tolist() == [6, 1, 0, 3, 0, 0]
    out = meter.compute()
    assert out["er"] == 50.0 and out["episodes"] == 2
    assert out["iou"] == {1: 100.0, 2: 0.0, 3: pytest.approx(100 / 3)}  # class 2: union 0 -> 0, still counted
    assert out["miou"] == pytest.approx((100 + 0 + 100 / 3) / 3)
    assert out["fbiou"] == pytest.approx(50 * (2 / 4 + 4 / 6))


def test_meter_matches_the_ifsl_scatter_accounting():
    """The iFSL evaluator: histc over N+1 bins per episode, scatter-added by [0, support classes],
    mIoU = mean over the fold's classes of I / max(U, 1). Recomputed here independently."""
    g = torch.Generator().manual_seed(0)
    way, classes, meter = 2, [6, 7, 8, 9, 10], FSCSMeter([6, 7, 8, 9, 10], 20)
    inter_ref, union_ref = torch.zeros(21), torch.zeros(21)
    hits = 0
    for _ in range(30):
        ways = torch.tensor(classes)[torch.randperm(5, generator=g)[:way]]
        gt = torch.randint(0, way + 1, (9, 11), generator=g)
        gt[torch.rand(9, 11, generator=g) < 0.1] = 255
        pred = torch.randint(0, way + 1, (9, 11), generator=g)
        p_pres, t_pres = torch.randint(0, 2, (1, way), generator=g), torch.randint(0, 2, (1, way), generator=g)
        meter.update(p_pres, t_pres, [pred], [gt], ways[None])
        hits += int((p_pres == t_pres).all())
        p = pred.clone(); p[gt == 255] = 255
        i = torch.histc(p[p == gt].float(), bins=way + 1, min=0, max=way)
        u = torch.histc(p.float(), bins=way + 1, min=0, max=way) + torch.histc(gt.float(), bins=way + 1, min=0,
                                                                              max=way) - i
        idx = torch.cat([torch.zeros(1, dtype=torch.long), ways])
        inter_ref.scatter_add_(0, idx, i)
        union_ref.scatter_add_(0, idx, u)
    ref_miou = 100 * float((inter_ref[classes] / torch.max(union_ref[classes], torch.ones(5))).mean())
    out = meter.compute()
    assert meter.inter.tolist() == inter_ref.long().tolist() and meter.union.tolist() == union_ref.long().tolist()
    assert out["miou"] == pytest.approx(ref_miou, rel=1e-6)  # the release sums in float32 and out["er"] == pytest.approx(100 * hits / 30)


def test_predict_at_original_pads_and_resizes():
    scores = torch.zeros(3, 8, 8)
    scores[2, :, :4] = 1.0  # way 2 on the left half
    pred, target = predict_at_original(scores, torch.zeros(4, 6, dtype=torch.long))
    assert pred.shape == target.shape == (6, 6) and (target[4:] == 255).all()
    assert (pred[:, :2] == 2).all() and (pred[:, 4:] == 0).all()


@pytest.mark.parametrize("boundary,miou,fbiou", [
    # release: boundary pixels are background. class 0: pred {00,11,13} gt {00,03,10,11,13} -> I 3 U 5;
    # way 1 (class 4): pred {01,02,03,10,12} gt {01,02,12} -> I 3 U 5
    ("background", 100 * 3 / 5, 50 * (3 / 5 + 3 / 5)),
    # ignored: (0,3) and (1,1) count nowhere. class 0: pred {00,13} gt {00,10,13} -> I 2 U 3;
    # way 1: pred {01,02,10,12} gt {01,02,12} -> I 3 U 4
    ("ignore", 100 * 3 / 4, 50 * (3 / 4 + 2 / 3)),
])
def test_boundary_accounting_by_hand(boundary, miou, fbiou):
    """The label's 255 band under both accountings, through the ori_resize geometry: the rows
    padded onto the square stay excluded in both (the release scores at the image's own size)."""
    label = np.array([[0, 4, 4, 255], [0, 255, 4, 9]], np.uint8)  # 2 x 4 class map, 9: another class
    target = episode_label(label, (4,), boundary_as_background=boundary == "background")
    pred = torch.tensor([[0, 1, 1, 1], [1, 0, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]])  # rows 2-3: padding
    scores = torch.stack([(pred == 0).float(), (pred == 1).float()])  # [2, 4, 4]
    p, t = predict_at_original(scores, torch.from_numpy(target.astype(np.int64)))
    meter = FSCSMeter(class_ids=[4], num_classes=9)
    meter.update(torch.tensor([[1]]), torch.tensor([[1]]), [p], [t], torch.tensor([[4]]))
    out = meter.compute()
    assert out["miou"] == pytest.approx(miou) and out["fbiou"] == pytest.approx(fbiou)
