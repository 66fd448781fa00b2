"""ASNet, the attentive squeeze network ("Integrative Few-Shot Learning for Classification and
Segmentation", Sec. 4): an FS-CS learner (docs/fscs.md).

Frozen torchvision ResNet -> hypercorrelation of stages 4, 3, 2 (model/hypercorrelation.py) ->
attentive squeeze of each stage's support dimensions (model/attentive_squeeze.py) -> fusion
4 -> 3 -> 2 (the deeper stage averaged over its support positions, resized to the next query
size and added, then squeezed again) -> a 2D decoder -> per-way maps Y^(n), which the iFSL
head (model/ifsl.py) turns into presence and an (N+1)-class segmentation.

Supports are resized to SUPPORT_SIZE (the release's input size) before the backbone: the
squeeze strides are sized for it and end on a single support position. Parameter names are the
released model's (`backbone.` torchvision ResNet, `learner.`), so its checkpoints load strictly.
Table 2c ablations: `local` attention, `masked_attention` off, `fusion` off (the three squeezed
stages averaged over their support positions and summed at the stage-2 query size).
"""
from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import resnet50, resnet101

from model.attentive_squeeze import run_block, squeeze_block
from model.errors import UserError
from model.hypercorrelation import hypercorrelation, stage_features
from model.ifsl import check_episode, classification_loss, segmentation_loss
from model.methods import Method
from model.safe_load import load_file

log = logging.getLogger(__name__)

SUPPORT_SIZE = 400
POOL_FROM = 50  # support feature maps at least this wide are pooled before correlation
RESNETS = {"resnet50": (resnet50, (3, 4, 6, 3)), "resnet101": (resnet101, (3, 4, 23, 3))}
WEIGHT_FILES = {"resnet50": "resnet50_torchvision.pth", "resnet101": "resnet101_torchvision.pth"}


def _resize_query_dims(x: Tensor, size: tuple[int, int]) -> Tensor:
    """[B, C, Hq, Wq, Hs, Ws] -> query dims resized bilinearly (align_corners) to `size`."""
    b, c, hq, wq, hs, ws = x.shape
    flat = x.permute(0, 4, 5, 1, 2, 3).reshape(b * hs * ws, c, hq, wq)
    flat = F.interpolate(flat, size, mode="bilinear", align_corners=True)
    return flat.reshape(b, hs, ws, c, *size).permute(0, 3, 4, 5, 1, 2)


class AttentionLearner(nn.Module):
    """Squeeze, fuse and decode the three stages' correlations into 2-channel maps."""

    def __init__(self, stage_depths: tuple[int, int, int], *, local: bool = False, fusion: bool = True):
        super().__init__()
        d4, d3, d2 = stage_depths
        self.fusion = fusion
        self.encoder_layer4 = squeeze_block(d4, (32, 128), (5, 3), (4, 2), local=local)
        self.encoder_layer3 = squeeze_block(d3, (32, 128), (5, 5), (4, 4), pool_kv=True, local=local)
        self.encoder_layer2 = squeeze_block(d2, (32, 128), (5, 5), (4, 4), pool_kv=True, local=local)
        if fusion:
            self.encoder_layer4to3 = squeeze_block(128, (128, 128), (1, 2), (1, 1), local=local)
            self.encoder_layer3to2 = squeeze_block(128, (128, 128), (1, 2), (1, 1), local=local)
        self.decoder1 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(128, 64, 3, padding=1), nn.ReLU())
        self.decoder2 = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 2, 3, padding=1))

    def forward(self, corrs: list[Tensor], support_mask: Tensor | None) -> Tensor:
        """corrs: stages 4, 3, 2 [B', L, Hq, Wq, Hs, Ws]; -> logits [B', 2, 2 Hq2, 2 Wq2]."""
        s4, s3, s2 = (run_block(block, c, support_mask) for block, c in
                      zip((self.encoder_layer4, self.encoder_layer3, self.encoder_layer2), corrs))
        size3, size2 = s3.shape[2:4], s2.shape[2:4]
        if self.fusion:
            mix = _resize_query_dims(s4.mean(dim=(-1, -2), keepdim=True), size3) + s3
            mix = run_block(self.encoder_layer4to3, mix, support_mask)
            mix = run_block(self.encoder_layer3to2, _resize_query_dims(mix, size2) + s2, support_mask)
        else:
            mix = sum(_resize_query_dims(s.mean(dim=(-1, -2), keepdim=True), size2) for s in (s4, s3, s2))
        if mix.shape[-2:] != (1, 1):
            raise ValueError(f"ASNet squeezes the support dimensions to 1x1, got {tuple(mix.shape[-2:])}: "
                             f"supports must be {SUPPORT_SIZE} px")
        x = self.decoder1(mix[..., 0, 0])
        x = F.interpolate(x, (x.shape[-2] * 2, x.shape[-1] * 2), mode="bilinear", align_corners=True)
        return self.decoder2(x)


