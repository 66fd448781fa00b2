"""Speed benchmark on synthetic episodes: one JSON line a user can compare across machines.

    python -m util.bench --config config/toy/toy_split0_resnet50.yaml [key value ...]

Reports the median training-step time, evaluation episodes per second (batch_size_val),
peak RSS, FLOPs of one training step, this machine's measured fp32 matmul GFLOP/s and the
resulting efficiency. No dataset is read: inputs are random tensors of the config's sizes.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from model import build_model
from util.config import load_config
from util.runtime import resolve_device, seed_everything


def episode(batch: int, shot: int, size: int, device: torch.device) -> dict:
    """A random episode batch with square objects, shaped like the loader's output."""
    mask = torch.zeros(batch, size, size, dtype=torch.long, device=device)
    mask[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
    return {"query": torch.randn(batch, 3, size, size, device=device),
            "supports": torch.randn(batch, shot, 3, size, size, device=device),
            "support_masks": mask[:, None].expand(batch, shot, size, size).contiguous(),
            "query_mask": mask, "classes": torch.zeros(batch, dtype=torch.long, device=device)}


def matmul_gflops(device: torch.device, n: int = 1024, reps: int = 10) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(net, opt, ep: dict) -> None:
    _, losses = net(ep["query"], ep["supports"], ep["support_masks"],
                    query_mask=ep["query_mask"], classes=ep["classes"])
    opt.zero_grad(set_to_none=True)
    losses["total"].backward()
    opt.step()


def timed(fn, reps: int, device: torch.device) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t)
    return out


def run(cfg, steps: int, warmup: int, episodes: int) -> dict:
    device = resolve_device(cfg.device)
    seed_everything(cfg.manual_seed)
    net = build_model(cfg).to(device)
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    tr = episode(cfg.batch_size, cfg.shot, cfg.train_h, device)
    net.train()
    with FlopCounterMode(display=False) as counter:
        train_step(net, opt, tr)
    step_times = timed(lambda: train_step(net, opt, tr), warmup + steps, device)[warmup:]
    net.eval()
    ev = episode(cfg.batch_size_val, cfg.shot, cfg.val_size, device)
    with torch.no_grad():
        eval_times = timed(lambda: net(ev["query"], ev["supports"], ev["support_masks"]),
                           warmup + episodes, device)[warmup:]
    flops, gflops = counter.get_total_flops(), matmul_gflops(device)
    step = statistics.median(step_times)
    return {"backbone": cfg.backbone, "size": cfg.train_h, "batch": cfg.batch_size, "shot": cfg.shot,
            "device": str(device), "threads": torch.get_num_threads(),
            "train_step_s": round(step, 4),
            "eval_episodes_per_s": round(cfg.batch_size_val / statistics.median(eval_times), 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "flops_per_step": flops, "matmul_gflops": round(gflops, 2),
            "efficiency": round(flops / step / (gflops * 1e9), 4)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--steps", type=int, default=5, help="timed training steps after warm-up")
    p.add_argument("--episodes", type=int, default=10, help="timed evaluation batches after warm-up")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as `key value` pairs")
    args = p.parse_args(argv)
    cfg = load_config(args.config, list(args.opts) + ["pretrained", "false"])
    print(json.dumps(run(cfg, args.steps, args.warmup, args.episodes)))
    return 0


if __name__ == "__main__":
    from util.runtime import run_cli

    run_cli(main)
