"""What the iFSL release's FS-CS learners (ASNet, HSNet; "Integrative Few-Shot Learning for
Classification and Segmentation") share around their correlation learner: a frozen torchvision
ResNet (BN statistics included), per-way maps turned into log-probabilities resized to the
query, K shots averaged, and the L_S / L_C losses of the iFSL head (model/fscs/ifsl.py).

A subclass provides `maps` (one shot per way -> 2-channel logits). The backbone is a plain
torchvision ResNet under the name `backbone.` (its unused `fc` included), as in the release, so
the release's checkpoints load strictly; its ImageNet weights are torchvision's state dict.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import resnet50, resnet101

from model.errors import UserError
from model.fscs.ifsl import check_episode, classification_loss, segmentation_loss
from model.checkpoints.safe_load import load_file, refuse_nonfinite

RESNETS = {"resnet50": (resnet50, (3, 4, 6, 3)), "resnet101": (resnet101, (3, 4, 23, 3))}
WEIGHT_FILES = {"resnet50": "resnet50_torchvision.pth", "resnet101": "resnet101_torchvision.pth"}


class FrozenResNetLearner(nn.Module):
    """FS-CS learner. `net(query [B,3,H,W], supports [B,N,K,3,H,W], support_masks [B,N,K,H,W])`
    -> per-way log-probabilities [B, N, 2, H, W] (K shots: the release's average of the shots'
    maps). Training (1-way): with `query_mask` [B,H,W] (strong) or `presence` [B,1] (weak)
    -> (maps, {'total', 'seg' or 'cls'})."""

    fscs = True

    def __init__(self, method: str, backbone: str = "resnet50", *, weak: bool = False, ignore_label: int = 255):
        super().__init__()
        if backbone not in RESNETS:
            raise UserError(f"model {method} needs backbone resnet50 or resnet101, got '{backbone}'")
        make, self.depths = RESNETS[backbone]
        self.backbone = make(weights=None)
        for p in self.backbone.parameters():
            p.requires_grad = False
        self.weak, self.ignore = weak, ignore_label

    def train(self, mode: bool = True) -> "FrozenResNetLearner":
        super().train(mode)
        self.backbone.eval()  # frozen, BN statistics included
        return self

    def maps(self, query: Tensor, supports: Tensor, support_masks: Tensor | None) -> Tensor:
        """One shot per way: supports [B,N,3,H,W], masks [B,N,H,W] -> logits [B,N,2,h,w]."""
        raise NotImplementedError

    def forward(self, query: Tensor, supports: Tensor, support_masks: Tensor, query_mask: Tensor | None = None,
                classes: Tensor | None = None, presence: Tensor | None = None):
        check_episode(query, supports, support_masks)
        size = query.shape[-2:]
        shots = [self.maps(query, supports[:, :, k], support_masks[:, :, k]) for k in range(supports.shape[2])]
        logp = torch.stack([F.log_softmax(x, dim=2) for x in shots]).mean(dim=0)      # [B,N,2,h,w]
        logp = F.interpolate(logp.flatten(1, 2), size, mode="bilinear", align_corners=True).unflatten(1, (-1, 2))
        if not self.training:
            return logp
        name = type(self).__name__
        if self.weak:
            if presence is None:
                raise ValueError(f"weak {name} training needs presence [B, N] (class tags)")
            loss = classification_loss(logp, presence)
            return logp, {"total": loss, "cls": loss}
        if query_mask is None:
            raise ValueError(f"{name} training needs query_mask [B,H,W] (0..N, ignore)")
        loss = segmentation_loss(logp, query_mask, self.ignore)
        return logp, {"total": loss, "seg": loss}


def load_torchvision_weights(net: FrozenResNetLearner, path: str) -> None:
    """ImageNet weights of a torchvision ResNet (its state_dict file) into the backbone."""
    if not os.path.isfile(path):
        raise UserError(f"backbone weights not found: {path}; save torchvision's ImageNet ResNet state_dict "
                        "there, or set pretrained false")
    state = load_file(path, "backbone weights")
    refuse_nonfinite(state if isinstance(state, dict) else {}, path)
    missing, unexpected = net.backbone.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"{path} is not a torchvision ResNet state_dict of this depth: missing "
                        f"{missing[:4]}, unexpected {unexpected[:4]}")


def load_pretrained(net: FrozenResNetLearner, cfg) -> FrozenResNetLearner:
    """With `pretrained true`: torchvision's ImageNet weights from `<initmodel_dir>/<WEIGHT_FILES>`."""
    if cfg.pretrained:
        load_torchvision_weights(net, os.path.join(cfg.initmodel_dir, WEIGHT_FILES[cfg.backbone]))
    return net


def decoder_layers() -> tuple[nn.Sequential, nn.Sequential]:
    """(decoder1, decoder2): the 2D decoder both releases put after the squeezed correlation
    ([B', 128, h, w] -> 2 channels at 2h x 2w); the learners hold them under these names."""
    return (nn.Sequential(nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(), nn.Conv2d(128, 64, 3, padding=1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 2, 3, padding=1)))


def decode(decoder1: nn.Module, decoder2: nn.Module, x: Tensor) -> Tensor:
    """decoder1, x2 bilinear upsampling (align_corners), decoder2."""
    x = decoder1(x)
    x = F.interpolate(x, (x.shape[-2] * 2, x.shape[-1] * 2), mode="bilinear", align_corners=True)
    return decoder2(x)
