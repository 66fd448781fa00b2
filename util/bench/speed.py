"""The speed benchmark's measurements on synthetic episodes (the command and what it reports:
util/bench/cli.py, `python -m util.bench --help`)."""
from __future__ import annotations

import functools
import json
import sys
import resource
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from model import build_model
from util.bench.cli import speed_parser
from util.config import load_config
from util.engine.precision import Precision, memory_format
from util.engine.runtime import resolve_device, seed_everything


def episode(batch: int, shot: int, size: int, device: torch.device, channels_last: bool = False) -> dict:
    """A random episode batch with square objects, shaped like the loader's output."""
    mask = torch.zeros(batch, size, size, dtype=torch.long, device=device)
    mask[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
    query = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=memory_format(channels_last))
    return {"query": query,
            "supports": torch.randn(batch, shot, 3, size, size, device=device),
            "support_masks": mask[:, None].expand(batch, shot, size, size).contiguous(),
            "query_mask": mask, "classes": torch.zeros(batch, dtype=torch.long, device=device)}


def matmul_gflops(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 1024, reps: int = 10) -> float:
    """Square matmul rate: the practical peak the model's convolutions are measured against."""
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(net, opt, ep: dict, precision: Precision) -> None:
    """train.py's step without the data loader: autocast forward, fp32 loss, backward, SGD."""
    with precision.autocast():
        _, losses = net(ep["query"], ep["supports"], ep["support_masks"],
                        query_mask=ep["query_mask"], classes=ep["classes"])
    opt.zero_grad(set_to_none=True)
    losses["total"].float().backward()
    opt.step()


@torch.no_grad()
def eval_batch(net, ep: dict, precision: Precision) -> torch.Tensor:
    """The evaluation loop's forward: autocast, logits back to fp32 for scoring."""
    with precision.autocast():
        return net(ep["query"], ep["supports"], ep["support_masks"]).float()


def timed(fn, reps: int, device: torch.device) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t)
    return out


def run(cfg, steps: int, warmup: int, episodes: int) -> dict:
    """Time training steps and evaluation batches after warm-up; count FLOPs once each."""
    device = resolve_device(cfg.device)
    precision = Precision.from_config(cfg, device)
    dtype = precision.dtype or torch.float32
    seed_everything(cfg.manual_seed)
    net = build_model(cfg).to(device, memory_format=precision.memory_format)
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    tr = episode(cfg.batch_size, cfg.shot, cfg.train_h, device, precision.channels_last)
    net.train()
    step = functools.partial(train_step, net, opt, tr, precision)
    train_flops = _count_flops(step)
    step_times = timed(step, warmup + steps, device)[warmup:]
    net.eval().requires_grad_(False)  # FlopCounterMode's module tracker trips over no_grad views of parameters
    ev = episode(cfg.batch_size_val, cfg.shot, cfg.val_size, device, precision.channels_last)
    batch = functools.partial(eval_batch, net, ev, precision)
    eval_flops = _count_flops(batch)
    eval_times = timed(batch, warmup + episodes, device)[warmup:]
    gflops, median = matmul_gflops(device, dtype), statistics.median(step_times)
    return {"backbone": cfg.backbone, "backbone_bn": cfg.backbone_bn, "size": cfg.train_h,
            "batch": cfg.batch_size, "shot": cfg.shot, "batch_size_val": cfg.batch_size_val,
            "amp": cfg.amp, "channels_last": precision.channels_last, "device": str(device),
            "threads": torch.get_num_threads(), "train_step_s": round(median, 4),
            "eval_episodes_per_s": round(cfg.batch_size_val / statistics.median(eval_times), 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "flops_per_step": train_flops, "flops_per_eval_episode": eval_flops // cfg.batch_size_val,
            "matmul_dtype": str(dtype).replace("torch.", ""), "matmul_gflops": round(gflops, 2),
            "efficiency": round(train_flops / median / (gflops * 1e9), 4)}


def _count_flops(fn) -> int:
    """FLOPs of one call (torch.utils.flop_counter); the call doubles as a warm-up."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def main(argv: list[str] | None = None) -> int:
    args = speed_parser().parse_args(argv)
    cfg = load_config(args.config, list(args.opts) + ["pretrained", "false"])
    sys.stdout.write(json.dumps(run(cfg, args.steps, args.warmup, args.episodes)) + "\n")
    return 0


if __name__ == "__main__":
    from util.engine.runtime import run_cli

    run_cli(main)
