"""The one evaluation loop: train.py validates with it and test.py tests with it, so the
two can never drift apart (PFENet's copies did).

Under torchrun each rank scores its share of the episodes (the loader's sampler strides the
fixed list) and the evaluators' integer counts are summed over the ranks, so the metrics are
exactly the single-process ones; panels are gathered and picked by global episode index.
"""
from __future__ import annotations

from typing import Callable

import torch

from util.engine import distributed
from util.evaluation.evaluator import Evaluator
from util.engine.precision import Precision
from util.engine.progress import progress
from util.errors import UserError
from util.evaluation.vis import panel


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


def below_trivial(miou: float | None, base: dict[str, dict], target: str = "") -> str | None:
    """One line when the model scores no better than a trivial predictor (None otherwise): a
    run too short to learn looks like a working one unless it is said. On a cross-domain
    `target` the likely cause is the domain shift, not the training length, and the line says so."""
    scored = {name: m["miou"] for name, m in base.items() if m.get("miou") is not None}
    if miou is None or not scored:
        return None
    name, best = max(scored.items(), key=lambda kv: kv[1])
    if miou > best:
        return None
    head = f"mIoU {miou:.2f} is not above the trivial predictor {name} ({best:.2f})"
    if target:
        return (f"{head} on {target}, a domain the model was not trained on: the domain shift defeats it "
                "(compare its in-domain test; docs/cross_domain.md)")
    return f"{head}: the model has not learned this task yet; train longer (docs/training.md, 'The smallest run that learns')"


def _forward_maps(net: torch.nn.Module, b: dict, need_maps: bool, precision: Precision) -> dict:
    """Logits (and maps) of a batch, in fp32 whatever the autocast dtype: scoring, baselines
    and panels always see float tensors."""
    args = (b["query"], b["supports"], b["support_masks"])
    with precision.autocast():
        maps = _model(net).predict_maps(*args) if need_maps else {"logits": net(*args)}
    return {k: v.float() for k, v in maps.items()}


@torch.no_grad()
def evaluate(net: torch.nn.Module, loader, evaluator: Evaluator, precision: Precision, *,
             baselines: dict[str, Evaluator] | None = None, panels: int = 0,
             desc: str = "eval") -> tuple[dict, dict, list]:
    """Scores every episode of `loader`; returns (metrics, baseline metrics, panel images).

    Baselines and panels need the intermediate maps, so they switch to `predict_maps`
    (panels are skipped for a method without it).
    Distributed: counts are summed over the ranks and the first `panels` episodes' panels
    (by global index) are returned on every rank.
    """
    net.eval()
    if not hasattr(_model(net), "predict_maps"):  # a method without intermediate maps: logits only
        if baselines:
            raise UserError("the trivial-predictor baselines need the model's predict_maps (prior mask); "
                            "this method has none: set `baselines false`")
        panels = 0
    evaluators = [evaluator, *(baselines or {}).values()]
    for ev in evaluators:
        ev.reset()
    images, need_maps, seen = [], bool(baselines) or panels > 0, 0
    shard = _shard(loader)
    for batch in progress(loader, desc):
        b = precision.to_device(batch)
        maps = _forward_maps(net, b, need_maps, precision)
        masks = b.get("query_mask")
        evaluator.update(maps["logits"], batch["raw_mask"], batch["class_idx"], masks=masks)
        for name, ev in (baselines or {}).items():
            ev.update(BASELINES[name](maps), batch["raw_mask"], batch["class_idx"], masks=masks)
        for i in range(b["query"].shape[0]):
            index = shard[0] + (seen + i) * shard[1]  # position in the fixed episode list
            if index < panels:
                images.append((index, panel(b["query"], b["supports"], b["support_masks"], masks, maps, i)))
        seen += b["query"].shape[0]
    for ev in evaluators:
        distributed.reduce_evaluator(ev)
    base = {name: ev.compute() for name, ev in (baselines or {}).items()}
    gathered = sorted(distributed.gather_objects(images) if panels else images, key=lambda x: x[0])
    return evaluator.compute(), base, [img for _, img in gathered[:panels]]


def _shard(loader) -> tuple[int, int]:
    """(rank, world) of the loader's sampler: episode j of this rank is rank + j * world."""
    sampler = getattr(loader, "sampler", None)
    return getattr(sampler, "rank", 0), getattr(sampler, "world", 1)


def _model(net: torch.nn.Module) -> torch.nn.Module:
    return net.module if hasattr(net, "module") else net
