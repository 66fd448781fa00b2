"""NTRENet (optionally with SCNet's query branch) and its modules; `build_model` is the only place
that reads the config."""
from __future__ import annotations

from model.backbone import build_backbone
from model.convert import load_weights
from model.loss import LossWeights
from model.ntrenet import NTRENet
from util.splits import base_classes

__all__ = ["NTRENet", "build_model", "load_weights"]


def build_model(cfg) -> NTRENet:
    """Backbone (ImageNet weights when cfg.pretrained) + NTRENet heads as the config says."""
    backbone = build_backbone(cfg.backbone, pretrained=cfg.pretrained, initmodel_dir=cfg.initmodel_dir,
                              bn_mode=cfg.backbone_bn)
    return NTRENet(
        backbone=backbone, reduce_dim=cfg.reduce_dim, bins=tuple(cfg.ppm_scales),
        use_bgem=cfg.use_bgem, use_doem=cfg.use_doem, use_pcl=cfg.use_pcl, bg_dim=cfg.bg_dim,
        bg_init=cfg.bg_init, bg_alpha=cfg.bg_alpha, bg_loss_norm=cfg.bg_loss_norm, do_pooling=cfg.do_pooling,
        pcl_negatives=cfg.pcl_negatives, pcl_negative_region=cfg.pcl_negative_region, pcl_positive=cfg.pcl_positive,
        pcl_bank_size=cfg.pcl_bank_size, pcl_samples=cfg.pcl_samples, pcl_temperature=cfg.pcl_temperature,
        num_train_classes=len(base_classes(cfg.dataset, cfg.split, cfg.coco_fold_style)),
        zoom_factor=cfg.zoom_factor, ignore_label=cfg.ignore_label,
        use_scnet=cfg.use_scnet, scnet_clusters=cfg.scnet_clusters, scnet_prior=cfg.scnet_prior,
        feature_dropout=cfg.feature_dropout,
        loss_weights=LossWeights(ini=cfg.loss_ini, fem=cfg.loss_fem, bg=cfg.loss_bg, pcl=cfg.loss_pcl,
                                 scnet=cfg.scnet_lambda if cfg.use_scnet else 0.0),
    )
