"""The prior extractor F_p and its global-local contrastive pre-training ("Few-Shot Segmentation
with Global and Local Contrastive Learning", Sec. IV-A, eq. 1, 6, 7; MoCo's momentum encoder
and queues, "Momentum contrast for unsupervised visual representation learning").

F_p is an encoder of the segmentation backbone's architecture, trained without labels: the
query encoder sees view 1, a momentum copy sees view 2; the global term compares the views'
pooled layer4 embeddings (eq. 1), the local term the embeddings of patches seen in both views
(eq. 6); each term has its own projection head and queue of earlier keys. After pre-training,
only the query encoder's weights are used (`load_prior_encoder`, model/qgnet/prior_region.py).
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from model.backbones.encoder import Backbone
from model.qgnet.contrastive import combined_loss, global_contrastive_loss, local_contrastive_loss, patch_embeddings
from model.errors import UserError
from model.checkpoints.safe_load import load_file, refuse_nonfinite

PRIOR_FORMAT = "qgnet-prior-extractor-v1"
# Pre-training keys a QGNet run names as its variant: they must match the checkpoint it loads.
RECORDED_KEYS = ("backbone", "prior_global", "prior_local", "prior_patches", "prior_epochs")


def projection_head(channels: int, dim: int) -> nn.Sequential:
    """MoCo v2's MLP head: Linear(C, C), ReLU, Linear(C, dim)."""
    return nn.Sequential(nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, dim))


def choose_patches(patches1: Tensor, patches2: Tensor, per_image: int, generator: torch.Generator | None = None
                   ) -> Tensor:
    """Patches visible in both views: patch maps [B,H,W] (ids >= 0, -1 = none) -> [N,2] rows
    (image, patch id), at most `per_image` per image, drawn uniformly without replacement."""
    rows = []
    for b in range(patches1.shape[0]):
        ids1, ids2 = patches1[b].unique(), patches2[b].unique()
        both = ids1[torch.isin(ids1, ids2) & (ids1 >= 0)]
        if len(both) > per_image:
            both = both[torch.randperm(len(both), generator=generator)[:per_image]].sort().values
        rows.append(torch.stack([torch.full_like(both, b), both], dim=1))
    return torch.cat(rows) if rows else patches1.new_zeros(0, 2)


