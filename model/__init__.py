"""Few-shot segmentation networks: methods (model/methods/, one file each, looked up by the
`model` key) built from shared modules (backbones, prototype pooling, prior mask, FEM, losses).
`build_model` is the only place that reads the config; nothing here imports util/.

The package's names load on first use (PEP 562), so importing `model.errors` — which every
command needs to report a mistake — does not import torch: `--help` answers in well under a second."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

__all__ = ["NTRENet", "build_model", "get_method", "load_weights"]

_LAZY = {"NTRENet": "model.methods.ntrenet", "get_method": "model.methods", "load_weights": "model.convert",
         "IFSLHead": "model.ifsl"}


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
    from model.ifsl import IFSLHead
    from model.methods import get_method

    n = cfg.num_train_classes if num_train_classes is None else num_train_classes
    net = get_method(cfg.model).build(cfg, n)
    if cfg.get("ifsl") and not getattr(net, "fscs", False):  # FS-CS: the method's maps through the iFSL head
        net = IFSLHead(net, ignore_label=cfg.ignore_label)
    return net
