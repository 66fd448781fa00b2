"""ASNet, the attentive squeeze network ("Integrative Few-Shot Learning for Classification and
Segmentation", Sec. 4): an FS-CS learner (docs/fscs.md).

Frozen torchvision ResNet -> hypercorrelation of stages 4, 3, 2 (model/fscs/hypercorrelation.py) ->
attentive squeeze of each stage's support dimensions (model/fscs/attentive_squeeze.py) -> fusion
4 -> 3 -> 2 (the deeper stage averaged over its support positions, resized to the next query
size and added, then squeezed again) -> a 2D decoder -> per-way maps Y^(n), which the iFSL
head (model/fscs/ifsl.py) turns into presence and an (N+1)-class segmentation.

Supports are resized to SUPPORT_SIZE (the release's input size) before the backbone: the
squeeze strides are sized for it and end on a single support position. Parameter names are the
released model's (`backbone.` torchvision ResNet, `learner.`), so its checkpoints load strictly.
Table 2c ablations: `local` attention, `masked_attention` off, `fusion` off (the three squeezed
stages averaged over their support positions and summed at the stage-2 query size).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.fscs.attentive_squeeze import run_block, squeeze_block
from model.fscs.learner import FrozenResNetLearner, decode, decoder_layers, load_pretrained
from model.fscs.hypercorrelation import hypercorrelation, resize_query_dims, stage_features
from model.method import Method

SUPPORT_SIZE = 400
POOL_FROM = 50  # support feature maps at least this wide are pooled before correlation


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
        self.decoder1, self.decoder2 = decoder_layers()

    def forward(self, corrs: list[Tensor], support_mask: Tensor | None) -> Tensor:
        """corrs: stages 4, 3, 2 [B', L, Hq, Wq, Hs, Ws]; -> logits [B', 2, 2 Hq2, 2 Wq2]."""
        s4, s3, s2 = (run_block(block, c, support_mask) for block, c in
                      zip((self.encoder_layer4, self.encoder_layer3, self.encoder_layer2), corrs))
        size3, size2 = s3.shape[2:4], s2.shape[2:4]
        if self.fusion:
            mix = resize_query_dims(s4.mean(dim=(-1, -2), keepdim=True), size3) + s3
            mix = run_block(self.encoder_layer4to3, mix, support_mask)
            mix = run_block(self.encoder_layer3to2, resize_query_dims(mix, size2) + s2, support_mask)
        else:
            mix = sum(resize_query_dims(s.mean(dim=(-1, -2), keepdim=True), size2) for s in (s4, s3, s2))
        if mix.shape[-2:] != (1, 1):
            raise ValueError(f"ASNet squeezes the support dimensions to 1x1, got {tuple(mix.shape[-2:])}: "
                             f"supports must be {SUPPORT_SIZE} px")
        return decode(self.decoder1, self.decoder2, mix[..., 0, 0])


class ASNet(FrozenResNetLearner):
    """ASNet on a frozen ResNet (model/fscs/learner.py: inputs, K shots, losses); `maps` runs
    the attention learner on one shot per way."""

    def __init__(self, backbone: str = "resnet50", *, weak: bool = False, local: bool = False,
                 masked_attention: bool = True, fusion: bool = True, ignore_label: int = 255):
        super().__init__("asnet", backbone, weak=weak, ignore_label=ignore_label)
        depths = self.depths
        self.learner = AttentionLearner((depths[3], depths[2], depths[1]), local=local, fusion=fusion)
        self.masked = masked_attention

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


def build(cfg, num_train_classes: int) -> ASNet:
    """ASNet with the config's backbone, supervision and Table 2c switches."""
    net = ASNet(cfg.backbone, weak=cfg.weak, local=cfg.asnet_attention == "local",
                masked_attention=cfg.asnet_masked_attention, fusion=cfg.asnet_fusion, ignore_label=cfg.ignore_label)
    return load_pretrained(net, cfg)


# FS-CS only; its 3D convolutions (5-D weights) have no channels_last layout
METHOD = Method("asnet", build, network="asnet", fixed={"ifsl": True, "channels_last": "off"})
