"""The one evaluation loop: train.py validates with it and test.py tests with it, so the
two can never drift apart (PFENet's copies did)."""
from __future__ import annotations

from typing import Callable

import torch
from tqdm import tqdm

from util.evaluator import Evaluator
from util.vis import panel


def all_foreground(maps: dict) -> torch.Tensor:
    """Trivial predictor: every pixel is the target."""
    logits = maps["logits"]
    return torch.stack([torch.zeros_like(logits[:, 0]), torch.ones_like(logits[:, 0])], 1)


def prior_only(maps: dict) -> torch.Tensor:
    """Trivial predictor: the training-free prior mask thresholded at 0.5."""
    prior = maps["prior"][:, 0].float()
    return torch.stack([torch.full_like(prior, 0.5), prior], 1)


BASELINES: dict[str, Callable[[dict], torch.Tensor]] = {"all_foreground": all_foreground,
                                                        "prior_only": prior_only}


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


@torch.no_grad()
def evaluate(net: torch.nn.Module, loader, evaluator: Evaluator, device: torch.device, *,
             baselines: dict[str, Evaluator] | None = None, panels: int = 0,
             desc: str = "eval") -> tuple[dict, dict, list]:
    """Scores every episode of `loader`; returns (metrics, baseline metrics, panel images).

    Baselines and panels need the intermediate maps, so they switch to `predict_maps`.
    """
    net.eval()
    evaluator.reset()
    for ev in (baselines or {}).values():
        ev.reset()
    images, need_maps = [], bool(baselines) or panels > 0
    for batch in tqdm(loader, desc=desc, leave=False, dynamic_ncols=True):
        b = to_device(batch, device)
        args = (b["query"], b["supports"], b["support_masks"])
        maps = _model(net).predict_maps(*args) if need_maps else {"logits": net(*args)}
        masks = b.get("query_mask")
        evaluator.update(maps["logits"], batch["raw_mask"], batch["class_idx"], masks=masks)
        for name, ev in (baselines or {}).items():
            ev.update(BASELINES[name](maps), batch["raw_mask"], batch["class_idx"], masks=masks)
        for i in range(b["query"].shape[0]):
            if len(images) < panels:
                images.append(panel(b["query"], b["supports"], b["support_masks"], masks, maps, i))
    base = {name: ev.compute() for name, ev in (baselines or {}).items()}
    return evaluator.compute(), base, images


def _model(net: torch.nn.Module) -> torch.nn.Module:
    return net.module if hasattr(net, "module") else net
