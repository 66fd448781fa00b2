"""NTRENet (paper Fig. 3): PFENet's matching + FEM, with BG and DO elimination.

Pipeline per FEM bin: BGEM (eq. 4) -> FM (eq. 5-6) -> DOEM (eq. 7-9) -> FEM step; the bins
are fused into the final prediction. `use_bgem`, `use_doem`, `use_pcl` switch the paper's
modules (Table 3); all off is PFENet exactly. `forward` and `predict_maps` share `_run`.
`use_scnet` adds SCNet's training-only query branch (model/scnet/self_contrastive.py): the same head (merge,
BGEM/DOEM when on, FEM) compares the query with its own background prototypes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from model.backbones.encoder import Backbone, build_backbone, mid_channels
from model.ntrenet.bgem import BGEM
from model.ntrenet.bgmm import BGMM, bg_binary, bg_mining_loss, bg_probability
from model.layers.blocks import conv_relu, resize
from model.ntrenet.doem import DOEM
from model.layers.fem import FEM
from model.ntrenet.fm import FeatureMatching
from model.losses.objective import LossWeights, resize_labels, segmentation_loss, segmentation_terms, weighted_total
from model.ntrenet.pcl import PCL, negative_region, nontarget_mask, support_mask_prototype
from model.layers.prior import prior_mask
from model.qgnet.prior_region import PriorRegion, build_prior_region
from model.layers.prototype import masked_average_pooling
from model.method import Method
from model.mmt.meta_memory import MetaMemoryTransfer
from model.scnet.self_contrastive import SelfContrastBranch


@dataclass
class _Pass:
    """What one pass computes at feature size (h, w); b = a bin's size."""
    logits: Tensor                 # [B,2,h,w] final y^q
    fem_heads: list[Tensor]        # per bin [B,2,b,b]
    ini_heads: list[Tensor]        # per bin [B,2,b,b] y_ini (DOEM on), else []
    do_masks: list[Tensor]         # per bin [B,1,b,b] Y_DO (DOEM on), else []
    prior: Tensor                  # [B,1,h,w] C_p
    bg_query: Tensor | None        # [B,2,h,w] BG logits (BG branch on)
    xq: Tensor                     # [B,C,h,w]
    xs: Tensor                     # [B,K,C,h,w]
    proto: Tensor                  # [B,C,1,1] K-shot mean support prototype P^s
    query_mid: Tensor              # [B,Cm,h,w] backbone mid-level query feature (SCNet prototypes)
    query_high: Tensor             # [B,Ch,h,w] backbone layer4 query feature (SCNet clustering)
    support_mid: Tensor            # [B,K,Cm,h,w] backbone mid-level support features (BAM's Gram matrices)
    other_query_mid: Tensor | None = None  # MMT in training: the query view the head did not see
    region: Tensor | None = None   # [B,1,h,w] QGNet's prior region map (qgnet_prior on)


