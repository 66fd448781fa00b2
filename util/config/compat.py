"""Config forms of the frameworks users come from, read as this project's keys.

PFENet, the released NTRENet and BAM write their YAML files in sections (`DATA:`, `TRAIN:`,
`Distributed:`, BAM's `Data:`, `Train:`, `Method:`, `Test_Finetune:`) with their own key names;
HSNet's scripts take `--fold/--nshot/--load`, mmsegmentation's `--cfg-options k=v`. A sectioned
file is flattened, each foreign name mapped to ours or dropped, and every mapping or drop is
reported once (`notes`), so such a file runs as it is. In a flat file or on the command line a
foreign name is an error whose hint gives this project's form.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from util.errors import UserError

Mapper = Callable[[Any], "list[tuple[str, Any]]"]


def _rename(ours: str) -> Mapper:
    return lambda v: [(ours, v)]


def _layers(v: Any) -> list[tuple[str, Any]]:
    return [("backbone", f"resnet{v}")] if v in (50, 101) else []


def _vgg(v: Any) -> list[tuple[str, Any]]:
    return [("backbone", "vgg")] if v is True else []


def _save_path(v: Any) -> list[tuple[str, Any]]:
    """PFENet's save_path is the run's model/ folder; ours is the run folder above it."""
    path = str(v or "").rstrip("/")
    return [("save_path", path[:-len("/model")] if path.endswith("/model") else path)] if path else []


# foreign name -> (mapper to our keys, the form this project uses; shown in logs and hints)
MAPPED: dict[str, tuple[Mapper, str]] = {
    "layers": (_layers, "backbone resnet50 | resnet101"),
    "vgg": (_vgg, "backbone vgg"),
    "workers": (_rename("num_workers"), "num_workers N"),
    "use_coco": (lambda v: [("dataset", "coco" if v else "pascal")], "dataset coco | pascal"),
    "data_set": (_rename("dataset"), "dataset NAME"),
    "use_split_coco": (lambda v: [("coco_fold_style", "interleaved" if v else "contiguous")],
                       "coco_fold_style interleaved | contiguous"),
    "seed_deterministic": (_rename("deterministic"), "deterministic true"),
    "save_path": (_save_path, "save_path RUN_FOLDER (the folder holding model/, result/, tb/)"),
    # BAM's Method section: its file describes `model bam` (docs/bam.md)
    "low_fea": (lambda v: [("model", "bam"), ("low_layer", v)], "model bam, low_layer layer2 | layer3"),
    "kshot_trans_dim": (_rename("kshot_hidden"), "kshot_hidden N"),
    "aux_weight1": (_rename("loss_meta"), "loss_meta W"),
    "merge_tau": (_rename("gfss_tau"), "gfss_tau T"),
}

# foreign name -> why it has no counterpart here (or which keys play its part)
DROPPED: dict[str, str] = {
    "aux_weight": "the auxiliary losses are weighted by loss_ini and loss_fem",
    "aux_weight2": "BAM's base-learner loss: the base learner is frozen, the loss has no gradient",
    "classes": "always 2 (foreground, background)",
    "sync_bn": "the backbone is frozen; BN statistics of the trained layers are averaged over processes",
    "train_gpu": "choose GPUs with `device` and `GPUS=N sh train.sh`",
    "start_epoch": "use `resume FILE` to continue a run",
    "padding_label": "padding uses ignore_label",
    "save_freq": "last.pth is written every epoch; save_every_iters adds mid-epoch saves",
    "evaluate": "validation runs every val_every epochs",
    "fix_random_seed_val": "evaluation episodes are always fixed (test_seed)",
    "warmup": "the poly schedule has no warm-up",
    "resized_val": "evaluation always resizes to val_size",
    "bgpro_num": "the width of P_BG is bg_dim",
    "index_split": "every trainable group runs at scale_lr x base_lr",
    "stop_interval": "training runs the configured epochs",
    "SubEpoch_val": "validation runs every val_every epochs",
    "fix_bn": "the backbone BN mode is backbone_bn",
    "base_data_root": "BAM's base-learner annotations: not used",
    "merge": "the generalized FSS test merges as BAM's 'final' (novel above gfss_tau, else the base learner)",
    "ann_type": "masks only (no box annotations)",
    "dist_url": "`GPUS=N sh train.sh` (torchrun) sets up the processes",
    "dist_backend": "nccl on GPUs, gloo on the CPU, chosen by device",
    "multiprocessing_distributed": "`GPUS=N sh train.sh`", "world_size": "`GPUS=N sh train.sh`",
    "rank": "`GPUS=N sh train.sh`", "use_apex": "mixed precision is the amp key",
    "opt_level": "mixed precision is the amp key", "keep_batchnorm_fp32": "mixed precision is the amp key",
    "loss_scale": "mixed precision is the amp key",
}

# command-line options of other frameworks -> this project's `key value` form
OPTIONS: dict[str, str] = {"--fold": "split", "--nshot": "shot", "--shot": "shot", "--load": "weight",
                           "--benchmark": "dataset", "--bsz": "batch_size", "--lr": "base_lr",
                           "--logpath": "save_path", "--seed": "manual_seed"}


def is_sectioned(data: dict, known: Sequence[str]) -> bool:
    """A PFENet/BAM-style file: every top-level value is a mapping under a name that is no key."""
    return bool(data) and all(isinstance(v, dict) and k not in known for k, v in data.items() if k != "base")


def flatten(data: dict, path: str, known: Sequence[str]) -> tuple[dict, list[str]]:
    """Sections merged into one mapping of our keys; returns it with one note per mapped or
    dropped key. A key set in two sections, or a foreign key without a counterpart, is an error."""
    flat: dict[str, tuple[Any, str]] = {}
    for section, body in data.items():
        if section == "base":
            continue
        for k, v in (body or {}).items():
            if k in flat:
                raise UserError(f"config {path}: '{k}' is set in both section {flat[k][1]} and {section}: "
                                "keep one")
            flat[k] = (v, section)
    out: dict[str, Any] = {}
    notes: list[str] = []
    for k, (v, section) in flat.items():
        if k in MAPPED:  # before `known`: save_path means another folder there
            pairs = MAPPED[k][0](v)
            if k == "layers" and not pairs and flat.get("vgg", (False,))[0] is not True:
                raise UserError(f"config {path}: {section}.layers = {v!r}: this project has ResNet-50 and "
                                "ResNet-101 only: set layers 50 or 101, or vgg True")
            out.update(pairs)
            shown = ", ".join(f"{a} {b}" for a, b in pairs) or "nothing (default kept)"
            notes.append(f"{path}: {section}.{k}: {v!r} read as {shown}")
        elif k in DROPPED and k not in known:
            notes.append(f"{path}: {section}.{k} ignored: {DROPPED[k]}")
        else:
            out[k] = v  # ours, or unknown anywhere: the schema check names it with a hint
    if "vgg" in flat and flat["vgg"][0] is True:
        out["backbone"] = "vgg"  # `layers` is only read when vgg is false
    return out, notes


def foreign_hint(name: str) -> str:
    """The hint for a name other frameworks use ('' if it is none of theirs)."""
    if name in MAPPED:
        return f" ({name} is PFENet's/BAM's name: here `{MAPPED[name][1]}`)"
    if name in DROPPED:
        return f" ({name} is PFENet's/BAM's name and has no counterpart: {DROPPED[name]})"
    return ""


def normalise_overrides(opts: Sequence[str]) -> list[str]:
    """`key value` pairs, also accepted as mmsegmentation's `--cfg-options k=v ...` or bare `k=v`;
    HSNet-style `--fold 1` and any other `--key` are answered with this project's form."""
    out: list[str] = []
    for i, tok in enumerate(opts):
        if tok == "--cfg-options":
            continue
        at_key = len(out) % 2 == 0
        if at_key and tok.startswith("--"):
            name, _, value = tok.partition("=")
            value = value or (opts[i + 1] if i + 1 < len(opts) else "VALUE")
            ours = OPTIONS.get(name, name[2:].replace("-", "_"))
            raise UserError(f"option '{name}' is not taken here: config keys are given as `key value` pairs after "
                            f"--config FILE, e.g. `{ours} {value}`")
        key, eq, value = tok.partition("=")
        out += [key, value] if at_key and eq and key.isidentifier() else [tok]
    return out
