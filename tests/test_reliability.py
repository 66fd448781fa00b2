"""Numerical faults and determinism of training on the CPU."""
import pytest
import torch

import train
from conftest import read_events, toy_overrides
from model.ntrenet.ntrenet import NTRENet
from util.engine.checkpoint import read_checkpoint
from util.errors import UserError

CFG = "config/toy/toy_split0_resnet50.yaml"


def short(root, out, *extra):
    return ["--config", CFG, *toy_overrides(root), "save_path", str(out), "epochs", "1",
            "max_iters_per_epoch", "3", "val_every", "0", "image_every", "0", *extra]


@pytest.fixture
def nan_at_step_two(monkeypatch):
    """The model's total loss turns NaN on its second training call."""
    calls, forward = [], NTRENet.forward

    def poisoned(self, *args, **kwargs):
        out = forward(self, *args, **kwargs)
        if self.training:
            calls.append(1)
            if len(calls) == 2:
                out[1]["total"] = out[1]["total"] * float("nan")
        return out

    monkeypatch.setattr(NTRENet, "forward", poisoned)


def test_nonfinite_stops_and_keeps_last_good_checkpoint(nan_at_step_two, toy_tree, tmp_path):
    with pytest.raises(UserError, match=r"non-finite loss at iteration 2 \(terms: total\).*on_nonfinite skip"):
        train.main(short(toy_tree, tmp_path, "save_every_iters", "1"))
    assert read_checkpoint(str(tmp_path / "model/last.pth"))["iteration"] == 1


def test_nonfinite_skip_leaves_weights_untouched(nan_at_step_two, toy_tree, tmp_path):
    seen = {}
    original = train.Run.save

    def save(self, name):
        seen[self.iteration] = {k: v.clone() for k, v in self.net.state_dict().items() if "fem" in k}
        original(self, name)

    train.Run.save = save
    try:
        assert train.main(short(toy_tree, tmp_path, "save_every_iters", "1", "on_nonfinite", "skip")) == 0
    finally:
        train.Run.save = original
    assert all(torch.equal(seen[1][k], seen[2][k]) for k in seen[1])   # step 2 skipped
    assert not all(torch.equal(seen[2][k], seen[3][k]) for k in seen[2])  # step 3 trained


def test_same_losses_across_runs_and_workers(toy_tree, tmp_path):
    runs = []
    for i, workers in enumerate(["0", "0", "2"]):
        out = tmp_path / f"r{i}"
        assert train.main(short(toy_tree, out, "num_workers", workers)) == 0
        runs.append([(t, s, v) for t, s, v in read_events(str(out / "tb")) if t.startswith("loss/")])
    assert runs[0] == runs[1] == runs[2] and len(runs[0]) >= 18


@pytest.mark.parametrize("case", ["empty_support", "all_ignore_query", "single_pixel"])
def test_degenerate_masks_give_finite_losses(case):
    from model import build_model
    from util.config import load_config

    cfg = load_config(CFG, ["ppm_scales", "[1.0,0.5]", "pcl_samples", "4"])
    torch.manual_seed(0)
    net = build_model(cfg).train()
    q, s = torch.randn(2, 3, 33, 33), torch.randn(2, 1, 3, 33, 33)
    qm, sm = torch.zeros(2, 33, 33, dtype=torch.long), torch.zeros(2, 1, 33, 33, dtype=torch.long)
    qm[:, 8:20, 8:20], sm[:, :, 8:20, 8:20] = 1, 1
    if case == "empty_support":
        sm.zero_()
    elif case == "all_ignore_query":
        qm.fill_(255)
    else:
        qm.zero_(), sm.zero_()
        qm[:, 16, 16], sm[:, :, 16, 16] = 1, 1
    for _ in range(2):  # the second step also samples from the bank
        _, losses = net(q, s, sm, query_mask=qm, classes=torch.tensor([0, 1]))
        assert all(torch.isfinite(v) for v in losses.values()), losses
        losses["total"].backward()
