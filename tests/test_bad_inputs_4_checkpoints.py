"""Third bad-input catalogue, class "checkpoints": every entry point checks a checkpoint's
weights for NaN/inf and its fold the same way, before any work; a resume that cannot fit (no
optimizer state, other shapes, other pre-training keys) is one error; a training that diverges
writes no checkpoint of NaNs; a run that saved nothing can be started again (docs/reliability.md)."""
import pytest
import torch

import predict
import test as test_cli
import test_gfss
import train
from conftest import toy_overrides
from model import build_model
from util.config import load_config
from util.engine.checkpoint import prior_resume_conflicts, restore, save_checkpoint
from util.engine.guard import claim_output_dir
from util.errors import UserError

CFG = "config/toy/toy_split0_vgg.yaml"
BAM = "config/toy/toy_split0_vgg_bam.yaml"


def own_checkpoint(path, config, overrides):
    """A checkpoint as train.py writes it, of a random model."""
    cfg = load_config(config, [*overrides, "pretrained", "false"])
    net = build_model(cfg)
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    save_checkpoint(str(path), model=net, optimizer=opt, epoch=1, iteration=2, best_miou=1.0, cfg=cfg)
    return path


@pytest.fixture(scope="module")
def good_state(tmp_path_factory, toy_tree):
    path = own_checkpoint(tmp_path_factory.mktemp("good") / "good.pth", CFG, toy_overrides(toy_tree))
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def nan_ckpt(tmp_path_factory, good_state):
    """The good checkpoint with one NaN in its last weight tensor."""
    key = [k for k, v in good_state["model"].items() if k.endswith(".weight") and v.is_floating_point()][-1]
    state = {**good_state, "model": {**good_state["model"], key: good_state["model"][key].clone()}}
    state["model"][key].view(-1)[0] = float("nan")
    path = tmp_path_factory.mktemp("nan") / "nan.pth"
    torch.save(state, path)
    return path, key


def test_test_py_refuses_nan_weights_before_any_episode(nan_ckpt, toy_tree):
    path, key = nan_ckpt
    with pytest.raises(UserError, match=rf"nan.pth holds NaN or infinite weights in 1 tensor\(s\) \({key}\)"):
        test_cli.main(["--config", CFG, *toy_overrides(toy_tree), "weight", str(path)])
    assert not list(path.parent.glob("results_*.json"))


def test_training_refuses_to_start_from_nan_weights(nan_ckpt, toy_tree, tmp_path):
    path, _ = nan_ckpt
    with pytest.raises(UserError, match="holds NaN or infinite weights"):
        train.main(["--config", CFG, *toy_overrides(toy_tree), "weight", str(path), "save_path", str(tmp_path / "r")])
    assert not (tmp_path / "r/model").exists() or not list((tmp_path / "r/model").iterdir())


def test_predict_refuses_nan_weights(nan_ckpt, toy_tree, tmp_path):
    path, _ = nan_ckpt
    img, lab = (toy_tree / "lists/val.txt").read_text().split("\n")[0].split()
    with pytest.raises(UserError, match="holds NaN or infinite weights"):
        predict.main(["--config", CFG, "--weight", str(path), "--support", str(toy_tree / "data" / img),
                      str(toy_tree / "data" / lab), "--query", str(toy_tree / "data" / img),
                      "--out", str(tmp_path / "pred"), *toy_overrides(toy_tree)])
    assert not (tmp_path / "pred").exists() or not list((tmp_path / "pred").iterdir())


