"""BAM's released checkpoints and the stage-1 (base learner) checkpoint.

The release names the encoder `layer0..4` (PSPNet files also hold the same tensors again as
`encoder.0..4`), the base learner `ppm`/`cls` (PSPNet) or `learner_base.0`/`.1` (BAM), and the
meta learner after its own modules; the table maps each onto this project's names, so both
released files load strictly. Stage 2 starts from a stage-1 file, which must come from the same
benchmark, fold and backbone (the fold is stored in checkpoints written by train_base.py).
"""
from __future__ import annotations

import logging
import os
import re

from torch import Tensor, nn

from model.errors import UserError
from model.checkpoints.safe_load import load_file, refuse_nonfinite

log = logging.getLogger(__name__)

# (released prefix, own prefix), first match wins
RELEASE_RENAMES = (
    ("learner_base.0.", "base_learner.ppm."), ("learner_base.1.", "base_learner.cls."),
    ("ppm.", "base_learner.ppm."), ("cls.", "base_learner.cls."),
    ("down_query.", "reduce_query."), ("down_supp.", "reduce_support."), ("init_merge.", "merge."),
    ("ASPP_meta.", "aspp."), ("res1_meta.", "fuse."), ("res2_meta.", "refine."), ("cls_meta.", "head."),
    ("gram_merge.", "ensemble.gram_merge."), ("cls_merge.", "ensemble.cls_merge."),
    ("kshot_rw.", "shot_weights.net."),
)
OWN_PREFIXES = ("backbone.", "base_learner.")
ENCODER_COPY = re.compile(r"encoder\.([0-4])\.")  # PSPNet's nn.Sequential view of layer0..4


def release_to_own(key: str) -> str | None:
    """One released key (without 'module.') -> own key; None if no rule matches."""
    if re.match(r"layer[0-4]\.", key):
        return "backbone." + key
    if m := ENCODER_COPY.match(key):
        return f"backbone.layer{m.group(1)}." + key[m.end():]
    rule = next(((o, n) for o, n in RELEASE_RENAMES if key.startswith(o)), None)
    return None if rule is None else rule[1] + key[len(rule[0]):]


def read_bam_state(path: str) -> tuple[dict[str, Tensor], str, dict]:
    """(state dict with own names, 'own' | 'release', the training config an own file carries)."""
    ckpt = load_file(path, "checkpoint")
    trained = ckpt.get("config") if isinstance(ckpt, dict) and isinstance(ckpt.get("config"), dict) else {}
    if isinstance(ckpt, dict):
        ckpt = ckpt.get("model", ckpt.get("state_dict", ckpt))
    if not isinstance(ckpt, dict) or not all(isinstance(v, Tensor) for v in ckpt.values()):
        raise UserError(f"{path} is not a model checkpoint (expected a state_dict, {{'model': ...}} or "
                        "{'state_dict': ...})")
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in ckpt.items()}
    if any(k.startswith(OWN_PREFIXES) for k in state):
        return state, "own", trained
    mapped, unmapped = {}, []
    for key, value in state.items():
        new = release_to_own(key)
        if new is None:
            unmapped.append(key)
        elif new in mapped and not bool((mapped[new] == value).all()):
            raise UserError(f"{path}: {key} differs from the layer it duplicates; the file is damaged")
        else:
            mapped[new] = value
    if unmapped:
        raise UserError(f"{path}: keys that are neither BAM nor PSPNet release keys ({len(unmapped)}): "
                        f"{', '.join(unmapped[:8])}; is this the right file?")
    return mapped, "release", {}


def _fit(state: dict[str, Tensor], own: dict[str, Tensor], path: str, kind: str, hint: str) -> None:
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{what} ({len(ks)}): {', '.join(ks[:4])}" for what, ks in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)) if ks]
        raise UserError(f"{path} ({kind} checkpoint) does not fit this model ({hint}): " + "; ".join(parts))


def load_bam_weights(net: nn.Module, path: str) -> dict:
    """Strictly load an own or released BAM / PSPNet checkpoint into `net` (BAM or PSPNet)."""
    state, kind, trained = read_bam_state(path)
    refuse_nonfinite(state, path)
    _fit(state, net.state_dict(), path, kind, "backbone, reduce_dim, shot (K-shot weights) and the "
         "fold's base-class count must match")
    net.load_state_dict(state, strict=True)
    log.info("loaded %s checkpoint %s", kind, path)
    return trained


def load_base_learner(net: nn.Module, path: str, expected: dict, produced_by: str) -> None:
    """Encoder + base learner of a stage-1 file into `net` (BAM); refuses another fold or backbone."""
    if not os.path.isfile(path):
        raise UserError(f"stage-1 base learner not found: {path}; train it with `{produced_by}` "
                        "(or point `base_weight` at a released PSPNet file)")
    state, kind, trained = read_bam_state(path)
    differ = [f"{k} {trained[k]!r} (now {v!r})" for k, v in expected.items()
              if k in trained and trained[k] != v and (k != "coco_fold_style" or v and expected["dataset"] == "coco")]
    if differ:
        raise UserError(f"{path} is a base learner of another fold or backbone: {', '.join(differ)}; "
                        f"train this one with `{produced_by}`")
    state = {k: v for k, v in state.items() if k.startswith(OWN_PREFIXES)}
    refuse_nonfinite(state, path)
    own = {k: v for k, v in net.state_dict().items() if k.startswith(OWN_PREFIXES)}
    _fit(state, own, path, kind, "the stage-1 backbone and the fold's base-class count must match")
    net.load_state_dict(state, strict=False)
    log.info("loaded the stage-1 encoder and base learner from %s (%s)", path, kind)