class NTRENet(nn.Module):
    def __init__(self, *, backbone: Backbone, reduce_dim: int = 256, bins: tuple[float, ...] = (60, 30, 15, 8),
                 use_bgem: bool = True, use_doem: bool = True, use_pcl: bool = True, bg_dim: int = 256,
                 bg_init: str = "zeros", bg_alpha: float = 0.5, bg_loss_norm: str = "per_image",
                 do_pooling: str = "global", pcl_negatives: str = "do", pcl_negative_region: str = "nearest",
                 pcl_positive: str = "support_mask",
                 pcl_bank_size: int = 2000, pcl_samples: int = 1000, pcl_temperature: float = 1.0,
                 num_train_classes: int = 15, zoom_factor: int = 8, ignore_label: int = 255,
                 use_scnet: bool = False, scnet_clusters: int = 3, scnet_prior: str = "region",
                 feature_dropout: float = 0.5, loss_weights: LossWeights = LossWeights(),
                 cap_bins: bool = False, prior_foreground_only: bool = False,
                 mmt: MetaMemoryTransfer | None = None,
                 prior_region: PriorRegion | None = None) -> None:
        super().__init__()
        c, n = reduce_dim, len(bins)
        self.backbone = backbone
        self.reduce_query = conv_relu(backbone.mid_channels, c, dropout=feature_dropout)
        self.reduce_support = conv_relu(backbone.mid_channels, c, dropout=feature_dropout)
        # DOEM and BG/DO negatives of PCL need the BG map, so they switch the BG branch on.
        needs_bg = use_bgem or use_doem or (use_pcl and pcl_negatives != "nontarget")
        self.bgmm = BGMM(feat_dim=c, bg_dim=bg_dim, dropout=feature_dropout, init=bg_init) if needs_bg else None
        self.bgem = BGEM(feat_dim=c, bg_dim=bg_dim, num_bins=n) if use_bgem else None
        # QGNet's prior region map (frozen pre-trained F_p) enters FM as a second prior channel
        self.prior_region = prior_region
        self.fm = FeatureMatching(feat_dim=c, num_bins=n, with_initial_head=use_doem,
                                  prior_channels=1 if prior_region is None else 2)
        self.doem = DOEM(feat_dim=c, num_bins=n, pooling=do_pooling) if use_doem else None
        self.fem = FEM(feat_dim=c, bins=bins, cap_bins=cap_bins)
        self.prior_foreground_only = prior_foreground_only
        self.pcl = PCL(num_classes=num_train_classes, dim=c, bank_size=pcl_bank_size, samples=pcl_samples,
                       temperature=pcl_temperature, negatives=pcl_negatives, region=pcl_negative_region,
                       positive=pcl_positive) if use_pcl else None
        # SCNet: no parameters of its own, it reuses reduce_support and the head (state dict unchanged)
        self.scnet = SelfContrastBranch(clusters=scnet_clusters, prior=scnet_prior,
                                        ignore_label=ignore_label) if use_scnet else None
        self.num_train_classes, self.bg_alpha, self.bg_loss_norm = num_train_classes, bg_alpha, bg_loss_norm
        self.zoom_factor, self.ignore_label, self.loss_weights = zoom_factor, ignore_label, loss_weights
        self.mmt = mmt  # meta-memory transfer on the mid-level features (model/mmt/meta_memory.py), None when off

    # ----------------------------------------------------------------------------- public
    def forward(self, query: Tensor, supports: Tensor, support_masks: Tensor,
                query_mask: Tensor | None = None, classes: Tensor | None = None):
        """query [B,3,H,W], supports [B,K,3,H,W], support_masks [B,K,H,W] (0/1/255).

        Eval: logits [B,2,H,W]. Training: (logits, losses) with query_mask [B,H,W] required
        (and classes [B], index in the fold's training-class list, with PCL).
        """
        if self.training:
            self._check_targets(query, query_mask, classes)
        out = self._run(query, supports, support_masks)
        logits = resize(out.logits, self._out_size(query))  # [B,2,H,W]
        if not self.training:
            return logits
        return logits, self._losses(out, logits, query_mask, support_masks, classes)

    @torch.no_grad()
    def predict_maps(self, query: Tensor, supports: Tensor, support_masks: Tensor) -> dict[str, Tensor]:
        """For panels and tools (call in eval mode): logits [B,2,H,W], ini [B,2,H,W] y_ini logits of the
        first (largest) bin, bg [B,1,H,W] BG probability, do [B,1,H,W] Y_DO of the first bin, prior
        [B,1,H,W]; maps a switch disables are zeros; region [B,1,H,W] QGNet's prior region map (qgnet_prior)."""
        out = self._run(query, supports, support_masks)
        size = self._out_size(query)
        zeros = out.prior.new_zeros(out.prior.shape[0], 1, *size)  # [B,1,H,W]
        return {
            "logits": resize(out.logits, size),
            "ini": resize(out.ini_heads[0], size) if out.ini_heads else zeros.expand(-1, 2, -1, -1).clone(),
            "bg": resize(bg_probability(out.bg_query), size) if out.bg_query is not None else zeros,
            "do": resize(out.do_masks[0], size) if out.do_masks else zeros.clone(),
            "prior": resize(out.prior, size),
            **({"region": resize(out.region, size)} if out.region is not None else {}),
        }

    # ----------------------------------------------------------------------------- pass
    def _run(self, query: Tensor, supports: Tensor, support_masks: Tensor) -> _Pass:
        self._check_inputs(query, supports, support_masks)
        b, k = supports.shape[:2]
        feats = self.backbone(query, supports, (support_masks == 1).to(query.dtype))  # 255 -> 0
        other = None
        if self.mmt is not None:
            query_mid, support_mid, other = self.mmt.views(feats.query_mid, feats.support_mid)
            feats = replace(feats, query_mid=query_mid, support_mid=support_mid)
        xq = self.reduce_query(feats.query_mid)                                 # [B,C,h,w]
        xs = self.reduce_support(feats.support_mid.flatten(0, 1))              # [BK,C,h,w]
        protos = masked_average_pooling(xs, feats.support_mask.flatten(0, 1)[:, None])  # [BK,C,1,1]
        proto = protos.unflatten(0, (b, k)).mean(dim=1)                        # [B,C,1,1] K-shot mean
        prior = prior_mask(feats.query_high, feats.support_high, feats.support_mask,
                           foreground_only=self.prior_foreground_only)         # [B,1,h,w]
        region = self.prior_region(query, feats.query_high) if self.prior_region is not None else None
        bg_query = self.bgmm(xq) if self.bgmm is not None else None            # eq. 1, [B,2,h,w]
        logits, fem_heads, ini_heads, do_masks = self._pyramid(xq, proto, _guidance(prior, region), bg_query)
        return _Pass(logits, fem_heads, ini_heads, do_masks, prior, bg_query, xq,
                     xs.unflatten(0, (b, k)), proto, feats.query_mid, feats.query_high, feats.support_mid, other,
                     region)

    def _pyramid(self, xq: Tensor, proto: Tensor, prior: Tensor, bg_logits: Tensor | None):
        """The comparison head: proto [B,C,1,1] (P^s) or a prototype map [B,C,h,w] (SCNet eq. 7)."""
        size = xq.shape[-2:]
        feats, fem_heads, ini_heads, do_masks, prev = [], [], [], [], None
        for idx in range(self.fem.num_bins):
            x = self.fem.pool(xq, idx)                                          # [B,C,b,b]
            bin_size = x.shape[-2:]
            x_fm = self.bgem(x, self.bgmm.expand(x), idx) if self.bgem is not None else x  # eq. 4
            p = proto if proto.shape[-2:] == (1, 1) else self.fem.pool(proto, idx)   # [B,C,1|b,1|b]
            x_act, ini = self.fm(x_fm, p, resize(prior, bin_size), idx)         # eq. 5-6
            if self.doem is not None:                                           # eq. 7-9
                x_act, y_do = self.doem(x_act, x, resize(bg_logits, bin_size), ini, idx)
                ini_heads.append(ini)
                do_masks.append(y_do)
            prev, head = self.fem.step(x_act, prev, idx, size)                  # Seg of eq. 9
            feats.append(prev)
            fem_heads.append(head)
        return self.fem.fuse_bins(feats), fem_heads, ini_heads, do_masks

    # ----------------------------------------------------------------------------- losses
    def _losses(self, out: _Pass, logits: Tensor, query_mask: Tensor, support_masks: Tensor,
                classes: Tensor | None) -> dict[str, Tensor]:
        target = resize_labels(query_mask, logits.shape[-2:])                  # [B,H,W] long
        zero = logits.new_zeros(())
        terms = {**segmentation_terms(logits, out.fem_heads, out.ini_heads, target, self.ignore_label),
                 "bg": zero, "pcl": zero, "scnet": zero}
        bg_support = None
        if self.bgmm is not None:
            bg_support = self.bgmm(out.xs.flatten(0, 1))                       # eq. 2, [BK,2,h,w]
            terms["bg"] = self._bg_loss(out.bg_query, bg_support, query_mask, support_masks)
        if self.pcl is not None:
            terms["pcl"] = self._pcl_loss(out, bg_support, query_mask, support_masks, classes)
        if self.scnet is not None:  # last: the other terms draw the same random numbers as without it
            terms["scnet"] = self._scnet_loss(out, query_mask, logits.shape[-2:])
        total = weighted_total(terms, self.loss_weights)
        if self.mmt is None:
            return total
        mmt = self._mmt_losses(out, query_mask, support_masks)
        return {**total, **mmt, "total": total["total"] + self.mmt.weight * mmt["mmt"]}

    def _mmt_losses(self, out: _Pass, query_mask: Tensor, support_masks: Tensor) -> dict[str, Tensor]:
        """MMT's L_orth + L_cont + L_pro on the reduced features (both query views reduced alike)."""
        b, k = support_masks.shape[:2]
        size = out.xq.shape[-2:]
        support = (resize_labels(support_masks.flatten(0, 1), size) == 1).to(out.xq.dtype).view(b, k, *size)
        other = self.reduce_query(out.other_query_mid) if self.mmt.contrast else out.xq  # L_cont's second view
        return self.mmt.losses(out.xq, other, out.xs, support,
                               resize_labels(query_mask, size), self.ignore_label)

    def _scnet_loss(self, out: _Pass, query_mask: Tensor, size: tuple[int, int]) -> Tensor:
        """SCNet L2 (eq. 9): the query branch (eq. 4-7) through the shared head (eq. 8) vs 1 - M^q.

        Its prototypes are pooled from the query's mid-level feature through the support-side
        reduction, so the head's prototype channels come from the same layer in both branches.
        """
        episode = self.scnet.episode(out.query_high, self.reduce_support(out.query_mid), out.prior, query_mask)
        logits, fem_heads, ini_heads, _ = self._pyramid(out.xq, episode.protos, _guidance(episode.prior, out.region),
                                                        out.bg_query)
        target = resize_labels(episode.target, size)                           # [B,H,W] long
        terms = segmentation_terms(resize(logits, size), fem_heads, ini_heads, target, self.ignore_label)
        return segmentation_loss(terms, self.loss_weights)

    def _bg_loss(self, bg_query: Tensor, bg_support: Tensor, query_mask: Tensor, support_masks: Tensor) -> Tensor:
        """eq. 3 over the query and every support (groups: query batch, then each shot's batch)."""
        b, k = support_masks.shape[:2]
        bg_support = bg_support.unflatten(0, (b, k)).transpose(0, 1).flatten(0, 1)   # [KB,2,h,w]
        labels = torch.cat([query_mask, support_masks.transpose(0, 1).flatten(0, 1)])  # [(1+K)B,H,W]
        logits = resize(torch.cat([bg_query, bg_support]), labels.shape[-2:])        # [(1+K)B,2,H,W]
        return bg_mining_loss(logits, labels, alpha=self.bg_alpha, groups=1 + k, norm=self.bg_loss_norm)

    def _pcl_loss(self, out: _Pass, bg_support: Tensor | None, query_mask: Tensor, support_masks: Tensor,
                  classes: Tensor) -> Tensor:
        """eq. 10: P^q from the predicted target, the support positive, bank negatives of the class."""
        b, k = support_masks.shape[:2]
        size = out.xq.shape[-2:]
        labels = torch.cat([query_mask[:, None], support_masks], dim=1).flatten(0, 1)  # [B(1+K),H,W]
        nontarget = nontarget_mask(labels, size, self.pcl.region).to(out.xq.dtype).view(b, 1 + k, *size)
        bg = None
        if bg_support is not None:  # Y_BG of the query and of each support
            bg = torch.cat([bg_binary(out.bg_query), bg_binary(bg_support).view(b, k, *size)], 1)
        region = negative_region(self.pcl.negatives, nontarget, bg).flatten(0, 1)[:, None]  # [B(1+K),1,h,w]
        feats = torch.cat([out.xq[:, None], out.xs], dim=1).flatten(0, 1)         # [B(1+K),C,h,w]
        negatives = masked_average_pooling(feats, region).flatten(1)              # [B(1+K),C]
        keep = region.flatten(1).sum(dim=1) > 0                                   # empty regions
        if self.pcl.region == "nearest":                                          # released: stored too
            keep = torch.ones_like(keep)
        target = (out.logits.argmax(dim=1, keepdim=True) == 1).to(out.xq.dtype)   # binarised y^q
        query = masked_average_pooling(out.xq, target).flatten(1)                 # P^q [B,C]
        positive = (out.proto.flatten(1) if self.pcl.positive == "prototype"     # P^s (Sec. 3.5.2)
                    else support_mask_prototype(out.xs, support_masks))          # released
        return self.pcl(query, positive, negatives[keep], classes.repeat_interleave(1 + k)[keep], classes)

    # ----------------------------------------------------------------------------- checks
    def _out_size(self, query: Tensor) -> tuple[int, int]:
        """PFENet: (size - 1) / 8 * zoom_factor + 1, i.e. the input size for zoom_factor 8."""
        h, w = query.shape[-2:]
        return int((h - 1) / 8 * self.zoom_factor + 1), int((w - 1) / 8 * self.zoom_factor + 1)

    @staticmethod
    def _check_inputs(query: Tensor, supports: Tensor, support_masks: Tensor) -> None:
        if query.dim() != 4 or supports.dim() != 5 or support_masks.dim() != 4:
            raise ValueError("expected query [B,3,H,W], supports [B,K,3,H,W], support_masks [B,K,H,W]; got "
                             f"{tuple(query.shape)}, {tuple(supports.shape)}, {tuple(support_masks.shape)}")
        b, k = supports.shape[:2]
        if supports.shape[0] != query.shape[0] or supports.shape[2:] != query.shape[1:] \
                or support_masks.shape != (b, k, *query.shape[-2:]):
            raise ValueError("query, supports and support_masks disagree in batch, shot or image size: "
                             f"{tuple(query.shape)}, {tuple(supports.shape)}, {tuple(support_masks.shape)}")

    def _check_targets(self, query: Tensor, query_mask: Tensor | None, classes: Tensor | None) -> None:
        b, _, h, w = query.shape
        if query_mask is None or tuple(query_mask.shape) != (b, h, w):
            got = None if query_mask is None else tuple(query_mask.shape)
            raise ValueError(f"training forward needs query_mask [B,H,W] = {(b, h, w)} (0/1/255), got {got}; "
                             "call net.eval() for inference")
        if self.pcl is None:
            return
        if classes is None or tuple(classes.shape) != (b,):
            raise ValueError("training with PCL (use_pcl) needs classes [B]: each episode's index in the "
                             f"fold's training-class list, got {None if classes is None else tuple(classes.shape)}")
        if classes.dtype.is_floating_point or bool((classes < 0).any() | (classes >= self.num_train_classes).any()):
            raise ValueError(f"classes must be integer indices in 0..{self.num_train_classes - 1} "
                             f"(the fold's training classes), got {classes.tolist()}")


