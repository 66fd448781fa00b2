"""Method registry: a method is a module `model/<family>/<name>.py` holding `METHOD`, looked up
by the `model` config key (docs/design.md §2.2); its family folder holds what only it uses.

A method's `build(cfg, num_train_classes)` returns the network (backbones, prototype
pooling, prior mask, FEM and losses are shared parts: model/{backbones,layers,losses}/); the
forward contract every method keeps is `net(query, supports, support_masks)` -> logits [B, 2, H, W] in eval
mode and `(logits, losses)` with `query_mask`/`classes` in training, where losses["total"] is
what the optimiser minimises. `fixed` holds the config values a method implies (PFENet: every
NTRENet module off); `network` names the network it builds, so results of two names for one
network share a report row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from model.registry import Registry

if TYPE_CHECKING:  # the registry itself needs no torch: `python -m util.report --help` stays fast
    from torch import nn


@dataclass(frozen=True)
class Method:
    name: str
    build: Callable[..., nn.Module]
    network: str
    fixed: dict[str, Any] = field(default_factory=dict)


METHODS = Registry("method", "model", "METHOD", "model", nested=True)


def get_method(name: str) -> Method:
    """The method the `model` key names (UserError listing the known ones otherwise)."""
    return METHODS.get(name)