class ASNet(nn.Module):
    """FS-CS learner. `net(query [B,3,H,W], supports [B,N,K,3,H,W], support_masks [B,N,K,H,W])`
    -> per-way log-probabilities [B, N, 2, H, W] (K shots: the release's average of the shots'
    maps). Training (1-way): with `query_mask` [B,H,W] (strong) or `presence` [B,1] (weak)
    -> (maps, {'total', 'seg' or 'cls'})."""

    fscs = True

    def __init__(self, backbone: str = "resnet50", *, weak: bool = False, local: bool = False,
                 masked_attention: bool = True, fusion: bool = True, ignore_label: int = 255):
        super().__init__()
        if backbone not in RESNETS:
            raise UserError(f"model asnet needs backbone resnet50 or resnet101, got '{backbone}'")
        make, depths = RESNETS[backbone]
        self.backbone = make(weights=None)
        for p in self.backbone.parameters():
            p.requires_grad = False
        self.learner = AttentionLearner((depths[3], depths[2], depths[1]), local=local, fusion=fusion)
        self.weak, self.masked, self.ignore = weak, masked_attention, ignore_label

    def train(self, mode: bool = True) -> "ASNet":
        super().train(mode)
        self.backbone.eval()  # frozen, BN statistics included
        return self

    def maps(self, query: Tensor, supports: Tensor, support_masks: Tensor | None) -> Tensor:
        """One shot per way: supports [B,N,3,H,W], masks [B,N,H,W] -> logits [B,N,2,h,w]."""
        b, n = supports.shape[:2]
        s = F.interpolate(supports.flatten(0, 1), (SUPPORT_SIZE, SUPPORT_SIZE), mode="bilinear",
                          align_corners=True)
        mask = None
        if support_masks is not None and self.masked and not self.weak:
            m = (support_masks.flatten(0, 1) == 1).float()[:, None]
            mask = F.interpolate(m, (SUPPORT_SIZE, SUPPORT_SIZE), mode="nearest")[:, 0]
        with torch.no_grad():
            corrs = hypercorrelation(stage_features(self.backbone, query),
                                     stage_features(self.backbone, s, pool_from=POOL_FROM), way=n)
        logits = self.learner(corrs, mask)
        return logits.unflatten(0, (b, n))

    def forward(self, query: Tensor, supports: Tensor, support_masks: Tensor, query_mask: Tensor | None = None,
                classes: Tensor | None = None, presence: Tensor | None = None):
        check_episode(query, supports, support_masks)
        size = query.shape[-2:]
        shots = [self.maps(query, supports[:, :, k], support_masks[:, :, k]) for k in range(supports.shape[2])]
        logp = torch.stack([F.log_softmax(x, dim=2) for x in shots]).mean(dim=0)      # [B,N,2,h,w]
        logp = F.interpolate(logp.flatten(1, 2), size, mode="bilinear", align_corners=True).unflatten(1, (-1, 2))
        if not self.training:
            return logp
        if self.weak:
            if presence is None:
                raise ValueError("weak ASNet training needs presence [B, N] (class tags)")
            loss = classification_loss(logp, presence)
            return logp, {"total": loss, "cls": loss}
        if query_mask is None:
            raise ValueError("ASNet training needs query_mask [B,H,W] (0..N, ignore)")
        loss = segmentation_loss(logp, query_mask, self.ignore)
        return logp, {"total": loss, "seg": loss}


def load_torchvision_weights(net: ASNet, path: str) -> None:
    """ImageNet weights of a torchvision ResNet (its state_dict file) into the backbone."""
    if not os.path.isfile(path):
        raise UserError(f"backbone weights not found: {path}; save torchvision's ImageNet ResNet state_dict "
                        "there, or set pretrained false")
    state = load_file(path, "backbone weights")
    missing, unexpected = net.backbone.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"{path} is not a torchvision ResNet state_dict of this depth: missing "
                        f"{missing[:4]}, unexpected {unexpected[:4]}")


def build(cfg, num_train_classes: int) -> ASNet:
    """ASNet with the config's backbone, supervision and Table 2c switches."""
    net = ASNet(cfg.backbone, weak=cfg.weak, local=cfg.asnet_attention == "local",
                masked_attention=cfg.asnet_masked_attention, fusion=cfg.asnet_fusion, ignore_label=cfg.ignore_label)
    if cfg.pretrained:
        load_torchvision_weights(net, os.path.join(cfg.initmodel_dir, WEIGHT_FILES[cfg.backbone]))
    return net


# FS-CS only; its 3D convolutions (5-D weights) have no channels_last layout
METHOD = Method("asnet", build, network="asnet", fixed={"ifsl": True, "channels_last": "off"})
