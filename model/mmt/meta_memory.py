"""Meta-memory transfer ("Remember the Difference: Cross-Domain Few-Shot Semantic Segmentation via
Meta-Memory Transfer", CVPR 2022), as a module any method applies to its backbone features.

The meta memory holds N mean slots m_j and N variance slots e_j ([N, C]): the channel
statistics (style) of the source domain. Training updates them by momentum from the batch's
statistics weighted by their similarity to each slot, and keeps the slots apart with L_orth.
Memory-based enhancement re-styles a feature with a mix of its own statistics and the
memory's: f_enh = f_norm * v_mix + mu_mix. The enhanced view gives the positive pairs of the
contrastive loss L_cont; L_pro scores the query against the support prototypes. Choices the
paper leaves open are listed in docs/cross_domain.md ("Meta-memory transfer").
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from model.layers.prototype import masked_average_pooling

STAT_EPS = 1e-5      # under the square root of the variance (as instance normalisation)
PROTO_SCALE = 10.0   # cosine -> logit scale of L_pro's prototype classifier


def channel_stats(feat: Tensor, eps: float = STAT_EPS) -> tuple[Tensor, Tensor]:
    """Per-instance channel mean mu_b and standard deviation v_b over space: [B,C,h,w] -> 2 x [B,C]."""
    mu = feat.mean(dim=(2, 3))
    v = (feat.var(dim=(2, 3), unbiased=False) + eps).sqrt()
    return mu, v


def slot_weights(slots: Tensor, stats: Tensor, temperature: float) -> Tensor:
    """s^{jb}: softmax over the batch of cos(slot j, instance b) / T, [N, B]; each slot's
    update is a similarity-weighted mean of the batch's statistics."""
    sim = F.normalize(slots, dim=1) @ F.normalize(stats, dim=1).t()
    return torch.softmax(sim / temperature, dim=1)


def read_memory(slots: Tensor, stats: Tensor, temperature: float) -> Tensor:
    """The memory's statistic for each instance: softmax over the slots of cos / T, [B, C]."""
    sim = F.normalize(stats, dim=1) @ F.normalize(slots, dim=1).t()        # [B, N]
    return torch.softmax(sim / temperature, dim=1) @ slots


def orthogonality_loss(means: Tensor, variances: Tensor) -> Tensor:
    """L_orth = (sum_ij h_M^ij + sum_ij h_E^ij) / (2 N^2), h^ij = |cos(slot i, slot j)| for i != j, 0 on the diagonal."""
    n = means.shape[0]

    def h(slots: Tensor) -> Tensor:
        unit = F.normalize(slots, dim=1)
        return ((unit @ unit.t()) * (1 - torch.eye(n, device=slots.device, dtype=slots.dtype))).abs().sum()

    return (h(means) + h(variances)) / (2 * n * n)


def enhance(feat: Tensor, mu_memory: Tensor, v_memory: Tensor, alpha: float, eps: float = STAT_EPS) -> Tensor:
    """f_enh = (f - mu_b) / v_b * v_mix + mu_mix with mu_mix = alpha mu_b + (1 - alpha) mu_M (v alike)."""
    mu, v = channel_stats(feat, eps)
    mu_mix = alpha * mu + (1 - alpha) * mu_memory
    v_mix = alpha * v + (1 - alpha) * v_memory
    return (feat - mu[..., None, None]) / v[..., None, None] * v_mix[..., None, None] + mu_mix[..., None, None]


def contrastive_loss(anchors: Tensor, positives: Tensor, temperature: float) -> Tensor:
    """L_cont = 1/(2|B|) sum_i -log pos(i) / (pos(i) + neg(i)) over the 2|B| views (original and
    enhanced prototype of each episode's target): pos(i) = exp(cos(view, its other view) / T),
    neg(i) = the sum over the other episodes' views."""
    z = F.normalize(torch.cat([anchors, positives]), dim=1)                 # [2B, C]
    b = anchors.shape[0]
    logits = z @ z.t() / temperature
    logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    partner = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)
    return F.cross_entropy(logits, partner)


def prototype_loss(query: Tensor, supports: Tensor, support_masks: Tensor, query_mask: Tensor,
                   ignore_label: int = 255, scale: float = PROTO_SCALE) -> Tensor:
    """L_pro: cross-entropy of the query pixels against R(f_q, p): softmax over the background
    and target prototypes p (K-shot means) of scale * cosine. query [B,C,h,w], supports
    [B,K,C,h,w], support_masks [B,K,h,w] in [0,1], query_mask [B,h,w] (0/1/ignore)."""
    b, k = supports.shape[:2]
    flat, masks = supports.flatten(0, 1), support_masks.flatten(0, 1)[:, None]
    fg = masked_average_pooling(flat, masks).unflatten(0, (b, k)).mean(dim=1)       # [B,C,1,1]
    bg = masked_average_pooling(flat, 1 - masks).unflatten(0, (b, k)).mean(dim=1)
    protos = F.normalize(torch.cat([bg, fg], dim=2)[..., 0], dim=1)                 # [B,C,2]
    logits = scale * torch.einsum("bchw,bcp->bphw", F.normalize(query, dim=1), protos)
    return F.cross_entropy(logits, query_mask.long(), ignore_index=ignore_label)


