"""SCNet's class-agnostic, training-only branch (SCNet, Chen et al. 2021, Sec. 3.2.2, eq. 4-9).

Background prototypes come from the query itself: k-means (cosine) on the query's high-level
(layer4) features splits it into n clusters (eq. 4); each cluster minus the ground-truth
foreground is a background region (eq. 5); masked average pooling over it gives the region's
prototype (eq. 6); the expanded prototype map puts every region's own prototype on its pixels
and one randomly chosen background prototype on the foreground (eq. 7). NTRENet feeds that
map to the same comparison head as the support prototype (eq. 8) and trains it against
1 - M^q (L2 of eq. 9). The branch has no parameters and never runs at inference.

Choices the paper leaves open (docs/scnet.md, "Paper vs code"):
- prior channel of the head's input in this branch (`prior`): 'region' (default) = PFENet's
  prior with the paired region in place of the support: cosine similarity of each pixel's
  layer4 feature to the layer4 mean of the region whose prototype it is paired with, min-max
  normalised per image (the mean, not PFENet's max over pixels: every pixel would find
  itself, giving 1 on the whole background); 'zeros'; 'support' = the support branch's C_p.
- ignored (255) pixels leave every region like the foreground (eq. 5) and are paired with the
  random prototype; they are ignored by the loss.
- an empty region (cluster inside the foreground, or a cluster k-means left empty) has no
  prototype: no pixel is paired with it and the random choice skips it; an image without any
  background pixel is left out of L2 (all its target pixels are 255).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from model.layers.blocks import resize
from model.scnet.kmeans import ITERATIONS, kmeans_cosine
from model.layers.prior import COSINE_EPS
from model.layers.prototype import AREA_EPS

PRIORS = ("region", "zeros", "support")


@dataclass
class QueryEpisode:
    """What the shared head needs for the query branch, at feature size (h, w)."""
    protos: Tensor   # [B,C,h,w] E^q(p^q) of eq. 7
    prior: Tensor    # [B,1,h,w] prior-mask channel
    target: Tensor   # [B,H,W] long: 1 - M^q (255 kept; all 255 for an image without background)


def background_regions(assign: Tensor, n: int, background: Tensor) -> Tensor:
    """eq. 5, M̄_k <- M̄_k - M̄_k ∩ M^q: assign [B,h,w] long, background [B,1,h,w] in [0,1] -> [B,n,h,w]."""
    onehot = F.one_hot(assign, n).permute(0, 3, 1, 2).to(background.dtype)   # [B,n,h,w] M̄_k
    return onehot * background   # foreground (and ignored) pixels leave every cluster


def region_prototypes(feat: Tensor, regions: Tensor) -> Tensor:
    """eq. 6, MAP per region: feat [B,C,h,w], regions [B,n,h,w] -> [B,n,C] (zero for an empty region)."""
    sums = torch.einsum("bchw,bnhw->bnc", feat, regions)
    return sums / (regions.sum(dim=(2, 3))[..., None] + AREA_EPS)


def pick_foreground_prototype(nonempty: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Fig. 4's white square: per image one region index, uniform over the non-empty ones; [B,n] bool -> [B].

    Draws from `generator`, or the global RNG (seeded per epoch by train.py, saved by checkpoints).
    """
    scores = torch.rand(nonempty.shape, generator=generator, device=nonempty.device)   # [B,n]
    return scores.masked_fill(~nonempty, -1.0).argmax(dim=1)


def pairing(assign: Tensor, background: Tensor, chosen: Tensor) -> Tensor:
    """Region whose prototype each pixel meets in eq. 7: its own cluster on background pixels
    (background weight >= 0.5, so that region is non-empty), `chosen` [B] elsewhere; -> [B,h,w]."""
    return torch.where(background[:, 0] >= 0.5, assign, chosen[:, None, None].expand_as(assign))


def expand(protos: Tensor, index: Tensor) -> Tensor:
    """E^q of eq. 7: protos [B,n,C], index [B,h,w] -> [B,C,h,w] with protos[b, index[b,y,x]] at (y,x)."""
    b, _, c = protos.shape
    picked = torch.gather(protos, 1, index.flatten(1)[..., None].expand(-1, -1, c))   # [B,hw,C]
    return picked.transpose(1, 2).reshape(b, c, *index.shape[1:])


def region_prior(high: Tensor, regions: Tensor, index: Tensor) -> Tensor:
    """'region' prior: cos(layer4 pixel, layer4 MAP of its paired region), min-max per image; -> [B,1,h,w]."""
    centres = expand(region_prototypes(high, regions), index)                          # [B,Ch,h,w]
    sim = F.cosine_similarity(high, centres, dim=1, eps=COSINE_EPS).flatten(1)         # [B,hw]
    lo, hi = sim.amin(dim=1, keepdim=True), sim.amax(dim=1, keepdim=True)
    return ((sim - lo) / (hi - lo + COSINE_EPS)).view(high.shape[0], 1, *high.shape[-2:])


class SelfContrastBranch:
    """Builds the query branch's input (eq. 4-7); a plain object: no parameters, no buffers."""

    def __init__(self, *, clusters: int = 3, iterations: int = ITERATIONS, prior: str = "region",
                 ignore_label: int = 255) -> None:
        if clusters < 1:
            raise ValueError(f"scnet_clusters must be >= 1, got {clusters}")
        if prior not in PRIORS:
            raise ValueError(f"scnet_prior must be one of {PRIORS}, got '{prior}'")
        self.clusters, self.iterations, self.prior, self.ignore_label = clusters, iterations, prior, ignore_label

    def episode(self, query_high: Tensor, proto_feat: Tensor, support_prior: Tensor, query_mask: Tensor,
                generator: torch.Generator | None = None) -> QueryEpisode:
        """query_high [B,Ch,h,w] (layer4), proto_feat [B,C,h,w] (reduced mid-level query feature the
        prototypes are pooled from), support_prior [B,1,h,w] C_p, query_mask [B,H,W] 0/1/255."""
        b, _, h, w = query_high.shape
        background = resize((query_mask == 0).to(proto_feat.dtype)[:, None], (h, w))     # [B,1,h,w]
        assign = kmeans_cosine(query_high.flatten(2).transpose(1, 2), self.clusters,
                               self.iterations)[0].view(b, h, w)                          # eq. 4
        regions = background_regions(assign, self.clusters, background)                  # eq. 5
        nonempty = regions.sum(dim=(2, 3)) > 0                                           # [B,n]
        index = pairing(assign, background, pick_foreground_prototype(nonempty, generator))
        protos = expand(region_prototypes(proto_feat, regions), index)                   # eq. 6-7
        return QueryEpisode(protos, self._prior(query_high, regions, index, support_prior),
                            self._target(query_mask, nonempty.any(dim=1)))

    def _prior(self, high: Tensor, regions: Tensor, index: Tensor, support_prior: Tensor) -> Tensor:
        if self.prior == "support":
            return support_prior
        if self.prior == "zeros":
            return torch.zeros_like(support_prior)
        with torch.no_grad():   # training-free, like PFENet's prior
            return region_prior(high, regions, index).to(support_prior.dtype)

    def _target(self, query_mask: Tensor, has_background: Tensor) -> Tensor:
        """eq. 9's 1 - M^q; ignored pixels and images without a background region -> ignore_label."""
        target = torch.where(query_mask == 1, 0, 1)
        ignored = (query_mask == self.ignore_label) | ~has_background[:, None, None]
        return target.masked_fill(ignored, self.ignore_label).long()
