"""BAM (Lang et al., "Learning What Not to Segment: A New Perspective on Few-Shot
Segmentation", CVPR 2022): a meta learner for the novel class, a frozen base learner for the
base classes (PSPNet trained in stage 1, model/bam/pspnet.py) and their ensemble.

Meta learner (Sec. 3.2, as released): PFENet-style matching (query feature, masked-average
support prototype, prior mask) merged by a 1x1 conv, then ASPP, a residual refinement and a
2-class head. Scene difference psi (Sec. 3.3, model/bam/gram.py) from the Gram matrices of a
low-level layer. Ensemble (Sec. 3.4, model/bam/ensemble.py). K shots (Sec. 3.5): psi of each shot,
sorted, through a small 1x1-conv net and a softmax, weights the shots' psi, priors and
prototypes. Loss: final + w_meta x meta (the base learner is frozen, its loss has no gradient).
The encoder is the stage-1 PSPNet's, frozen, not the ImageNet one.
"""
from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from model.bam.aspp import ASPP
from model.bam.ntrenet_meta import NTRENetBAM
from model.backbones.encoder import Backbone, build_backbone
from model.checkpoints.bam import load_base_learner
from model.layers.blocks import conv_relu, refine_block, resize, seg_head
from model.bam.ensemble import Ensemble, FrozenStage1
from model.bam.gram import low_level
from model.bam.kshot import ShotWeights, scene_difference
from model.losses.objective import resize_labels, segmentation_ce
from model.method import Method
from model.ntrenet.ntrenet import head_options
from model.layers.prior import prior_mask
from model.layers.prototype import masked_average_pooling
from model.bam.pspnet import BaseLearner

log = logging.getLogger(__name__)


class BAM(FrozenStage1, nn.Module):
    def __init__(self, *, backbone: Backbone, num_base_classes: int, shot: int = 1, reduce_dim: int = 256,
                 low_layer: str = "layer2", kshot_hidden: int = 2, feature_dropout: float = 0.5,
                 loss_meta: float = 1.0, zoom_factor: int = 8, ignore_label: int = 255, output: str = "final") -> None:
        super().__init__()
        c = reduce_dim
        self.backbone = backbone
        self.base_learner = BaseLearner(backbone.high_channels, num_base_classes)
        for p in self.base_learner.parameters():
            p.requires_grad_(False)
        self.reduce_query = conv_relu(backbone.mid_channels, c, dropout=feature_dropout)
        self.reduce_support = conv_relu(backbone.mid_channels, c, dropout=feature_dropout)
        self.merge = conv_relu(2 * c + 1, c)
        self.aspp = ASPP(c)
        self.fuse = conv_relu(5 * c, c)
        self.refine = refine_block(c)
        self.head = seg_head(c)
        self.ensemble = Ensemble()
        self.shot_weights = ShotWeights(shot, kshot_hidden)
        self.low = low_level(backbone.mid_channels, low_layer)
        self.num_base_classes, self.shot, self.loss_meta = num_base_classes, shot, loss_meta
        self.zoom_factor, self.ignore_label = zoom_factor, ignore_label
        if output not in ("final", "meta"):
            raise ValueError(f"output must be final or meta, got '{output}'")
        self.output = output  # eval: the ensemble's prediction, or the meta learner alone (ablation)

    def forward(self, query: Tensor, supports: Tensor, support_masks: Tensor,
                query_mask: Tensor | None = None, classes: Tensor | None = None):
        """Eval: final (or, with output 'meta', the meta learner's) logits [B,2,H,W]. Training: (final, losses) with query_mask [B,H,W] and
        classes [B] (the episode's index among the base classes, kept out of the suppression)."""
        if self.training:
            self._check_targets(query, query_mask, classes)
        out = self.predict_all(query, supports, support_masks, classes if self.training else None)
        if not self.training:
            return out[self.output]
        target = resize_labels(query_mask, out["final"].shape[-2:])
        main = segmentation_ce(out["final"], target, self.ignore_label)
        meta = segmentation_ce(out["meta"], target, self.ignore_label)
        return out["final"], {"main": main, "meta": meta, "total": main + self.loss_meta * meta}

    def predict_all(self, query: Tensor, supports: Tensor, support_masks: Tensor,
                    exclude: Tensor | None = None) -> dict[str, Tensor]:
        """final [B,2,H,W], meta [B,2,H,W], base [B,1+Nb,H,W] logits and psi [B,1,1,1]."""
        if supports.shape[1] != self.shot:
            raise ValueError(f"BAM was built for {self.shot} shot(s) (its K-shot weights), got {supports.shape[1]}")
        b, k = supports.shape[:2]
        with torch.no_grad():
            feats = self.backbone(query, supports, (support_masks == 1).to(query.dtype))  # 255 -> 0
            base = self.base_learner(feats.query_high)                                   # [B,1+Nb,h,w]
        xq = self.reduce_query(feats.query_mid)                                           # [B,C,h,w]
        xs = self.reduce_support(feats.support_mid.flatten(0, 1))                         # [BK,C,h,w]
        protos = masked_average_pooling(xs, feats.support_mask.flatten(0, 1)[:, None]).unflatten(0, (b, k))
        psi, weights = scene_difference(feats.query_mid[:, self.low], feats.support_mid[:, :, self.low],
                                        self.shot_weights)                                  # [B,1,1,1], [B,K,1,1]
        priors = torch.cat([prior_mask(feats.query_high, feats.support_high[:, i:i + 1],
                                       feats.support_mask[:, i:i + 1]) for i in range(k)], dim=1)  # [B,K,h,w]
        prior = (weights * priors).sum(dim=1, keepdim=True)                                 # [B,1,h,w]
        proto = (weights[:, :, None] * protos).sum(dim=1)                                   # [B,C,1,1]
        x = self.merge(torch.cat([xq, proto.expand_as(xq), prior], dim=1))
        x = self.fuse(self.aspp(x))
        meta = self.head(self.refine(x) + x)                                                # [B,2,h,w]
        final = self.ensemble(meta, base, psi, exclude)
        size = self._out_size(query)
        return {"final": resize(final, size), "meta": resize(meta, size), "base": resize(base, size), "psi": psi}

    def _out_size(self, query: Tensor) -> tuple[int, int]:
        h, w = query.shape[-2:]
        return int((h - 1) / 8 * self.zoom_factor + 1), int((w - 1) / 8 * self.zoom_factor + 1)

    def _check_targets(self, query: Tensor, query_mask: Tensor | None, classes: Tensor | None) -> None:
        b, _, h, w = query.shape
        if query_mask is None or tuple(query_mask.shape) != (b, h, w):
            raise ValueError(f"training forward needs query_mask [B,H,W] = {(b, h, w)}; call net.eval() for inference")
        if classes is None or tuple(classes.shape) != (b,) or classes.dtype.is_floating_point \
                or bool(((classes < 0) | (classes >= self.num_base_classes)).any()):
            raise ValueError(f"training BAM needs classes [B]: integer indices in 0..{self.num_base_classes - 1} "
                             "of the episode's class among the fold's base classes")


