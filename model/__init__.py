"""Few-shot segmentation networks. Shared parts by role (backbones/, layers/, losses/,
checkpoints/) and one folder per method family (ntrenet/ with PFENet, scnet/, mmt/, qgnet/,
bam/, fscs/) holding what only it uses; a method is a module of its family holding `METHOD`,
looked up by the `model` key (model/method.py, docs/design.md §1-2). `build_model` is the only
place that reads the config; nothing here imports util/.

The package's names load on first use (PEP 562), so importing `model.errors` — which every
command needs to report a mistake — does not import torch: `--help` answers in well under a second."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

__all__ = ["NTRENet", "build_model", "get_method", "load_weights"]

_LAZY = {"NTRENet": "model.ntrenet.ntrenet", "get_method": "model.method", "load_weights": "model.checkpoints.convert",
         "IFSLHead": "model.fscs.ifsl"}


def __getattr__(name: str) -> Any:
    """`from model import load_weights` and the like import their module now, not at package import."""
    if name not in _LAZY:
        raise AttributeError(f"module 'model' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def build_model(cfg, num_train_classes: int | None = None) -> nn.Module:
    """The network of cfg.model (its backbone with ImageNet weights when cfg.pretrained).

    `num_train_classes` sizes per-class state (NTRENet's PCL bank); by default the config
    reports it for its benchmark and fold (`cfg.num_train_classes`).
    """
    from model.fscs.ifsl import IFSLHead
    from model.method import get_method

    n = cfg.num_train_classes if num_train_classes is None else num_train_classes
    net = get_method(cfg.model).build(cfg, n)
    if cfg.get("ifsl") and not getattr(net, "fscs", False):  # FS-CS: the method's maps through the iFSL head
        net = IFSLHead(net, ignore_label=cfg.ignore_label)
    return net
