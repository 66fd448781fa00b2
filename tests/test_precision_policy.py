"""Same numbers on every machine: evaluation is fp32 unless `amp bf16|fp16` is set, whatever the
CPU's flags (both kinds mocked); every run's first log line names its precision and why; the
results record it; one checkpoint gives one figure at 1 or 2 threads and in either memory format.
(The real bf16 autocast path against fp32: tests/test_amp.py.)"""
import json

import pytest
import torch

import test as test_cli
import train
from conftest import CPU_KINDS, toy_overrides
from model import build_model
from util.config import load_config
from util.data.loader import build_loader
from util.engine import precision as prec
from util.engine.checkpoint import FORMAT

CFG = "config/toy/toy_split0_vgg.yaml"
FP32_LINE = ("evaluation precision fp32 because amp off (the default: mixed precision only when asked); "
             "memory format {}")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, toy_tree):
    """(overrides, experiment folder) of a random-init NTRENet whose foreground bias is set so that
    half the pixels of the first test episode are foreground: a mixed prediction whose logits
    nearly tie everywhere, the hardest case for rounding that depends on the host."""
    run = tmp_path_factory.mktemp("precision")
    args = [*toy_overrides(toy_tree), "save_path", str(run)]
    cfg = load_config(CFG, args)
    torch.manual_seed(0)
    net = build_model(cfg).eval()
    with torch.no_grad():
        b = next(iter(build_loader(cfg, "test")))
        logits = net(b["query"], b["supports"], b["support_masks"])  # [B, 2, H, W]
        net.fem.head[3].bias[1] -= (logits[:, 1] - logits[:, 0]).median()
    (run / "model").mkdir(parents=True)
    torch.save({"format": FORMAT, "model": net.state_dict(), "config": dict(cfg)}, run / "model" / "best.pth")
    return args, run


def _test(args: list[str], run, *extra: str) -> tuple[dict, list[str]]:
    """test.py's results record and its log's lines (the log is removed first: one run's lines)."""
    log = run / "result" / "test_shot1.log"
    log.unlink(missing_ok=True)
    assert test_cli.main(["--config", CFG, *args, *extra]) == 0
    return json.loads((run / "model" / "results_shot1.json").read_text()), log.read_text().splitlines()


def test_evaluation_is_fp32_without_amp_on_every_cpu_kind(checkpoint, monkeypatch):
    """The same checkpoint on a CPU with native bf16 and on one without: fp32 both times (also
    with `amp auto`), logged first and recorded, and the same figures to the last digit."""
    args, run = checkpoint
    seen = []
    for kind, amp in (("no-bf16", []), ("native-bf16", []), ("native-bf16", ["amp", "auto"])):
        monkeypatch.setattr(prec, "cpu_flags", lambda kind=kind: set(CPU_KINDS[kind]))
        record, lines = _test(args, run, *amp)
        assert record["precision"] == "fp32"
        first = lines[0].split(" INFO ", 1)[1]
        assert first == (FP32_LINE.format("channels_last (NHWC)") if not amp else
                         "evaluation precision fp32 because amp auto evaluates in fp32 on every machine "
                         "(amp bf16 or fp16 evaluates in reduced precision); memory format channels_last (NHWC)")
        assert ", fp32\n" in (run / "model" / "results_shot1.md").read_text().split("| metric")[0]
        seen.append(record["metrics"])
    assert seen[0] == seen[1] == seen[2]
    assert 0 < seen[0]["fg_iou"] < 100 and 0 < seen[0]["bg_iou"] < 100  # a mixed prediction, not a constant


def test_one_checkpoint_one_figure_over_threads_and_memory_format(checkpoint):
    """mIoU and every class's IoU within 0.05 points at 1 and 2 intra-op threads (what
    OMP_NUM_THREADS sets) and with channels_last on and off: the layouts and the thread split
    change float sums only in their last bits, and the summed pixel counts absorb that."""
    args, run = checkpoint
    threads = torch.get_num_threads()
    figures = {}
    try:
        for n, layout in ((2, "on"), (1, "on"), (2, "off")):
            torch.set_num_threads(n)
            record, lines = _test(args, run, "channels_last", layout)
            assert lines[0].endswith("channels_last (NHWC)" if layout == "on" else "contiguous (NCHW)")
            figures[n, layout] = record["metrics"]
    finally:
        torch.set_num_threads(threads)
    ref = figures[2, "on"]
    assert 0 < ref["miou"] and 0 < ref["fg_iou"] < 100  # something to disagree about
    for key, m in figures.items():
        assert m["miou"] == pytest.approx(ref["miou"], abs=0.05), key
        for c, r in zip(m["per_class"], ref["per_class"]):
            assert (c["iou"] is None) == (r["iou"] is None), key
            assert c["iou"] is None or c["iou"] == pytest.approx(r["iou"], abs=0.05), (key, c["name"])


def test_train_with_amp_auto_on_native_bf16_trains_bf16_and_validates_fp32(toy_tree, tmp_path, monkeypatch):
    """`amp auto` on a CPU with native bf16: bf16 training steps, fp32 validation, both said in the
    log's first two lines. The epoch itself is replaced by a recorder (a real bf16 step on a CPU
    without native bf16 kernels is slow; test_amp.py runs one)."""
    monkeypatch.setattr(prec, "cpu_flags", lambda: set(CPU_KINDS["native-bf16"]))
    seen = []
    monkeypatch.setattr(train, "train_epoch", lambda run: seen.append(("train", run.precision.dtype)))
    real_evaluate = train.evaluate

    def spy(net, loader, ev, precision, **kw):
        seen.append(("validate", precision.dtype))
        return real_evaluate(net, loader, ev, precision, **kw)

    monkeypatch.setattr(train, "evaluate", spy)
    out = tmp_path / "exp"
    assert train.main(["--config", CFG, *toy_overrides(toy_tree), "save_path", str(out), "amp", "auto",
                       "epochs", "1", "val_num", "2"]) == 0
    assert seen == [("train", torch.bfloat16), ("validate", None)]
    lines = [line.split(" INFO ", 1)[1] for line in (out / "result" / "train.log").read_text().splitlines()[:2]]
    assert lines == ["training precision bf16 because amp auto and the CPU has native bf16 (avx512_bf16); "
                     "memory format channels_last (NHWC)",
                     "evaluation precision fp32 because amp auto evaluates in fp32 on every machine "
                     "(amp bf16 or fp16 evaluates in reduced precision); memory format channels_last (NHWC)"]

