"""The iFSL head ("Integrative Few-Shot Learning for Classification and Segmentation", Sec. 3):
from N per-way foreground maps Y^(n) to class presence and an (N+1)-class segmentation.

Per-way maps are log-probabilities [B, N, 2, H, W] (channel 0: not class n, channel 1: class n).
- segmentation: Y_S = [Y_bg || Y^(1..N)], with the background taken as the mean over the ways of
  the channel-0 log-probabilities (the released code averages log(1 - Y^(n)); the paper writes
  the mean of 1 - Y^(n) in probabilities); argmax over N+1 classes.
- presence: class n is present when max_p Y^(n)(p) >= 0.5 (max pooling of the foreground map).
- L_S: cross-entropy of Y_S against the (N+1)-class label (strong labels, masks).
- L_C: cross-entropy of the spatially mean-pooled per-way map against the class tags (weak
  labels); the release pools the log-probabilities, which is what is done here.

`IFSLHead` wraps any registered method's binary network: its eval forward gives Y^(n) way by way
(ways are batched), its training forward (1-way, as in iFSL) keeps the method's own losses, whose
main term is L_S for one way (the background of one way is that way's channel 0).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PRESENCE_THRESHOLD = math.log(0.5)


def merge_background(fg: Tensor) -> Tensor:
    """[B, N, 2, H, W] per-way log-probabilities -> [B, N+1, H, W] scores (0: background)."""
    return torch.cat([fg[:, :, 0].mean(dim=1, keepdim=True), fg[:, :, 1]], dim=1)


def class_presence(fg: Tensor) -> Tensor:
    """[B, N] bool: the foreground map of way n reaches probability 0.5 somewhere."""
    return fg[:, :, 1].flatten(2).max(dim=2).values >= PRESENCE_THRESHOLD


def segmentation_loss(fg: Tensor, target: Tensor, ignore: int = 255) -> Tensor:
    """L_S: NLL of the merged (N+1)-class log-scores at the label's size (target [B, H, W], 0..N)."""
    merged = merge_background(fg)
    if merged.shape[-2:] != target.shape[-2:]:
        merged = F.interpolate(merged, target.shape[-2:], mode="bilinear", align_corners=True)
    return F.nll_loss(merged, target.long(), ignore_index=ignore)


def classification_loss(fg: Tensor, presence: Tensor) -> Tensor:
    """L_C: NLL of the mean-pooled per-way log-probabilities [B*N, 2] against the tags [B, N]."""
    return F.nll_loss(fg.mean(dim=(-1, -2)).flatten(0, 1), presence.long().flatten())


def fscs_predict(fg: Tensor) -> tuple[Tensor, Tensor]:
    """(presence [B, N] bool, merged scores [B, N+1, H, W]) of per-way log-probabilities."""
    return class_presence(fg), merge_background(fg)


def check_episode(query: Tensor, supports: Tensor, support_masks: Tensor) -> None:
    """FS-CS input shapes: query [B,3,H,W], supports [B,N,K,3,H,W], support_masks [B,N,K,H,W]."""
    if query.dim() != 4 or supports.dim() != 6 or support_masks.dim() != 5 \
            or supports.shape[:3] != support_masks.shape[:3] or supports.shape[0] != query.shape[0]:
        raise ValueError("FS-CS expects query [B,3,H,W], supports [B,N,K,3,H,W], support_masks [B,N,K,H,W]; got "
                         f"{tuple(query.shape)}, {tuple(supports.shape)}, {tuple(support_masks.shape)}")


def _strip_prefix(module: nn.Module, state: dict, prefix: str, local_metadata: dict) -> None:
    for key in [k for k in state if k.startswith(prefix + "net.")]:
        state[prefix + key[len(prefix) + 4:]] = state.pop(key)


def _add_prefix(module: nn.Module, state: dict, prefix: str, *args) -> None:
    for key in [k for k in state if k.startswith(prefix) and not k.startswith(prefix + "net.")]:
        state[prefix + "net." + key[len(prefix):]] = state.pop(key)


def way_mask(query_mask: Tensor, way: int, ignore: int = 255) -> Tensor:
    """(N+1)-class label -> the binary label of way `way` (1-based), ignore kept."""
    out = (query_mask == way).to(query_mask.dtype)
    return torch.where(query_mask == ignore, query_mask, out)


class IFSLHead(nn.Module):
    """A registered binary method turned FS-CS learner (the `ifsl` key).

    Eval: `net(query, supports [B,N,K,3,H,W], support_masks [B,N,K,H,W])` -> per-way
    log-probabilities [B, N, 2, H, W]. Training (1-way): with `query_mask` [B,H,W] over 0..1
    (+ignore) and `classes` [B,1] -> (log-probabilities [B,1,2,H,W], the method's losses).
    """

    fscs = True

    def __init__(self, net: nn.Module, ignore_label: int = 255):
        super().__init__()
        self.net, self.ignore = net, ignore_label
        # The state dict is the wrapped method's (no 'net.' prefix): its checkpoints, converters and
        # released weights load into the wrapped network unchanged, and back.
        self._register_state_dict_hook(_strip_prefix)
        self.register_load_state_dict_pre_hook(_add_prefix)

    def forward(self, query: Tensor, supports: Tensor, support_masks: Tensor, query_mask: Tensor | None = None,
                classes: Tensor | None = None, presence: Tensor | None = None):
        check_episode(query, supports, support_masks)
        b, n = supports.shape[:2]
        if self.training:
            if n != 1:
                raise ValueError(f"iFSL trains 1-way episodes, got {n} ways")
            target = None if query_mask is None else way_mask(query_mask, 1, self.ignore)
            logits, losses = self.net(query, supports[:, 0], support_masks[:, 0], query_mask=target,
                                      classes=None if classes is None else classes[:, 0])
            return F.log_softmax(logits, dim=1)[:, None], losses
        logits = self.net(query.repeat_interleave(n, dim=0), supports.flatten(0, 1), support_masks.flatten(0, 1))
        return F.log_softmax(logits, dim=1).unflatten(0, (b, n))
