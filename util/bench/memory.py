"""Resource-bound benchmark: many toy training iterations, RSS printed at start and end.

    python -m util.bench.memory [--iters 1000] [--size 33] [key value ...]

The PCL bank, the logs and the loaders must stay bounded over long runs; this prints the
resident set size after warm-up and at the end, the bank's fill, and their difference.
"""
from __future__ import annotations

import argparse
import json
import sys
import resource
import time

from model import build_model
from util.engine.cliargs import int_in
from util.config import load_config
from util.engine.runtime import seed_everything


def rss_mb() -> float:
    """Current resident set size (Linux /proc), in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def run(cfg, iters: int) -> dict:
    import torch  # here: `--help` and argument mistakes are answered before torch loads

    from util.data.loader import build_loader

    seed_everything(cfg.manual_seed)
    net = build_model(cfg).train()
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=cfg.base_lr, momentum=0.9)
    loader = build_loader(cfg, "train")
    done, epoch, start, t0 = 0, 0, None, time.perf_counter()
    while done < iters:
        loader.sampler.set_epoch(epoch)
        loader.dataset.set_epoch(epoch)
        for b in loader:
            _, losses = net(b["query"], b["supports"], b["support_masks"], query_mask=b["query_mask"],
                            classes=b["class_idx"])
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            opt.step()
            done += 1
            if done == 20:
                start = rss_mb()
            if done >= iters:
                break
        epoch += 1
    end = rss_mb()
    fill = [int(v.max()) for k, v in net.state_dict().items() if k.endswith("bank.count")]
    return {"iters": done, "seconds": round(time.perf_counter() - t0, 1), "rss_start_mb": round(start or end, 1),
            "rss_end_mb": round(end, 1), "rss_growth_mb": round(end - (start or end), 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "pcl_bank_fullest_class": max(fill, default=0), "pcl_bank_capacity": cfg.pcl_bank_size}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="config/toy/toy_split0_resnet50.yaml")
    p.add_argument("--iters", type=int_in(1, 10_000_000), default=1000)
    p.add_argument("--size", type=int_in(9, 4097), default=33, help="train crop (tiny: the point is memory, not speed)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as `key value` pairs")
    args = p.parse_args(argv)
    base = ["train_h", str(args.size), "train_w", str(args.size), "batch_size", "2", "pcl_bank_size", "50",
            "pcl_samples", "20", "max_iters_per_epoch", "0", "ppm_scales", "[1.0,0.5]"]
    cfg = load_config(args.config, base + list(args.opts))
    sys.stdout.write(json.dumps(run(cfg, args.iters)) + "\n")
    return 0


if __name__ == "__main__":
    from util.engine.runtime import run_cli

    run_cli(main)
