"""The query's prior region map ("Few-Shot Segmentation with Global and Local Contrastive
Learning", Sec. IV-B1, eq. 8-12).

The pre-trained prior extractor F_p encodes the query into prior features P_q (the paper's
predetermined priors of that image); every bridge pixel x_q of X_q takes its highest cosine
similarity to any prior pixel p_q' (eq. 9-11), and the map is min-max normalised per image
with epsilon 1e-7 (eq. 12). It is computed from the query alone, never from the support.
The map is low on objects and high on background (Sec. IV-C), and is used as it is: the
network that reads it learns the sign.
"""
from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from model.backbones.encoder import Backbone, build_backbone
from model.qgnet.prior_extractor import load_prior_encoder

log = logging.getLogger(__name__)
REGION_EPS = 1e-7  # eq. 12


def prior_region_map(bridge: Tensor, prior: Tensor, eps: float = REGION_EPS) -> Tensor:
    """bridge X_q [B,C,h,w], prior P_q [B,C,h',w'] -> S_Q [B,1,h,w] in [0, 1)."""
    b, _, h, w = bridge.shape
    x, p = bridge.flatten(2), prior.flatten(2)                                     # [B,C,Q], [B,C,P]
    dot = torch.einsum("bcq,bcp->bqp", x, p)                                       # eq. 9 numerator
    cos = dot / (x.norm(dim=1)[:, :, None] * p.norm(dim=1)[:, None, :] + eps)      # eq. 9
    s = cos.amax(dim=2)                                                            # eq. 10-11, [B,Q]
    lo, hi = s.amin(dim=1, keepdim=True), s.amax(dim=1, keepdim=True)
    return ((s - lo) / (hi - lo + eps)).view(b, 1, h, w)                           # eq. 12


class PriorRegion(nn.Module):
    """Frozen F_p (pre-trained, BN in eval mode) and eq. 9-12 against the bridge features."""

    def __init__(self, encoder: Backbone) -> None:
        super().__init__()
        self.encoder = encoder
        for p in self.encoder.parameters():
            p.requires_grad_(False)

    def forward(self, query: Tensor, bridge: Tensor) -> Tensor:
        """query images [B,3,H,W], bridge X_q [B,C,h,w] (the frozen backbone's layer4) -> [B,1,h,w]."""
        with torch.no_grad():
            prior = self.encoder.encode(query)                                     # P_q = F_p(I_q), eq. 8
        return prior_region_map(bridge, prior.to(bridge.dtype))


def build_prior_region(cfg) -> PriorRegion:
    """F_p of the config's backbone with the weights of `qgnet_prior_weight` (checked against the `prior_*` keys)."""
    encoder = build_backbone(cfg.backbone, pretrained=False, initmodel_dir=cfg.initmodel_dir, bn_mode="frozen")
    encoder.load_state_dict(load_prior_encoder(cfg.qgnet_prior_weight, cfg), strict=True)
    log.info("prior extractor loaded from %s", cfg.qgnet_prior_weight)
    return PriorRegion(encoder)