def _guidance(prior: Tensor, region: Tensor | None) -> Tensor:
    """FM's prior channels: C_p [B,1,h,w], and QGNet's prior region map after it when on."""
    return prior if region is None else torch.cat([prior, region], dim=1)


def build(cfg, num_train_classes: int) -> NTRENet:
    """Backbone + NTRENet with the modules and weights the config switches on."""
    backbone = build_backbone(cfg.backbone, pretrained=cfg.pretrained, initmodel_dir=cfg.initmodel_dir,
                              bn_mode=cfg.backbone_bn)
    return NTRENet(backbone=backbone, **head_options(cfg, num_train_classes))


def head_options(cfg, num_train_classes: int) -> dict:
    """NTRENet's constructor arguments (all but the backbone) from the config."""
    return dict(
        reduce_dim=cfg.reduce_dim, bins=tuple(cfg.ppm_scales),
        use_bgem=cfg.use_bgem, use_doem=cfg.use_doem, use_pcl=cfg.use_pcl, bg_dim=cfg.bg_dim,
        bg_init=cfg.bg_init, bg_alpha=cfg.bg_alpha, bg_loss_norm=cfg.bg_loss_norm, do_pooling=cfg.do_pooling,
        pcl_negatives=cfg.pcl_negatives, pcl_negative_region=cfg.pcl_negative_region, pcl_positive=cfg.pcl_positive,
        pcl_bank_size=cfg.pcl_bank_size, pcl_samples=cfg.pcl_samples, pcl_temperature=cfg.pcl_temperature,
        num_train_classes=num_train_classes, zoom_factor=cfg.zoom_factor, ignore_label=cfg.ignore_label,
        use_scnet=cfg.use_scnet, scnet_clusters=cfg.scnet_clusters, scnet_prior=cfg.scnet_prior,
        feature_dropout=cfg.feature_dropout, cap_bins=cfg.cap_bins, prior_foreground_only=cfg.prior_foreground_only,
        prior_region=build_prior_region(cfg) if cfg.qgnet_prior else None,
        loss_weights=LossWeights(ini=cfg.loss_ini, fem=cfg.loss_fem, bg=cfg.loss_bg, pcl=cfg.loss_pcl,
                                 scnet=cfg.scnet_lambda if cfg.use_scnet else 0.0),
        mmt=MetaMemoryTransfer(mid_channels(cfg.backbone), slots=cfg.mmt_slots, momentum=cfg.mmt_momentum,
                               alpha=cfg.mmt_alpha, temperature=cfg.mmt_temperature, contrast=cfg.mmt_contrast,
                               enhance_train=cfg.mmt_enhance_train, enhance_test=cfg.mmt_enhance_test,
                               weight=cfg.loss_mmt) if cfg.use_mmt else None,
    )


METHOD = Method("ntrenet", build, network="ntrenet")
