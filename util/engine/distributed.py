"""Several processes (GPUs or machines) with PyTorch's own engine: torchrun + env:// rendezvous.

    torchrun --standalone --nproc_per_node 4 train.py --config FILE [key value ...]
    GPUS=4 sh train.sh pascal split0_resnet50          # the same through the run script

One process per device; torchrun sets RANK, WORLD_SIZE and LOCAL_RANK. Without them (a plain
`python train.py`) everything here is a no-op and the run is the single-process one.

Decisions (docs/training.md, "Several GPUs or machines"):
- backend nccl on GPUs, gloo on the CPU; process i of a machine uses cuda:LOCAL_RANK.
- DistributedDataParallel with broadcast_buffers=False: the default would copy rank 0's
  buffers onto every rank at each forward, i.e. overwrite each rank's PCL bank and backbone
  BN statistics with rank 0's. Instead each rank keeps its own PCL bank (it is filled with
  the prototypes of that rank's episodes; no extra communication, no model change), and the
  running BN statistics that train (backbone_bn reference) are averaged over the ranks
  before every validation and checkpoint, so all ranks evaluate the model that is saved.
- Evaluation: each rank scores its share of the fixed episode list, then the evaluator's
  integer counts are summed (all_reduce): the metrics equal the single-process ones exactly.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from util.errors import UserError
from util.engine.runtime import resolve_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class World:
    """This process's place among the torchrun processes (rank 0 of 1 without torchrun)."""
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Only the main process logs, writes tensorboard events, checkpoints and results."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.size > 1


def world_from_env() -> World:
    """Read what torchrun sets; absent variables mean a single process."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        raise UserError("RANK / WORLD_SIZE / LOCAL_RANK must be integers: launch with torchrun") from None


def init_distributed(device_name: str) -> tuple[World, torch.device]:
    """Join the process group (env://) when launched by torchrun; returns (world, device).

    With several processes a GPU device becomes cuda:LOCAL_RANK (one GPU per process).
    """
    world = world_from_env()
    device = resolve_device(device_name)
    if not world.enabled:
        return world, device
    if device.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise UserError(f"process {world.local_rank} of this machine has no GPU ({torch.cuda.device_count()} "
                            "visible): lower GPUS / --nproc_per_node")
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method="env://")
    return world, device


def shutdown(wait: bool = True) -> None:
    """Leave the process group; `wait` (clean exit) first waits for every rank, so none exits
    while others still talk. After an error there is no barrier: torchrun stops the rest."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main() -> bool:
    """True on rank 0 and in a single process."""
    return not active() or dist.get_rank() == 0


def _comm_device() -> torch.device:
    """nccl reduces CUDA tensors only; gloo reduces CPU tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of `t` over the ranks (the tensor itself in a single process), on t's device."""
    if not active():
        return t
    buf = t.detach().to(_comm_device()).clone()
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return buf.to(t.device)


def reduce_evaluator(evaluator) -> None:
    """Replace the evaluator's counts by their sum over the ranks (exact integer sums)."""
    if active():
        evaluator.set_counts(all_reduce_sum(evaluator.counts()))


def mean_over_ranks(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per-term mean over the ranks in one all_reduce (a NaN on any rank shows everywhere,
    so every rank stops together instead of leaving the others waiting in backward)."""
    keys = list(values)
    stacked = torch.stack([values[k].detach().float().reshape(()) for k in keys])
    summed = all_reduce_sum(stacked) / (dist.get_world_size() if active() else 1)
    return dict(zip(keys, summed.tolist()))


@torch.no_grad()
def average_bn_statistics(net: nn.Module) -> None:
    """Average the running statistics of the BN layers that are in training mode over the
    ranks (backbone_bn reference: each rank's statistics drift with its own batches).

    BN layers in eval mode (backbone_bn frozen) never change and are left bit-identical.
    Call while the model is in training mode, before validation and checkpoints.
    """
    if not active():
        return
    world = dist.get_world_size()
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats:
            for buf in (m.running_mean, m.running_var):
                buf.copy_(all_reduce_sum(buf) / world)


def gather_objects(items: list[Any]) -> list[Any]:
    """Concatenation of every rank's `items` (rank order) on every rank; small objects only."""
    if not active():
        return list(items)
    out: list[list[Any]] = [[] for _ in range(dist.get_world_size())]
    dist.all_gather_object(out, items)
    return [x for part in out for x in part]


def wrap_model(net: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `net` when several processes run, else `net` itself.

    broadcast_buffers=False keeps each rank's PCL bank and BN statistics (module docstring).
    """
    if not active():
        return net
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids, broadcast_buffers=False)


def barrier() -> None:
    if active():
        dist.barrier()


def run(body, cfg) -> int:
    """Join the process group for `cfg.device`, run body(cfg, world, device) and leave it
    (with a barrier only after success, so a failing rank never leaves the others waiting)."""
    world, device = init_distributed(cfg.device)
    done = False
    try:
        code = body(cfg, world, device)
        done = True
        return code
    finally:
        shutdown(wait=done)