def base_weight_path(cfg) -> str:
    """The stage-1 checkpoint this config reads (`base_weight`, {dataset}/{split}/{backbone} filled in)."""
    return cfg.base_weight.format(dataset=cfg.dataset, split=cfg.split, backbone=cfg.backbone)


def build(cfg, num_train_classes: int) -> nn.Module:
    """BAM (or NTRENet in BAM's ensemble, `meta_learner ntrenet`) with the stage-1 encoder and base
    learner loaded (`base_weight none`: random, for tests)."""
    backbone = build_backbone(cfg.backbone, pretrained=False, initmodel_dir=cfg.initmodel_dir, bn_mode="frozen")
    bam = dict(shot=cfg.shot, low_layer=cfg.low_layer, kshot_hidden=cfg.kshot_hidden, loss_meta=cfg.loss_meta,
               output=cfg.bam_output)
    if cfg.meta_learner == "ntrenet":
        net: nn.Module = NTRENetBAM(backbone=backbone, **bam, **head_options(cfg, num_train_classes))
    else:
        net = BAM(backbone=backbone, num_base_classes=num_train_classes, reduce_dim=cfg.reduce_dim,
                  feature_dropout=cfg.feature_dropout, zoom_factor=cfg.zoom_factor, ignore_label=cfg.ignore_label,
                  **bam)
    if cfg.base_weight != "none":
        expected = {k: cfg[k] for k in ("dataset", "split", "backbone", "coco_fold_style")}
        load_base_learner(net, base_weight_path(cfg), expected, produced_by=stage1_command(cfg))
    return net


def stage1_command(cfg) -> str:
    return (f"python train_base.py --config config/{cfg.dataset}/{cfg.dataset}_split{cfg.split}_"
            f"{cfg.backbone}_pspnet.yaml")


METHOD = Method("bam", build, network="bam")
