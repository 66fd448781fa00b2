"""Mixed precision (`amp`) and `channels_last`: fp32 losses, same numbers, clear errors."""
import json

import pytest
import torch

import test as test_cli
import train
from conftest import toy_overrides
from model import build_model
from util.bench.speed import episode
from util.config import ConfigError, load_config
from util.engine.precision import amp_dtype, autocast

CFG = "config/toy/toy_split0_resnet50.yaml"
CPU = torch.device("cpu")


def tiny(*overrides):
    cfg = load_config(None, ["pretrained", "false", "ppm_scales", "[8,4,2]", "reduce_dim", "64",
                             "pcl_bank_size", "16", "pcl_samples", "8", "backbone_bn", "frozen", *overrides])
    torch.manual_seed(0)
    return build_model(cfg)


def test_amp_modes_and_fp16_on_cpu_is_a_config_error():
    assert amp_dtype("off", CPU) is None and amp_dtype("bf16", CPU) == torch.bfloat16
    with pytest.raises(ConfigError, match="fp16.*CUDA"):
        amp_dtype("fp16", CPU)
    with pytest.raises(ConfigError, match="not one of"):
        load_config(None, ["amp", "fp8"])
    assert load_config(None, ["amp", "off"]).amp == "off"  # YAML reads a bare off as false


def test_fp16_on_cpu_stops_train_and_test_before_work(toy_tree, tmp_path):
    args = ["--config", CFG, *toy_overrides(toy_tree), "save_path", str(tmp_path / "x"), "amp", "fp16"]
    with pytest.raises(ConfigError, match="fp16"):
        train.main(args)
    assert not (tmp_path / "x" / "model").exists()
    ckpt = tmp_path / "w.pth"
    torch.save({}, ckpt)
    with pytest.raises(ConfigError, match="fp16"):
        test_cli.main([*args, "weight", str(ckpt)])


def test_bf16_training_losses_are_fp32_and_backprop():
    net = tiny().train()
    ep = episode(1, 1, 65, CPU)
    with autocast("bf16", CPU):
        logits, losses = net(ep["query"], ep["supports"], ep["support_masks"],
                             query_mask=ep["query_mask"], classes=ep["classes"])
    assert logits.dtype == torch.bfloat16
    for name in train.LOSS_TERMS:
        assert losses[name].dtype == torch.float32 and torch.isfinite(losses[name]), name
    losses["total"].backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_bf16_and_channels_last_eval_match_fp32():
    """The real bf16 autocast path (the CPU's bf16 kernels, native or fallback) against fp32: bf16
    keeps 8 significant bits (a relative step of 2^-8 = 0.4 %); through the network's layers the
    logits drifted by 0.9 % of the largest logit here, so 3 % of it is the tolerance, and the
    prediction agrees on at least 95 % of the pixels. channels_last changes only the order of
    fp32 sums: within 1e-5."""
    net = tiny().eval()
    ep = episode(1, 1, 65, CPU)
    args = (ep["query"], ep["supports"], ep["support_masks"])
    with torch.no_grad():
        ref = net(*args)
        with autocast("bf16", CPU):
            low = net(*args).float()
        net.to(memory_format=torch.channels_last)
        nhwc = net(ep["query"].contiguous(memory_format=torch.channels_last), *args[1:])
    assert torch.allclose(ref, nhwc, atol=1e-5, rtol=1e-4)  # same math, other memory layout
    assert (ref - low).abs().max() <= 0.03 * ref.abs().max()
    assert (ref.argmax(1) == low.argmax(1)).float().mean() > 0.95


def test_bf16_channels_last_train_and_test_run(toy_tree, tmp_path):
    out = tmp_path / "exp"
    common = ["--config", CFG, *toy_overrides(toy_tree), "save_path", str(out), "amp", "bf16",
              "channels_last", "true"]
    assert train.main([*common, "epochs", "1", "max_iters_per_epoch", "1", "val_every", "0"]) == 0
    assert (out / "model/last.pth").exists()
    assert test_cli.main([*common, "vis", "1"]) == 0
    record = json.loads((out / "model/results_shot1.json").read_text())
    assert record["metrics"]["episodes"] == 6 and record["metrics"]["miou"] is not None
    assert record["precision"] == "bf16"  # asked for: evaluated in bf16 and recorded so
    log = (out / "result/train.log").read_text()
    assert "training precision bf16 because amp bf16 is set" in log.splitlines()[0]
    assert "bf16, channels_last" in log
