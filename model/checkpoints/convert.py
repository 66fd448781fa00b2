"""Checkpoints: the project's own format and the released PFENet / NTRENet ones.

Released models (DataParallel, `{'epoch', 'state_dict', 'optimizer'}`) use PFENet's names;
the project uses names after the paper's modules. The table below maps one onto the other
key for key, so an official checkpoint loads strictly into the matching configuration
(PFENet: use_bgem/use_doem/use_pcl false; NTRENet release: all on, bg_dim 256). Anything that
does not fit is reported by name, with the config setting the checkpoint suggests. The iFSL
release's PFENet files are renamed to PFENet's names first (model/checkpoints/ifsl_pfenet.py).
"""
from __future__ import annotations

import logging
import os
import re

from torch import Tensor, nn

from model.checkpoints.bam import load_bam_weights
from model.errors import UserError
from model.checkpoints.ifsl_pfenet import ifsl_to_pfenet, is_ifsl_pfenet
from model.checkpoints.safe_load import load_file, refuse_nonfinite

log = logging.getLogger(__name__)

# (released prefix, own prefix); `init_merge.` is PFENet's FM conv, `init_merge2.` NTRENet's.
OFFICIAL_RENAMES = (
    ("bg_prototype", "bgmm.prototype"), ("down_bg.", "bgmm.reduce."), ("bg_res1.", "bgmm.refine."),
    ("bg_cls.", "bgmm.head."), ("down_query.", "reduce_query."), ("down_supp.", "reduce_support."),
    ("init_merge1.", "bgem.convs."), ("init_merge2.", "fm.merge."), ("init_merge.", "fm.merge."),
    ("inital_beta_conv.", "fm.refine."), ("inital_inner_cls.", "fm.heads."), ("init_merge3.", "doem.convs."),
    ("alpha_conv.", "fem.merge_prev."), ("beta_conv.", "fem.refine."), ("inner_cls.", "fem.heads."),
    ("res1.", "fem.fuse."), ("res2.", "fem.fuse_refine."), ("cls.", "fem.head."),
)
OWN_PREFIXES = ("backbone.", "reduce_query.", "reduce_support.", "bgmm.", "bgem.", "fm.", "doem.", "fem.", "pcl.")
BANK_PREFIX = "pcl.bank."  # not in released checkpoints: the bank then starts empty


def _strip_module(state: dict) -> dict:
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def official_to_own(key: str) -> str | None:
    """One released key (without 'module.') -> own key; None if no rule matches."""
    if re.match(r"layer[0-4]\.", key):
        return "backbone." + key
    rule = next(((o, n) for o, n in OFFICIAL_RENAMES if key.startswith(o)), None)
    return None if rule is None else rule[1] + key[len(rule[0]):]


