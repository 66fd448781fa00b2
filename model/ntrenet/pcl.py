"""Prototypical Contrastive Learning (paper Sec. 3.5.2, eq. 10).

The query target prototype is pulled towards the support prototype and pushed away from
non-target prototypes of the same training class, drawn from a bank of recent episodes:
DO prototypes in the paper (Table 4 also tries BG and whole non-target ones). The bank is
model state (buffers), so it is saved with checkpoints and follows `.to(device)`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.layers.blocks import resize
from model.losses.objective import resize_labels
from model.layers.prototype import masked_average_pooling

NEGATIVES = ("do", "bg", "nontarget")
REGIONS = ("nearest", "bilinear")          # how the label becomes the non-target region at feature size
POSITIVES = ("support_mask", "prototype")  # what P^q is pulled towards


def nontarget_mask(labels: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """Ground-truth non-target region at feature size: labels [N,H,W] (0/1/255) -> [N,h,w] float.

    nearest (released): the nearest-resized label is not 1, so 255 counts as non-target;
    bilinear: label == 0 resized bilinearly (255 excluded, soft at object borders).
    """
    if mode == "nearest":
        return (resize_labels(labels, size) != 1).float()
    return resize((labels == 0).float()[:, None], size)[:, 0]


def support_mask_prototype(xs: Tensor, support_masks: Tensor) -> Tensor:
    """Released PCL positive: each support feature pooled over its nearest-resized mask (255 -> 0),
    averaged over the K shots; xs [B,K,C,h,w], support_masks [B,K,H,W] -> [B,C]."""
    b, k = xs.shape[:2]
    mask = (resize_labels(support_masks.flatten(0, 1), xs.shape[-2:]) == 1).to(xs.dtype)[:, None]  # [BK,1,h,w]
    return masked_average_pooling(xs.flatten(0, 1), mask).view(b, k, -1).mean(dim=1)


def negative_region(kind: str, nontarget: Tensor, bg: Tensor | None) -> Tensor:
    """Mask the negative prototypes are pooled over; nontarget = ground-truth label 0 region.

    do: non-target minus predicted BG (1 - (Y_BG ∪ M), M = ground truth, as released);
    bg: predicted BG within the non-target region; nontarget: the whole non-target region.
    """
    if kind == "nontarget":
        return nontarget
    if bg is None:
        raise ValueError(f"pcl_negatives '{kind}' needs the BG branch")
    return nontarget * (1 - bg) if kind == "do" else nontarget * bg


class PrototypeBank(nn.Module):
    """Per-class ring buffer of the `capacity` newest prototypes (detached)."""

    def __init__(self, *, num_classes: int, capacity: int, dim: int) -> None:
        super().__init__()
        self.num_classes, self.capacity = num_classes, capacity
        self.register_buffer("protos", torch.zeros(num_classes, capacity, dim))       # [C,cap,D]
        self.register_buffer("count", torch.zeros(num_classes, dtype=torch.long))    # filled slots
        self.register_buffer("ptr", torch.zeros(num_classes, dtype=torch.long))      # next write slot

    @torch.no_grad()
    def push(self, protos: Tensor, classes: Tensor) -> None:
        """protos [N,D], classes [N] (index in the training-class list); no Python loop."""
        if classes.numel() == 0:
            return
        onehot = F.one_hot(classes, self.num_classes)                 # [N,C]
        rank = (onehot.cumsum(0) * onehot).sum(1) - 1                  # order within its class
        total = onehot.sum(0)                                          # [C] new per class
        keep = rank >= total[classes] - self.capacity                  # only the newest `capacity`
        slot = (self.ptr[classes] + rank) % self.capacity
        self.protos[classes[keep], slot[keep]] = protos[keep].detach().to(self.protos.dtype)
        self.ptr.copy_((self.ptr + total) % self.capacity)
        self.count.copy_((self.count + total).clamp(max=self.capacity))

    def sample(self, classes: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Up to k stored prototypes of each class, without replacement -> [B,k,D], valid [B,k]."""
        k = min(k, self.capacity)
        scores = torch.rand(classes.shape[0], self.capacity, device=self.protos.device)
        filled = torch.arange(self.capacity, device=classes.device) < self.count[classes, None]
        top, idx = scores.masked_fill(~filled, -1.0).topk(k, dim=1)    # filled slots first, random order
        return self.protos[classes[:, None], idx], top >= 0


def pcl_loss(query: Tensor, positive: Tensor, negatives: Tensor, valid: Tensor,
             temperature: float) -> Tensor:
    """eq. 10: -log(exp(cos(P^q,P^s)/t) / sum_bank exp(cos(P^q,P_neg)/t)), batch mean.

    query, positive [B,D]; negatives [B,k,D]; valid [B,k]. Episodes without any negative
    are left out of the mean (0 if none has one).
    """
    dtype = torch.promote_types(query.dtype, torch.float32)  # fp32 under autocast, like the other losses
    query, positive, negatives = query.to(dtype), positive.to(dtype), negatives.to(dtype)
    pos = F.cosine_similarity(query, positive, dim=-1) / temperature                          # [B]
    neg = F.cosine_similarity(query[:, None], negatives, dim=-1) / temperature                # [B,k]
    has = valid.any(dim=1)                                                                     # [B]
    neg = neg.masked_fill(~valid, float("-inf")).masked_fill(~has[:, None], 0.0)  # finite rows only
    loss = torch.where(has, torch.logsumexp(neg, dim=1) - pos, torch.zeros_like(pos))
    return loss.sum() / has.sum().clamp(min=1)


class PCL(nn.Module):
    """The DO-prototype bank and the PCL loss.

    region 'nearest' stores every image's negative prototype, an empty region's as the zero
    vector (cosine 0), as released; 'bilinear' stores only non-empty regions.
    """

    def __init__(self, *, num_classes: int, dim: int, bank_size: int = 2000, samples: int = 1000,
                 temperature: float = 1.0, negatives: str = "do", region: str = "nearest",
                 positive: str = "support_mask") -> None:
        super().__init__()
        for key, value, allowed in (("pcl_negatives", negatives, NEGATIVES), ("pcl_negative_region", region, REGIONS),
                                    ("pcl_positive", positive, POSITIVES)):
            if value not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got '{value}'")
        self.samples, self.temperature, self.negatives = samples, temperature, negatives
        self.region, self.positive = region, positive
        self.bank = PrototypeBank(num_classes=num_classes, capacity=bank_size, dim=dim)

    def forward(self, query: Tensor, positive: Tensor, new_negatives: Tensor, new_classes: Tensor,
                classes: Tensor) -> Tensor:
        """query, positive [B,D]; new_negatives [N,D] with classes [N]; classes [B] -> loss."""
        self.bank.push(new_negatives, new_classes)  # released: bank updated before the loss
        negatives, valid = self.bank.sample(classes, self.samples)
        return pcl_loss(query, positive, negatives, valid, self.temperature)
