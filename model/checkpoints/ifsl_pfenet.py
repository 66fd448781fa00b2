"""The iFSL release's PFENet checkpoints ("Integrative Few-Shot Learning for Classification and
Segmentation": its PFENet trained for FS-CS) in PFENet's own release names, which model/checkpoints/convert.py
maps onto the project's PFENet.

Its PyTorch Lightning files hold `{'state_dict': ...}` with a torchvision ResNet-50 split into
`backbone0` (stem: conv1, bn1, relu, maxpool) and `backbone1..4` (layer1..4, dilated as PFENet
does), the two reductions `down_qry` / `down_spt`, and `learner.*`, PFENet's modules under their
PFENet names. So the file is PFENet's layout with other prefixes: it loads strictly into `model
pfenet` with `ifsl true`, `backbone resnet50_torchvision` (the torchvision stem) and the
release's `ppm_scales [50, 25, 13, 7]` (its 400 px inputs).
"""
from __future__ import annotations

import re

from torch import Tensor

# (iFSL release prefix, PFENet release prefix)
RENAMES = (("backbone0.", "layer0."), ("down_qry.", "down_query."), ("down_spt.", "down_supp."), ("learner.", ""))
MARKERS = ("backbone0.", "down_qry.", "down_spt.")


def is_ifsl_pfenet(state: dict[str, Tensor]) -> bool:
    """True for a state dict in the iFSL release's PFENet layout (no 'module.' prefix)."""
    return any(k.startswith(MARKERS) for k in state)


def ifsl_key_to_pfenet(key: str) -> str:
    """One iFSL release key -> PFENet's release key (unknown keys unchanged: reported later)."""
    if m := re.match(r"backbone([1-4])\.", key):
        return f"layer{m.group(1)}." + key[m.end():]
    rule = next(((o, n) for o, n in RENAMES if key.startswith(o)), None)
    return key if rule is None else rule[1] + key[len(rule[0]):]


def ifsl_to_pfenet(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The whole state dict in PFENet's release names."""
    return {ifsl_key_to_pfenet(k): v for k, v in state.items()}