def from_official(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Released names -> own names; returns (mapped, keys that match no rule)."""
    mapped, unmapped = {}, []
    for key, value in _strip_module(state).items():
        new = official_to_own(key)
        if new is None:
            unmapped.append(key)
        else:
            mapped[new] = value
    return mapped, unmapped


def to_official(state: dict[str, Tensor], *, module_prefix: bool = True) -> dict[str, Tensor]:
    """Own names -> released names (PFENet layout if there is no BG branch); drops the PCL bank."""
    ntrenet = "bgmm.prototype" in state
    out = {}
    for key, value in state.items():
        if key.startswith("pcl."):
            continue
        if key.startswith("backbone."):
            new = key[len("backbone."):]
        else:
            old, own = next((o, n) for o, n in OFFICIAL_RENAMES if key.startswith(n)
                            and (o != ("init_merge." if ntrenet else "init_merge2.")))
            new = old + key[len(own):]
        out[("module." if module_prefix else "") + new] = value
    return out


def infer_config(state: dict[str, Tensor]) -> dict[str, object]:
    """Config settings a state dict with own names was built with (for error messages)."""
    keys = set(state)
    mid = state.get("reduce_query.0.weight")
    deep = any(k.startswith("backbone.layer3.6.") for k in keys)
    stem = state.get("backbone.layer0.0.weight")
    cfg: dict[str, object] = {"backbone": "vgg" if mid is not None and mid.shape[1] == 768
                              else ("resnet101" if deep else "resnet50_torchvision"
                                    if stem is not None and stem.shape[-1] == 7 else "resnet50")}
    if mid is not None:
        cfg["reduce_dim"] = mid.shape[0]
    cfg["FEM bins"] = len({k.split(".")[2] for k in keys if k.startswith("fem.refine.")})
    for name, prefix in (("use_bgem", "bgem."), ("use_doem", "doem."), ("use_pcl", "pcl.")):
        cfg[name] = any(k.startswith(prefix) for k in keys)
    if "bgmm.prototype" in state:
        cfg["bg_dim"] = state["bgmm.prototype"].shape[1]
    if "pcl.bank.protos" in state:
        cfg["pcl_bank_size"] = state["pcl.bank.protos"].shape[1]
    return cfg


def _key_hint(key: str) -> str:
    rules = (("bgmm.", "the BG branch (use_bgem or use_doem)"), ("bgem.", "use_bgem"),
             ("doem.", "use_doem"), ("fm.refine.", "use_doem"), ("fm.heads.", "use_doem"),
             ("pcl.", "use_pcl / pcl_bank_size / the fold's class count"),
             ("backbone.layer3.", "backbone (resnet50 vs resnet101)"),
             ("backbone.layer0.", "backbone (deep stem resnet50 vs resnet50_torchvision)"), ("backbone.", "backbone"),
             ("reduce_", "backbone / reduce_dim"), ("fem.", "ppm_scales (number of bins) / reduce_dim"),
             ("fm.merge.", "ppm_scales (number of bins) / reduce_dim"),
             ("learner.", "model (asnet / hsnet, the asnet_ switches) / backbone"))
    return next((h for p, h in rules if key.startswith(p)), "no config setting: is this the right file?")


def _listing(what: str, keys: list[str], origin: dict[str, str], examples: int = 3) -> str:
    """Keys grouped by the config setting they point to, a few examples each (file names first)."""
    if not keys:
        return ""
    groups: dict[str, list[str]] = {}
    for k in keys:
        own = k.split(":")[0]
        name = origin.get(own, own)
        shown = k if name == own else f"{name} (= {k})"
        groups.setdefault(_key_hint(own), []).append(shown)
    lines = [f"\n    {hint}: " + ", ".join(ks[:examples]) + (f" ... ({len(ks)} keys)" if len(ks) > examples else "")
             for hint, ks in groups.items()]
    return f"\n  {what} ({len(keys)}):" + "".join(lines)


def _read(path: str) -> object:
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}; pass a file saved by train.py or an official "
                        "PFENet / NTRENet checkpoint")
    return load_file(path, "checkpoint")


def read_state(path: str) -> tuple[dict[str, Tensor], str, dict]:
    """(state dict with own names, 'own' | 'official', the training config an own checkpoint
    carries or {}); raises UserError for unmappable keys."""
    ckpt = _read(path)
    saved_by_train = isinstance(ckpt, dict) and isinstance(ckpt.get("model"), dict) and "format" in ckpt
    trained = ckpt.get("config") if isinstance(ckpt, dict) and isinstance(ckpt.get("config"), dict) else {}
    if isinstance(ckpt, dict) and isinstance(ckpt.get("model"), dict):
        ckpt = ckpt["model"]
    elif isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict"), dict):
        ckpt = ckpt["state_dict"]
    if not isinstance(ckpt, dict) or not all(isinstance(v, Tensor) for v in ckpt.values()):
        raise UserError(f"{path} is not a model checkpoint (expected a state_dict, {{'model': ...}} or "
                        "{'state_dict': ...})")
    state = _strip_module(ckpt)
    if not saved_by_train and is_ifsl_pfenet(state):  # the iFSL release's PFENet: PFENet's names, other prefixes
        state = ifsl_to_pfenet(state)
    if saved_by_train or (any(k.startswith(OWN_PREFIXES) for k in state)
                          and not any(re.match(r"layer[0-4]\.", k) for k in state)):
        return state, "own", trained
    mapped, unmapped = from_official(state)
    if unmapped:
        raise UserError(f"{path}: keys that are neither PFENet (or iFSL PFENet) nor NTRENet release keys "
                        f"({len(unmapped)}): {', '.join(unmapped[:8])}; is this the right file?")
    return mapped, "official", {}


def load_weights(net: nn.Module, path: str) -> dict:
    """Strictly load an own or official checkpoint into `net` (an NTRENet); returns the config the
    checkpoint was trained with ({} for official files), so callers can check fold and dataset."""
    if hasattr(net, "base_learner"):  # BAM and its stage-1 PSPNet: the BAM release's names
        return load_bam_weights(net, path)
    state, kind, trained = read_state(path)
    refuse_nonfinite(state, path)
    own = net.state_dict()
    origin = {official_to_own(k): k for k in to_official(state, module_prefix=False)} if kind == "official" else {}
    if kind == "official":  # the release has no PCL bank: keep this model's (empty) one
        state.update({k: v for k, v in own.items() if k.startswith(BANK_PREFIX)})
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        ck, md = infer_config(state), infer_config(own)
        differ = ", ".join(f"{k} {ck[k]} (model: {md.get(k)})" for k in ck if ck[k] != md.get(k))
        raise UserError(f"{path} ({kind} checkpoint) does not fit this model. The checkpoint suggests: "
                        f"{differ or 'no config difference found'}."
                        + _listing("in the checkpoint but not in the model", unexpected, origin)
                        + _listing("in the model but not in the checkpoint", missing, origin)
                        + _listing("wrong shape", shapes, origin))
    net.load_state_dict(state, strict=True)
    log.info("loaded %s checkpoint %s", kind, path)
    return trained