def test_a_diverged_model_is_not_written_over_the_last_good_checkpoint(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    cfg = dict(load_config(None, []))
    path = tmp_path / "last.pth"
    save_checkpoint(str(path), model=net, optimizer=opt, epoch=1, iteration=2, best_miou=1.0, cfg=cfg)
    good = path.read_bytes()
    with torch.no_grad():
        net[1].bias[0] = float("inf")
    with pytest.raises(UserError, match=r"training diverged by iteration 3: 1 weight tensor\(s\) hold NaN .*\(1.bias\)"):
        save_checkpoint(str(path), model=net, optimizer=opt, epoch=2, iteration=3, best_miou=1.0, cfg=cfg)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_gfss_test_refuses_a_bam_checkpoint_of_another_fold(toy_tree, tmp_path):
    over = [*toy_overrides(toy_tree), "reduce_dim", "16", "base_weight", "none", "test_num", "2"]
    path = own_checkpoint(tmp_path / "bam_fold0.pth", BAM, over)
    with pytest.raises(UserError, match=r"trained with split 0 \(now 1\).*`split 0`"):
        test_gfss.main(["--config", BAM, *over, "split", "1", "weight", str(path)])
    assert not list(tmp_path.glob("gfss_*.json"))


def test_resume_of_a_checkpoint_without_optimizer_state_is_one_error(good_state, toy_tree, tmp_path):
    path = tmp_path / "last.pth"
    torch.save({k: v for k, v in good_state.items() if k != "optimizer"}, path)
    with pytest.raises(UserError, match=r"cannot resume .*last.pth: it holds no optimizer state"):
        train.main(["--config", CFG, *toy_overrides(toy_tree), "save_path", str(tmp_path / "r"), "resume", str(path)])


@pytest.mark.parametrize("part", ["model", "optimizer"])
def test_resume_of_misshapen_state_is_one_error(part):
    """The check every resuming entry point (train.py, train_base.py, pretrain_prior.py) goes through."""
    small, big = torch.nn.Linear(3, 2), torch.nn.Linear(3, 5)
    opt_small = torch.optim.SGD(small.parameters(), lr=0.1, momentum=0.9)
    small(torch.ones(1, 3)).sum().backward()
    opt_small.step()
    state = {"model": small.state_dict(), "optimizer": opt_small.state_dict()}
    if part == "optimizer":  # the right model, an optimizer over other parameters
        state["model"] = big.state_dict()
        state["optimizer"] = torch.optim.SGD([torch.nn.Parameter(torch.ones(1)) for _ in range(3)], lr=0.1).state_dict()
    with pytest.raises(UserError, match=rf"cannot resume x.pth: its {part} state does not fit this run"):
        restore("x.pth", state, {"model": big, "optimizer": torch.optim.SGD(big.parameters(), lr=0.1)})


@pytest.mark.parametrize("key, was, now", [
    ("prior_global", True, False), ("prior_patches", "slic", "felzenszwalb"), ("prior_queue", 32, 16),
    ("prior_crop", 65, 33), ("backbone", "resnet50", "vgg"),
])
def test_prior_pretraining_resume_refuses_other_learning_keys(key, was, now):
    cfg = load_config(None, ["prior_crop", "65"])
    saved = {**cfg, key: was}
    assert prior_resume_conflicts(saved, cfg.replace(**{key: now})) == [f"{key} (checkpoint {was!r}, now {now!r})"]


def test_prior_pretraining_resume_may_change_length_and_rate():
    cfg = load_config(None, [])
    changed = cfg.replace(prior_epochs=5, prior_lr=0.001, prior_max_iters_per_epoch=3, num_workers=4)
    assert prior_resume_conflicts(dict(cfg), changed) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_run_that_saved_nothing_can_be_started_again(tmp_path, overwrite):
    """Stopped (error, SIGTERM) before its first checkpoint: its event file does not lock the folder."""
    if overwrite:
        (tmp_path / "model").mkdir()
        (tmp_path / "model/last.pth").write_bytes(b"old")
    claim = claim_output_dir(str(tmp_path), resume="", overwrite=overwrite)
    (tmp_path / "tb").mkdir(exist_ok=True)
    (tmp_path / "tb/events.out.tfevents.1.h").write_bytes(b"first")
    (tmp_path / "result").mkdir(exist_ok=True)
    (tmp_path / "result/train.log").write_text("log of the stopped run")
    claim.release()
    assert not (tmp_path / "tb/events.out.tfevents.1.h").exists()
    assert (tmp_path / "result/train.log").exists()  # its log stays, for the user to read
    assert ((tmp_path / "model/last.pth").read_bytes() == b"old") if overwrite else True
    claim_output_dir(str(tmp_path), resume="", overwrite=overwrite).release()


def test_a_training_whose_first_batch_fails_can_be_started_again(toy_tree, tmp_path):
    bad = tmp_path / "bad.txt"
    line = (toy_tree / "lists/train.txt").read_text().split("\n")[0]
    bad.write_text("\n".join([line.replace(".jpg", "_gone.jpg").replace(".png", "_gone.png", 1)] * 1) + "\n")
    args = ["--config", CFG, *toy_overrides(toy_tree), "save_path", str(tmp_path / "r")]
    with pytest.raises(UserError):
        train.main([*args, "train_list", str(bad)])
    claim_output_dir(str(tmp_path / "r"), resume="", overwrite=False).release()  # not refused