class MetaMemory(nn.Module):
    """The meta memory bank of one feature layer and its enhancement; slots are parameters
    (L_orth trains them) that training also moves by momentum towards the source statistics."""

    def __init__(self, channels: int, slots: int = 8, momentum: float = 0.9, alpha: float = 0.5,
                 temperature: float = 0.1) -> None:
        super().__init__()
        self.means = nn.Parameter(torch.randn(slots, channels))
        self.variances = nn.Parameter(torch.rand(slots, channels) + 0.5)
        self.momentum, self.alpha, self.temperature = momentum, alpha, temperature

    @torch.no_grad()
    def update(self, feat: Tensor) -> None:
        """m_j <- lambda m_j + (1 - lambda) sum_b s_M^{jb} mu_b, e_j alike with v_b. Called before
        the slots enter this step's graph (an in-place change afterwards would void its backward)."""
        mu, v = channel_stats(feat.float())
        for slots, stats in ((self.means, mu), (self.variances, v)):
            pulled = slot_weights(slots.float(), stats, self.temperature) @ stats  # [N, C]
            if dist.is_available() and dist.is_initialized():  # every process keeps the same memory
                dist.all_reduce(pulled)
                pulled /= dist.get_world_size()
            slots.mul_(self.momentum).add_((1 - self.momentum) * pulled.to(slots.dtype))

    def forward(self, feat: Tensor) -> Tensor:
        """The memory-enhanced feature (same shape)."""
        mu, v = channel_stats(feat)
        return enhance(feat, read_memory(self.means, mu, self.temperature),
                       read_memory(self.variances, v, self.temperature), self.alpha)

    def orthogonality(self) -> Tensor:
        return orthogonality_loss(self.means, self.variances)


class MetaMemoryTransfer(nn.Module):
    """MMT around any method's mid-level features, with the paper's ablation switches:
    `contrast` (Cons: L_cont), `enhance_train` (MEnS: the method trains on enhanced source
    features) and `enhance_test` (MEnT: it tests on enhanced target features)."""

    def __init__(self, channels: int, *, slots: int = 8, momentum: float = 0.9, alpha: float = 0.5,
                 temperature: float = 0.1, contrast: bool = True, enhance_train: bool = True,
                 enhance_test: bool = True, weight: float = 1.0) -> None:
        super().__init__()
        self.memory = MetaMemory(channels, slots, momentum, alpha, temperature)
        self.contrast, self.enhance_train, self.enhance_test = contrast, enhance_train, enhance_test
        self.weight = weight  # of L_orth + L_cont + L_pro in the method's total

    def views(self, query: Tensor, supports: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """(query, supports) the method goes on with, and the query view it does not use (the
        other side of L_cont's positive pair; None in eval mode). query [B,C,h,w], supports [B,K,C,h,w].
        Training first updates the memory with the statistics of the query and every support."""
        if not self.training:
            if not self.enhance_test:
                return query, supports, None
            return self.memory(query), self.memory(supports.flatten(0, 1)).view_as(supports), None
        self.memory.update(torch.cat([query, supports.flatten(0, 1)]))
        enhanced_query = self.memory(query)
        if not self.enhance_train:
            return query, supports, enhanced_query
        return enhanced_query, self.memory(supports.flatten(0, 1)).view_as(supports), query

    def losses(self, query: Tensor, other_query: Tensor, supports: Tensor, support_masks: Tensor,
               query_mask: Tensor, ignore_label: int = 255) -> dict[str, Tensor]:
        """L_orth, L_cont (Cons on) and L_pro on the method's features at size h x w: query and
        other_query [B,C,h,w] (the two views, reduced alike), supports [B,K,C,h,w], masks at h x w."""
        target = (query_mask == 1).to(query.dtype)[:, None]
        orth = self.memory.orthogonality()
        cont = query.new_zeros(())
        if self.contrast:
            cont = contrastive_loss(masked_average_pooling(query, target).flatten(1),
                                    masked_average_pooling(other_query, target).flatten(1), self.memory.temperature)
        pro = prototype_loss(query, supports, support_masks, query_mask, ignore_label)
        return {"mmt_orth": orth, "mmt_cont": cont, "mmt_pro": pro, "mmt": orth + cont + pro}
