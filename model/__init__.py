"""Few-shot segmentation networks: methods (model/methods/, one file each, looked up by the
`model` key) built from shared modules (backbones, prototype pooling, prior mask, FEM, losses).
`build_model` is the only place that reads the config; nothing here imports util/."""
from __future__ import annotations

from torch import nn

from model.convert import load_weights
from model.ifsl import IFSLHead
from model.methods import get_method
from model.methods.ntrenet import NTRENet

__all__ = ["NTRENet", "build_model", "get_method", "load_weights"]


def build_model(cfg, num_train_classes: int | None = None) -> nn.Module:
    """The network of cfg.model (its backbone with ImageNet weights when cfg.pretrained).

    `num_train_classes` sizes per-class state (NTRENet's PCL bank); by default the config
    reports it for its benchmark and fold (`cfg.num_train_classes`).
    """
    n = cfg.num_train_classes if num_train_classes is None else num_train_classes
    net = get_method(cfg.model).build(cfg, n)
    if cfg.get("ifsl") and not getattr(net, "fscs", False):  # FS-CS: the method's maps through the iFSL head
        net = IFSLHead(net, ignore_label=cfg.ignore_label)
    return net