class Queue(nn.Module):
    """MoCo's dynamic dictionary: `size` unit keys, the oldest replaced first (buffers, so they are saved)."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("keys", nn.functional.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: Tensor) -> None:
        n, size = keys.shape[0], self.keys.shape[0]
        if n == 0:
            return
        keys = keys[-size:]
        idx = (self.ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.keys[idx] = keys.detach().to(self.keys.dtype)
        self.ptr.copy_((self.ptr + keys.shape[0]) % size)


class PriorExtractor(nn.Module):
    """Query encoder + heads (trained), momentum key encoder + heads, global and local queues."""

    def __init__(self, encoder: Backbone, *, dim: int = 128, queue_size: int = 65536, temperature: float = 0.2,
                 key_momentum: float = 0.999, use_global: bool = True, use_local: bool = True,
                 patches_per_image: int = 8) -> None:
        super().__init__()
        if not (use_global or use_local):
            raise ValueError("the prior extractor needs the global or the local contrastive loss (or both)")
        c = encoder.high_channels
        self.encoder = encoder
        for p in self.encoder.parameters():
            p.requires_grad_(True)
        self.global_head, self.local_head = projection_head(c, dim), projection_head(c, dim)
        self.key_encoder = copy.deepcopy(encoder)
        self.key_global_head, self.key_local_head = copy.deepcopy(self.global_head), copy.deepcopy(self.local_head)
        for p in self._key_params():
            p.requires_grad_(False)
        self.global_queue, self.local_queue = Queue(queue_size, dim), Queue(queue_size, dim)
        self.temperature, self.key_momentum = temperature, key_momentum
        self.use_global, self.use_local, self.patches_per_image = use_global, use_local, patches_per_image

    def _pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.encoder, self.key_encoder), (self.global_head, self.key_global_head),
                (self.local_head, self.key_local_head)]

    def _key_params(self):
        for _, key in self._pairs():
            yield from key.parameters()

    @torch.no_grad()
    def momentum_update(self) -> None:
        """key = m * key + (1 - m) * query, for every parameter (BN statistics follow their own batches)."""
        m = self.key_momentum
        for query, key in self._pairs():
            for pq, pk in zip(query.parameters(), key.parameters()):
                pk.mul_(m).add_(pq.detach(), alpha=1 - m)

    def forward(self, view1: Tensor, view2: Tensor, patches1: Tensor, patches2: Tensor,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """views [B,3,S,S], patch maps [B,S,S] -> {"global", "local", "total"} (eq. 1, 6, 7); pushes the keys."""
        feats = self.encoder.encode(view1)                                             # [B,C,h,w]
        query = self.global_head(feats.mean(dim=(2, 3)))                               # [B,D]
        pairs = choose_patches(patches1, patches2, self.patches_per_image, generator)  # [N,2]
        query_p = self.local_head(patch_embeddings(feats, patches1, pairs))            # [N,D]
        with torch.no_grad():
            self.momentum_update()
            key_feats = self.key_encoder.encode(view2)
            key = nn.functional.normalize(self.key_global_head(key_feats.mean(dim=(2, 3))), dim=1)
            key_p = nn.functional.normalize(self.key_local_head(patch_embeddings(key_feats, patches2, pairs)), dim=1)
        zero = query.new_zeros(())
        terms = {
            "global": global_contrastive_loss(query, key, self.global_queue.keys.clone(), self.temperature)
            if self.use_global else zero,
            "local": local_contrastive_loss(query_p, key_p, self.local_queue.keys.clone(), self.temperature)
            if self.use_local else zero,
        }
        terms["total"] = combined_loss(terms["global"], terms["local"], self.use_global, self.use_local)
        self.global_queue.push(key)
        self.local_queue.push(key_p)
        return terms


def build_prior_extractor(cfg, encoder: Backbone) -> PriorExtractor:
    """The pre-training module of the config's `prior_*` keys around `encoder`."""
    return PriorExtractor(encoder, dim=cfg.prior_dim, queue_size=cfg.prior_queue, temperature=cfg.prior_temperature,
                          key_momentum=cfg.prior_key_momentum, use_global=cfg.prior_global,
                          use_local=cfg.prior_local, patches_per_image=cfg.prior_patches_per_image)


def load_prior_encoder(path: str, cfg) -> dict[str, Tensor]:
    """The query encoder's weights from a pre-training checkpoint, after checking that it finished
    and was trained as the config's `prior_*` keys say (they name the report row)."""
    hint = ("pre-train one with `python -m pretrain_prior --config FILE` (docs/qgnet.md) and set "
            "qgnet_prior_weight to its model/prior.pth")
    if not path:
        raise UserError(f"qgnet_prior is on but qgnet_prior_weight is empty: {hint}")
    state = load_file(path, "prior extractor checkpoint")
    if not isinstance(state, dict) or state.get("format") != PRIOR_FORMAT:
        raise UserError(f"{path} is not a prior extractor checkpoint (written by pretrain_prior): {hint}")
    trained = state.get("config", {})
    bad = [f"{k} (checkpoint {trained.get(k)!r}, config {cfg[k]!r})" for k in RECORDED_KEYS if trained.get(k) != cfg[k]]
    if bad:
        raise UserError(f"prior extractor {path} was pre-trained with other settings than this config names: "
                        f"{'; '.join(bad)}. Set those keys to the checkpoint's values or point qgnet_prior_weight "
                        "at a matching pre-training")
    if state.get("epoch") != trained.get("prior_epochs"):
        raise UserError(f"prior extractor {path} stopped after epoch {state.get('epoch')} of "
                        f"{trained.get('prior_epochs')}: resume its pre-training (`resume {path}`) before using it")
    prefix = "encoder."
    encoder = {k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)}
    refuse_nonfinite(encoder, path)
    return encoder
