"""NTRENet as BAM's meta learner: NTRENet's prediction (BG/DO elimination, PCL, as its use_*
keys say) takes the place of BAM's meta learner in BAM's ensemble with a frozen stage-1 base
learner. Both methods eliminate non-target regions, NTRENet from learned background and
distracting-object maps, BAM from the base classes it already knows; this combination is
not in either paper.

The network is an NTRENet (same module names, so NTRENet checkpoints' heads and stage-1 files
map onto it) plus `base_learner`, `ensemble` and `shot_weights`. Loss: CE(final) + loss_meta x
NTRENet's whole objective.
"""
from __future__ import annotations

import torch
from torch import Tensor

from model.layers.blocks import resize
from model.bam.ensemble import Ensemble, FrozenStage1
from model.bam.gram import low_level
from model.bam.kshot import ShotWeights, scene_difference
from model.losses.objective import resize_labels, segmentation_ce
from model.ntrenet.ntrenet import NTRENet
from model.bam.pspnet import BaseLearner


class NTRENetBAM(FrozenStage1, NTRENet):
    def __init__(self, *, shot: int = 1, low_layer: str = "layer2", kshot_hidden: int = 2, loss_meta: float = 1.0,
                 output: str = "final", **ntrenet) -> None:
        super().__init__(**ntrenet)
        self.base_learner = BaseLearner(self.backbone.high_channels, self.num_train_classes)
        for p in self.base_learner.parameters():
            p.requires_grad_(False)
        self.ensemble = Ensemble()
        self.shot_weights = ShotWeights(shot, kshot_hidden)
        self.low = low_level(self.backbone.mid_channels, low_layer)
        self.shot, self.loss_meta, self.output = shot, loss_meta, output

    def forward(self, query: Tensor, supports: Tensor, support_masks: Tensor,
                query_mask: Tensor | None = None, classes: Tensor | None = None):
        if self.training:
            self._check_targets(query, query_mask, classes)
            if classes is None or tuple(classes.shape) != (query.shape[0],):
                raise ValueError("training with a base learner needs classes [B]: the episode's index among the "
                                 "fold's base classes")
        out = self._run(query, supports, support_masks)
        with torch.no_grad():
            base = self.base_learner(out.query_high)                                      # [B,1+Nb,h,w]
        psi, _ = scene_difference(out.query_mid[:, self.low], out.support_mid[:, :, self.low], self.shot_weights)
        size = self._out_size(query)
        final = resize(self.ensemble(out.logits, base, psi, classes if self.training else None), size)
        if not self.training:
            return final if self.output == "final" else resize(out.logits, size)
        meta = self._losses(out, resize(out.logits, size), query_mask, support_masks, classes)
        main = segmentation_ce(final, resize_labels(query_mask, size), self.ignore_label)
        return final, {**meta, "main": main, "meta": meta["total"], "total": main + self.loss_meta * meta["total"]}
