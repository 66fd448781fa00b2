"""One config schema: every key declared once with its type, default and meaning.

YAML files hold flat `key: value` pairs; a file may name a `base:` file (relative to
itself) whose values it extends, so fold files hold only what differs. Command-line
overrides are `key value` pairs (PFENet convention), parsed as YAML scalars. PFENet's,
the released NTRENet's and BAM's sectioned files are read as they are (util/compat.py).
"""
from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import yaml

from util.compat import flatten, foreign_hint, is_sectioned, normalise_overrides
from util.errors import UserError
from util.recipes import CHOOSERS, PUBLISHED, RECIPE_KEYS, find_recipe, recipe_method
from util.engine.guard import write_atomic
from util.textfile import read_utf8


class ConfigError(UserError, ValueError):
    """A user-facing configuration mistake (bad key, type or value)."""


@dataclass(frozen=True)
class Key:
    """One config key. `variant` marks a key that tells runs apart in the report: True, or a
    predicate on the whole config saying when the key matters (e.g. PCL keys only with PCL);
    runs that differ in a marked key get their own row (docs/design.md §7)."""

    type: type | tuple  # int, float, bool, str, or (list, elem_type)
    default: Any
    help: str
    choices: tuple | None = None
    check: Callable[[Any], str | None] | None = None  # returns an error text or None
    variant: bool | Callable[[dict], bool] = False


MAX_SIDE = 4097  # crops and test sizes: 8.6x PFENet's 473; a larger square does not fit in memory
MAX_INT = 2**31 - 1  # seeds, counts and sizes fit 32 bits (numpy seeds, torch index maths)
MAX_FLOAT = 1e6  # no rate, weight, angle or scale of the schema comes near this


def _odd8(v: int) -> str | None:
    if v > MAX_SIDE:
        return f"must be at most {MAX_SIDE} (a {v}x{v} square does not fit in memory)"
    return None if v > 0 and (v - 1) % 8 == 0 else "must satisfy (size - 1) % 8 == 0, e.g. 241, 473, 641"


def _side(v: int) -> str | None:
    """A side length in pixels: positive and small enough to fit in memory (the (size - 1) % 8
    rule of PFENet's sizes is checked with the rest of the config, FS-CS being exempt)."""
    if v > MAX_SIDE:
        return f"must be at most {MAX_SIDE} (a {v}x{v} square does not fit in memory)"
    return None if v > 0 else "must be > 0"


def _scale(v: float) -> str | None:
    return None if 0.1 <= v <= 10 else "must be in [0.1, 10] (a RandScale factor; PFENet uses 0.9 to 1.1)"


def _angle(v: float) -> str | None:
    return None if -360 <= v <= 360 else "must be in [-360, 360] (degrees)"


def _label_value(v: int) -> str | None:
    return None if 0 <= v <= 255 else "must be in 0..255 (labels are 8-bit class maps)"


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be > 0"


def _nonneg(v: float) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _benchmark(v: str) -> str | None:
    from util.data.benchmarks import BENCHMARKS  # the registry imports data code: only when checked
    return None if v in BENCHMARKS.names() else f"is not a benchmark; use one of {', '.join(BENCHMARKS.names())}"


def _method(v: str) -> str | None:
    from model.methods import METHODS
    return None if v in METHODS.names() else f"is not a method; use one of {', '.join(METHODS.names())}"


def _with(*keys: str) -> Callable[[dict], bool]:
    """Variant predicate: the key matters when any of `keys` is on (absent keys take defaults)."""
    return lambda cfg: any(cfg.get(k, SCHEMA[k].default) for k in keys)


def _split(v: int) -> str | None:
    return None if 0 <= v <= 3 else "must be 0, 1, 2 or 3 (the fold)"


def _bins(v: list) -> str | None:
    if not v:
        return "needs at least one bin"
    if any(b <= 0 for b in v):
        return "bins must be > 0 (integers are sizes, values <= 1.0 are fractions of the feature size)"
    return None


SCHEMA: dict[str, Key] = {
    # --- data -----------------------------------------------------------------------
    "dataset": Key(str, "pascal", "benchmark (util/data/benchmarks/: pascal, coco, toy): classes, folds, labels",
                   check=_benchmark),
    "data_root": Key(str, "data/VOCdevkit2012/VOC2012", "folder the list paths are relative to"),
    "train_list": Key(str, "lists/pascal/train.txt", "training list: 'image label' per line"),
    "val_list": Key(str, "lists/pascal/val.txt", "validation/test list"),
    "split": Key(int, 0, "fold i: novel classes of fold i are held out", check=_split),
    "coco_fold_style": Key(str, "interleaved", "COCO-20i folds: interleaved (PFENet use_split_coco) or contiguous",
                           ("interleaved", "contiguous"), variant=lambda cfg: cfg.get("dataset") == "coco"),
    "min_class_pixels": Key(int, 2 * 32 * 32, "a class counts in an image only above this many label pixels",
                            check=_nonneg),
    "shot": Key(int, 1, "support images per episode (K)", check=lambda v: None if v >= 1 else "must be >= 1"),
    "train_h": Key(int, 473, "training crop height (with (size - 1) % 8 == 0 except FS-CS)", check=_side),
    "train_w": Key(int, 473, "training crop width (as train_h)", check=_side),
    "val_size": Key(int, 473, "test-time longer side (padded square; as train_h)", check=_side),
    "scale_min": Key(float, 0.9, "RandScale lower bound (COCO 0.8)", check=_scale),
    "scale_max": Key(float, 1.1, "RandScale upper bound (COCO 1.25)", check=_scale),
    "rotate_min": Key(float, -10.0, "RandRotate lower angle (degrees)", check=_angle),
    "rotate_max": Key(float, 10.0, "RandRotate upper angle (degrees)", check=_angle),
    "ignore_label": Key(int, 255, "label value ignored by losses and metrics", check=_label_value),
    "ori_resize": Key(bool, True, "score at the label's original resolution (PFENet protocol)"),
    "num_workers": Key(int, 4, "data-loader worker processes", check=_nonneg),
    # --- model ----------------------------------------------------------------------
    "model": Key(str, "ntrenet", "method (model/methods/: ntrenet; pfenet = ntrenet with every module off; "
                 "qgnet = pfenet + the prior region map)",
                 check=_method, variant=True),
    "backbone": Key(str, "resnet50", "frozen encoder (resnet50_torchvision: torchvision's stem, as the iFSL "
                    "release's PFENet)", ("resnet50", "resnet101", "vgg", "resnet50_torchvision")),
    "pretrained": Key(bool, True, "load ImageNet weights from initmodel_dir (false: random init)"),
    "initmodel_dir": Key(str, "initmodel", "folder with resnet50_v2.pth, resnet101_v2.pth, vgg16_bn.pth"),
    "backbone_bn": Key(str, "reference", "backbone BN: batch stats in training as released, or always eval",
                       ("reference", "frozen")),
    "zoom_factor": Key(int, 8, "logits are upsampled by this factor to the input size", check=_positive),
    "reduce_dim": Key(int, 256, "channels after the 1x1 reduction of mid-level features", check=_positive),
    "ppm_scales": Key((list, float), [60, 30, 15, 8], "FEM bins: sizes (>1) or fractions (<=1) of the feature size",
                      check=_bins),
    "cap_bins": Key(bool, False, "FEM bins larger than the feature map run at the feature size (fewer FLOPs "
                    "at inputs under 473; changes the numbers; docs/speed.md)", variant=True),
    "prior_foreground_only": Key(bool, False, "prior mask compares query pixels with foreground support pixels "
                                 "only (same prior up to rounding, fewer FLOPs; docs/speed.md)"),
    "feature_dropout": Key(float, 0.5, "Dropout2d after the 1x1 reductions of Xq, Xs and BGMM's input (released 0.5)",
                           check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)"),
    "use_bgem": Key(bool, True, "BG mining + eliminating modules (Table 3)", variant=True),
    "use_doem": Key(bool, True, "DO eliminating module (needs the BG branch)", variant=True),
    "use_pcl": Key(bool, True, "prototypical contrastive learning loss", variant=True),
    "training_reference": Key(str, "release", "preset of the keys where the released code and the paper "
                              "differ (bg_dim, bg_init, do_pooling, pcl_negative_region, pcl_positive), "
                              "applied to those not set explicitly", ("release", "paper")),
    "bg_dim": Key(int, 256, "width D of P_BG (released code 256 = bgpro_num 1, paper 640)", check=_positive,
                  variant=_with("use_bgem", "use_doem")),
    "bg_init": Key(str, "zeros", "P_BG initialisation: released zeros, paper random (standard normal)",
                   ("zeros", "random"), variant=_with("use_bgem", "use_doem")),
    "bg_alpha": Key(float, 0.5, "alpha of the BG mining loss, eq. 3", check=_nonneg),
    "bg_loss_norm": Key(str, "per_image", "eq. 3's N: each image's target pixels, images averaged (released, "
                        "eq. 3 as written), or the batch's target pixels pooled", ("per_image", "pooled"),
                        variant=_with("use_bgem", "use_doem")),
    "do_pooling": Key(str, "global", "DO prototype: released global mean or eq. 8 masked mean",
                      ("global", "masked")),
    "pcl_negatives": Key(str, "do", "PCL negatives (Table 4)", ("do", "bg", "nontarget"), variant=_with("use_pcl")),
    "pcl_negative_region": Key(str, "nearest", "PCL negative region from the label: nearest-resized, 255 as "
                               "non-target, empty regions stored as zeros (released), or bilinear label == 0, "
                               "empty regions skipped", ("nearest", "bilinear"), variant=_with("use_pcl")),
    "pcl_positive": Key(str, "support_mask", "PCL positive: support feature pooled over the nearest-resized "
                        "mask (released) or P^s (paper Sec. 3.5.2)", ("support_mask", "prototype"),
                        variant=_with("use_pcl")),
    "pcl_bank_size": Key(int, 2000, "DO prototypes kept per training class", check=_positive),
    "pcl_samples": Key(int, 1000, "negatives sampled from the bank per step", check=_positive),
    "pcl_temperature": Key(float, 1.0, "temperature of the PCL softmax", check=_positive),
    "loss_ini": Key(float, 0.6, "weight of the initial-prediction (FM) losses", check=_nonneg),
    "loss_fem": Key(float, 0.4, "weight of the per-bin FEM losses", check=_nonneg),
    "loss_bg": Key(float, 1.0, "weight of the BG mining loss", check=_nonneg),
    "loss_pcl": Key(float, 0.01, "weight of the PCL loss", check=_nonneg),
    "use_scnet": Key(bool, False, "SCNet's self-contrastive query branch (training only; SCNet Sec. 3.2.2)",
                     variant=True),
    "scnet_clusters": Key(int, 3, "SCNet: k-means clusters n of the query's background (SCNet Table 3)",
                          check=lambda v: None if v >= 1 else "must be >= 1", variant=_with("use_scnet")),
    "scnet_lambda": Key(float, 0.5, "SCNet eq. 9: L = (1-lambda) L1 + lambda L2 (SCNet Table 5)",
                        check=lambda v: None if 0 <= v <= 1 else "must be in [0, 1]", variant=_with("use_scnet")),
    "scnet_prior": Key(str, "region", "SCNet: prior-mask channel of the query branch",
                       ("region", "zeros", "support"), variant=_with("use_scnet")),
    "use_mmt": Key(bool, False, "meta-memory transfer on the mid-level features (docs/cross_domain.md)",
                   variant=True),
    "mmt_slots": Key(int, 8, "MMT: memory slots N (mean and variance each)", check=_positive, variant=_with("use_mmt")),
    "mmt_momentum": Key(float, 0.9, "MMT: momentum lambda of the memory update",
                        check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)", variant=_with("use_mmt")),
    "mmt_alpha": Key(float, 0.5, "MMT: alpha, share of the feature's own statistics in the enhancement",
                     check=lambda v: None if 0 <= v <= 1 else "must be in [0, 1]", variant=_with("use_mmt")),
    "mmt_temperature": Key(float, 0.1, "MMT: temperature of the slot similarities and of L_cont", check=_positive,
                           variant=_with("use_mmt")),
    "mmt_contrast": Key(bool, True, "MMT ablation Cons: the contrastive loss L_cont", variant=_with("use_mmt")),
    "mmt_enhance_train": Key(bool, True, "MMT ablation MEnS: train on memory-enhanced source features",
                             variant=_with("use_mmt")),
    "mmt_enhance_test": Key(bool, True, "MMT ablation MEnT: test on memory-enhanced target features",
                            variant=_with("use_mmt")),
    "loss_mmt": Key(float, 1.0, "weight of MMT's L_orth + L_cont + L_pro", check=_nonneg, variant=_with("use_mmt")),
    # --- BAM (model bam; docs/bam.md) ---------------------------------------------------
    "base_weight": Key(str, "exp/{dataset}/split{split}_{backbone}_pspnet/model/best.pth",
                       "BAM: stage-1 base learner (PSPNet) checkpoint; {dataset}, {split}, {backbone} are filled "
                       "in; 'none': random base learner (tests only)"),
    "low_layer": Key(str, "layer2", "BAM: low-level layer whose Gram matrices give the scene difference psi",
                     ("layer2", "layer3"), variant=lambda cfg: cfg.get("model") == "bam"),
    "kshot_hidden": Key(int, 2, "BAM: hidden width of the K-shot weighting net (0: one linear layer)",
                        check=_nonneg),
    "loss_meta": Key(float, 1.0, "BAM: weight of the meta learner's loss (released aux_weight1)", check=_nonneg),
    "meta_learner": Key(str, "bam", "BAM: meta learner in the ensemble: the release's (ASPP head) or NTRENet "
                        "(its use_* modules; docs/bam.md)", ("bam", "ntrenet"),
                        variant=lambda cfg: cfg.get("model") == "bam"),
    "bam_output": Key(str, "final", "BAM: what eval mode returns: the ensemble's final prediction, or the meta "
                      "learner alone (its ablation)", ("final", "meta"),
                      variant=lambda cfg: cfg.get("model") == "bam"),
    "encoder_lr_scale": Key(float, 1.0, "BAM stage 1: the encoder's learning rate as a multiple of base_lr "
                            "(released: 1 on PASCAL, 10 = scale_lr on COCO); PPM and classifier take scale_lr",
                            check=_nonneg),
    "gfss_tau": Key(float, 0.9, "BAM generalized FSS: a pixel is novel when the final foreground "
                    "probability exceeds this (released merge_tau)", check=lambda v: None if 0 <= v <= 1 else
                    "must be in [0, 1]"),
    # FS-CS (docs/fscs.md): integrative few-shot classification and segmentation, iFSL head, ASNet
    "ifsl": Key(bool, False, "FS-CS task: N-way episodes whose query holds any subset of the classes, the "
                "method's per-way maps merged by the iFSL head (presence + N+1-class segmentation)", variant=True),
    "way": Key(int, 1, "FS-CS: ways N of the test episodes (training is 1-way)",
               check=lambda v: None if 1 <= v <= 5 else "must be 1..5", variant=_with("ifsl")),
    "weak": Key(bool, False, "FS-CS: train with class tags only (L_C) instead of masks (L_S); model asnet",
                variant=_with("ifsl")),
    "fscs_boundary": Key(str, "background", "FS-CS test/validation: the label's 255 (boundary) pixels scored as "
                         "background, as the iFSL release scores them (its published numbers), or ignored "
                         "(excluded from every count)", ("background", "ignore"), variant=_with("ifsl")),
    "asnet_attention": Key(str, "global", "ASNet squeeze layers: global self-attention, or local (a strided "
                           "convolution alone; the paper's Table 2c (a))", ("global", "local"),
                           variant=lambda cfg: cfg.get("model") == "asnet"),
    "asnet_masked_attention": Key(bool, True, "ASNet: support mask masks the attention keys (Table 2c (b))",
                                  variant=lambda cfg: cfg.get("model") == "asnet"),
    "asnet_fusion": Key(bool, True, "ASNet: fuse layers 4 -> 3 -> 2 (false: layer-2 squeeze alone, Table 2c (c))",
                        variant=lambda cfg: cfg.get("model") == "asnet"),
    # --- QGNet: prior region map and its prior extractor (docs/qgnet.md) -------------
    "qgnet_prior": Key(bool, False, "QGNet's prior region map of the query as an extra prior channel (model qgnet "
                       "fixes it on; PFENet and NTRENet take it too)", variant=True),
    "qgnet_prior_weight": Key(str, "", "prior extractor checkpoint written by `python -m pretrain_prior` "
                              "(<its exp folder>/model/prior.pth)"),
    "prior_global": Key(bool, True, "prior extractor: global (image-level) contrastive loss, eq. 1 (Table VI)",
                        variant=_with("qgnet_prior")),
    "prior_local": Key(bool, True, "prior extractor: local (patch-level) contrastive loss, eq. 6 (Table VI)",
                       variant=_with("qgnet_prior")),
    "prior_patches": Key(str, "slic", "prior extractor: patch generator of the local loss (Table V)",
                         ("slic", "felzenszwalb"), variant=_with("qgnet_prior")),
    "prior_epochs": Key(int, 1000, "prior extractor pre-training epochs (paper: PASCAL 1000, COCO 200; Table V)",
                        check=_positive, variant=_with("qgnet_prior")),
    "prior_batch_size": Key(int, 256, "prior extractor: images per step (MoCo v2's 256)", check=_positive),
    "prior_lr": Key(float, 0.03, "prior extractor: SGD learning rate, cosine-decayed (MoCo v2's 0.03 at batch 256)",
                    check=_positive),
    "prior_temperature": Key(float, 0.2, "prior extractor: InfoNCE temperature tau of eq. 1 and 6 (MoCo v2)",
                             check=_positive),
    "prior_queue": Key(int, 65536, "prior extractor: negatives kept per queue (K of eq. 1, M of eq. 6)",
                       check=_positive),
    "prior_key_momentum": Key(float, 0.999, "prior extractor: momentum of the key encoder (MoCo)",
                              check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)"),
    "prior_dim": Key(int, 128, "prior extractor: embedding width of the projection heads (MoCo v2)", check=_positive),
    "prior_crop": Key(int, 224, "prior extractor: side of each augmented view (MoCo v2's 224)",
                      check=lambda v: None if v >= 17 else "must be >= 17"),
    "prior_crop_scale_min": Key(float, 0.2, "prior extractor: smallest crop area fraction (MoCo v2's 0.2)",
                                check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]"),
    "prior_patches_per_image": Key(int, 8, "prior extractor: patches per image in the local loss", check=_positive),
    "prior_segments": Key(int, 100, "SLIC: number of cluster centres K", check=_positive),
    "prior_compactness": Key(float, 10.0, "SLIC: compactness m of eq. 2", check=_positive),
    "prior_felzenszwalb_scale": Key(float, 300.0, "Felzenszwalb: scale k of the threshold k / |C| (0-255 colours)",
                                    check=_positive),
    "prior_max_iters_per_epoch": Key(int, 0, "prior extractor: cap on steps per epoch (0: the whole list)",
                                     check=_nonneg),
    # --- training -------------------------------------------------------------------
    "recipe": Key(str, PUBLISHED, "training recipe and test protocol of the method on this benchmark "
                  "(docs/protocols.md): published, or a named preset such as NTRENet's release", variant=True),
    "epochs": Key(int, 200, "training epochs", check=_positive),
    "batch_size": Key(int, 32, "episodes per training step (over all GPUs)", check=_positive),
    "base_lr": Key(float, 0.03, "initial learning rate before scale_lr (PFENet's and the release's base_lr)",
                   check=_positive),
    "scale_lr": Key(float, 10.0, "multiplier on base_lr for every trainable group (PFENet's and the release's "
                    "poly_learning_rate: scale_lr 10, index_split -1); applied rate = base_lr x scale_lr x poly",
                    check=_positive),
    "optimizer": Key(str, "sgd", "SGD (the paper's), Adam (the iFSL release's) or AdamW (short runs from a "
                     "random backbone)", ("sgd", "adam", "adamw")),
    "power": Key(float, 0.9, "poly decay power", check=_nonneg),
    "momentum": Key(float, 0.9, "SGD momentum", check=_nonneg),
    "weight_decay": Key(float, 1e-4, "SGD weight decay", check=_nonneg),
    "manual_seed": Key(int, 321, "seed; re-seeded per epoch with seed + epoch", check=_nonneg),
    "max_iters_per_epoch": Key(int, 0, "cap on steps per epoch (0: the whole list); for quick runs",
                               check=_nonneg),
    "val_every": Key(int, 1, "validate every N epochs (0: never)", check=_nonneg),
    "print_freq": Key(int, 10, "log every N iterations", check=_positive),
    "image_every": Key(int, 500, "tensorboard image panel every N iterations (0: never)", check=_nonneg),
    "resume": Key(str, "", "checkpoint to continue training from exactly"),
    "weight": Key(str, "", "checkpoint (own or official) to initialise from"),
    "save_path": Key(str, "", "experiment folder (default exp/<dataset>/<config name>)"),
    "overwrite": Key(bool, False, "replace a previous run in the experiment folder (otherwise refused)"),
    "save_every_iters": Key(int, 0, "also write last.pth every N iterations, mid-epoch (0: epoch ends only)",
                            check=_nonneg),
    "on_nonfinite": Key(str, "stop", "a NaN/inf loss stops the run (last good checkpoint kept) or skips the step",
                        ("stop", "skip")),
    "deterministic": Key(bool, False, "torch.use_deterministic_algorithms (CUDA: slower, see docs/reliability.md)"),
    "device": Key(str, "auto", "auto, cpu, cuda or cuda:N"),
    "amp": Key(str, "off", "mixed precision, only when asked: off = fp32 everywhere; auto = bf16 training steps "
               "where bf16 is native (CUDA with bf16, CPUs with avx512_bf16/AMX), evaluation fp32; bf16 autocast "
               "(CPU/CUDA) or fp16 autocast + GradScaler (CUDA only) for training and evaluation; losses and "
               "metrics stay fp32; results record `precision`", ("auto", "off", "bf16", "fp16")),
    "channels_last": Key(str, "auto", "NHWC memory format for the model and query images: auto = on "
                         "on the CPU (faster convolutions there, docs/speed.md), off on CUDA; "
                         "same numbers up to float rounding", ("auto", "on", "off")),
    # --- evaluation -----------------------------------------------------------------
    "test_num": Key(int, 1000, "test episodes (paper: 1000 PASCAL, 4000 COCO; PFENet 5000/20000)",
                    check=_positive),
    "test_seed": Key(int, 321, "seed of the fixed test episodes", check=_nonneg),
    "val_num": Key(int, 0, "episodes for validation during training (0: test_num)", check=_nonneg),
    "batch_size_val": Key(int, 1, "episodes per evaluation batch", check=_positive),
    "seeds": Key(int, 1, "test.py: repeat the protocol with this many seeds", check=_positive),
    "vis": Key(int, 0, "test.py: save panels for this many episodes", check=_nonneg),
    "baselines": Key(bool, False, "test.py: also score all-foreground and prior-mask-only predictors"),
    "target": Key(str, "", "test.py: benchmark to test on when it is not `dataset` (cross-domain test; "
                  "docs/cross_domain.md)", check=lambda v: _benchmark(v) if v else None),
    "target_root": Key(str, "", "test.py: data_root of the target (default data/<target>)"),
    "target_list": Key(str, "", "test.py: list of the target (default lists/<target>/test.txt)"),
    "target_episodes": Key(int, 0, "test.py: episodes on the target (0: its published protocol)", check=_nonneg),
    "target_size": Key(int, 0, "test.py: test size on the target (0: its published protocol's; seeds and the "
                       "class-pixel rule always follow the target)", check=lambda v: None if v == 0 else _odd8(v)),
}


# Values of `training_reference` for the keys where the released code and the paper's text differ
# (docs/model.md, "Paper vs released code"); a key set in a YAML file or on the command line wins.
TRAINING_REFERENCES: dict[str, dict[str, Any]] = {
    "release": {"bg_dim": 256, "bg_init": "zeros", "do_pooling": "global", "pcl_negative_region": "nearest",
                "pcl_positive": "support_mask"},
    "paper": {"bg_dim": 640, "bg_init": "random", "do_pooling": "masked", "pcl_negative_region": "bilinear",
              "pcl_positive": "prototype"},
}


class Config(dict):
    """A validated config with attribute access (`cfg.shot`). Change it only through
    `replace()` (or attribute assignment, which validates one key): never with dict writes."""

    def replace(self, **changes: Any) -> "Config":
        """A validated copy with `changes` applied, checked as a whole (as load_config does)."""
        out = Config(self)
        for k, v in changes.items():
            dict.__setitem__(out, k, coerce(k, v, "replace()"))
        _finish(out, {k: "replace()" for k in changes})
        return out

    @property
    def num_train_classes(self) -> int:
        """Training classes of this benchmark and fold (sizes per-class model state)."""
        from util.data.benchmarks import get_benchmark
        return len(get_benchmark(self["dataset"]).base_classes(self["split"], self["coco_fold_style"]))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}'{_suggest(name)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = coerce(name, value)


def _suggest(name: str) -> str:
    if hint := foreign_hint(name):
        return hint
    close = difflib.get_close_matches(name, SCHEMA.keys(), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _type_name(t: type | tuple) -> str:
    return f"list of {t[1].__name__}" if isinstance(t, tuple) else t.__name__


def coerce(name: str, value: Any, origin: str = "") -> Any:
    """Check one value against the schema and return it in the declared type."""
    where = f" in {origin}" if origin else ""
    if name not in SCHEMA:
        raise ConfigError(f"unknown config key '{name}'{where}{_suggest(name)}; "
                          "see the key table in docs/configuration.md")
    key = SCHEMA[name]
    bad = ConfigError(f"config key '{name}'{where}: expected {_type_name(key.type)}, got {value!r}")
    if isinstance(key.type, tuple):
        items = value if isinstance(value, (list, tuple)) else [value]
        try:
            out = [_scalar(v, key.type[1], bad) for v in items]
        except ConfigError:
            raise bad from None
    else:
        if key.choices and "off" in key.choices and isinstance(value, bool):
            value = "on" if value else "off"  # YAML reads a bare `off` as false
        out = _scalar(value, key.type, bad)
    if msg := _out_of_bounds(out):
        raise ConfigError(f"config key '{name}'{where} = {value!r}: {msg}")
    if key.choices and out not in key.choices:
        raise ConfigError(f"config key '{name}'{where}: {out!r} is not one of {', '.join(map(str, key.choices))}")
    if key.check and (msg := key.check(out)):
        raise ConfigError(f"config key '{name}'{where} = {out!r}: {msg}")
    return out


def _out_of_bounds(out: Any) -> str | None:
    """Every number of every key, lists included: finite and of a size the code can use. A NaN
    passes comparisons like `v <= 0` unnoticed, so this runs before the per-key checks."""
    for v in out if isinstance(out, list) else [out]:
        if isinstance(v, float) and not math.isfinite(v):
            return "must be a finite number"
        if isinstance(v, float) and abs(v) > MAX_FLOAT:
            return f"must be at most {MAX_FLOAT:g} in size"
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
            return f"must be at most {MAX_INT} in size (32 bits)"
    return None


def _scalar(v: Any, t: type, bad: ConfigError) -> Any:
    if t is bool:
        if isinstance(v, bool):
            return v
        raise bad
    if t is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad
        return v
    if t is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad
        return int(v) if isinstance(v, int) else float(v)
    if t is str:
        if v is None:
            return ""
        if isinstance(v, (dict, list)):
            raise bad
        return str(v)
    raise bad


class _StrictLoader(yaml.SafeLoader):
    """yaml's safe loader with three limits for config files: an alias may only repeat a plain
    value (aliases of lists or mappings nest into exponential documents, the 'billion laughs'),
    every mapping key is a string, and a key given twice in one mapping is refused instead of the
    last one silently winning."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None and not isinstance(node, yaml.ScalarNode):
                raise yaml.MarkedYAMLError(problem=f"alias *{event.anchor} repeats a list or mapping; "
                                           "write the values out", problem_mark=event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise yaml.MarkedYAMLError(problem=f"key {key!r} is not a name", problem_mark=key_node.start_mark)
            if key in seen:
                raise yaml.MarkedYAMLError(problem=f"key '{key}' is set twice; keep one",
                                           problem_mark=key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _parse_yaml(path: str) -> Any:
    """The YAML document of one file; undecodable bytes and syntax errors name file:line."""
    text = read_utf8(path, "save the config as UTF-8", ConfigError)
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader with extra limits
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or str(e).split("\n")[0]
        raise ConfigError(f"config {path}{where}: not valid YAML ({what}): "
                          "fix that line (flat 'key: value' pairs)") from None


def _read_yaml(path: str, chain: tuple[str, ...] = (), notes: list[str] | None = None,
               order: list[str] | None = None) -> dict:
    """`key -> (value, file)` of one file over its `base:` files; `chain` holds the real
    paths of the files that named this one, so a loop is reported instead of recursing.
    A sectioned (PFENet/BAM) file is flattened; what that maps or drops is added to `notes`;
    `order` receives the files base first (a later file overrides an earlier one)."""
    real = os.path.realpath(path)
    if real in chain:
        loop = " -> ".join(os.path.basename(p) for p in chain[chain.index(real):] + (real,))
        raise ConfigError(f"config {path}: 'base' files form a loop ({loop}): "
                          "remove the 'base:' line that closes it")
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}; pick one under config/<dataset>/")
    data = _parse_yaml(path)
    if data is None:
        raise ConfigError(f"config {path} is empty (no 'key: value' lines): fill it, or start it "
                          "with 'base: <file>' to reuse another config")
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} holds a YAML {type(data).__name__}, not a mapping: "
                          "write one 'key: value' pair per line")
    base = data.pop("base", None)
    if is_sectioned(data, SCHEMA):
        data, mapped = flatten(data, path, SCHEMA)
        if notes is not None:
            notes += mapped
    merged: dict = {}
    if base is not None:
        if not isinstance(base, str) or not base:
            raise ConfigError(f"config {path}: 'base' must name one YAML file, got {base!r}")
        base_path = os.path.join(os.path.dirname(path), base)
        if not os.path.isfile(base_path):
            raise ConfigError(f"config {path}: base file '{base}' not found (looked for {base_path}; "
                              "a base path is relative to the file that names it)")
        merged = _read_yaml(base_path, chain + (real,), notes, order)
    for k, v in data.items():
        merged[k] = (v, path)
    if order is not None:
        order.append(path)
    return merged


def parse_overrides(pairs: Sequence[str]) -> list[tuple[str, Any]]:
    """`['shot', '5', 'base_lr', '0.01']` -> [('shot', 5), ('base_lr', 0.01)]; `k=v` tokens and
    `--cfg-options` are read as pairs too."""
    pairs = normalise_overrides(pairs)
    if len(pairs) % 2:
        raise ConfigError(f"overrides come in 'key value' pairs; '{pairs[-1]}' has no value")
    out = []
    for k, v in zip(pairs[::2], pairs[1::2]):
        try:
            out.append((k, yaml.safe_load(v) if v != "" else ""))
        except yaml.YAMLError:
            out.append((k, v))
    return out


def load_config(path: str | None, overrides: Iterable[str] | None = None) -> Config:
    """Schema defaults <- YAML file (and its bases) <- `key value` overrides. `cfg._notes`
    (files only) lists what was read from another framework's form (to be logged once the log is set up)."""
    cfg = Config({k: key.default for k, key in SCHEMA.items()})
    explicit: dict[str, str] = {}
    notes: list[str] = []
    order: list[str] = []
    if path:
        for k, (v, origin) in _read_yaml(path, notes=notes, order=order).items():
            dict.__setitem__(cfg, k, coerce(k, v, origin))
            explicit[k] = origin
        dict.__setitem__(cfg, "_config_path", path)
        dict.__setitem__(cfg, "_notes", notes)
    changed: dict[str, Any] = {}
    for k, v in parse_overrides(list(overrides or [])):
        before = dict.get(cfg, k)  # an unknown key is answered by coerce (UserError naming the nearest key)
        dict.__setitem__(cfg, k, coerce(k, v, "command line"))
        explicit[k] = "command line"
        if cfg[k] != before:
            changed[k] = cfg[k]
    for k, v in TRAINING_REFERENCES[cfg.training_reference].items():
        if k not in explicit:
            dict.__setitem__(cfg, k, v)
    _finish(cfg, explicit)
    layer = {k: order.index(o) if o in order else len(order) for k, o in explicit.items()}
    if (replaced := _apply_recipe(cfg, layer)) and path:
        notes.append(f"recipe {cfg.recipe!r} of {recipe_method(cfg)} on {cfg.dataset} (docs/protocols.md) "
                     f"replaces the values of earlier files: {replaced}")
    if trained := trained_overrides(cfg, changed):  # names the run's folder (util/engine/runtime.py)
        dict.__setitem__(cfg, "_trained_overrides", trained)
    return cfg


def _apply_recipe(cfg: Config, layer: dict[str, int]) -> str:
    """Set the recipe keys of cfg's method and benchmark (util/recipes.py) that were not set at
    the level of the keys choosing the recipe or later; `layer`: key -> index of the file that set
    it (the command line last). Returns the file values it replaced, as text."""
    try:
        recipe = find_recipe(cfg)
    except KeyError as e:
        raise ConfigError(f"config key 'recipe' = {cfg.recipe!r}: {e.args[0]}; see docs/protocols.md") from None
    if recipe is None:
        return ""
    chosen_at = max((layer.get(k, -1) for k in CHOOSERS), default=-1)
    replaced = []
    for k in RECIPE_KEYS:
        if layer.get(k, -1) < chosen_at or k not in layer:
            if k in layer and cfg[k] != recipe[k].value:
                replaced.append(f"{k} {cfg[k]!r} -> {recipe[k].value!r}")
            dict.__setitem__(cfg, k, recipe[k].value)
    _check_sizes(cfg)
    return ", ".join(replaced)


# variant keys that change only how a trained model is tested, not what is trained
TEST_TIME_VARIANTS = ("mmt_enhance_test", "bam_output")


def trained_overrides(cfg: Config, changed: dict[str, Any]) -> list[tuple[str, Any]]:
    """The command-line overrides that change what is trained (variant keys that matter for
    `cfg`, set to another value than the file's), sorted by key: they name the run's own
    experiment folder (docs/training.md, 'Where a run writes')."""
    keys = set(variant_keys(cfg)) - set(TEST_TIME_VARIANTS)
    return sorted((k, v) for k, v in changed.items() if k in keys)


def _finish(cfg: Config, explicit: dict[str, str]) -> None:
    """Whole-config rules: the values the method fixes (an explicit other value is an error),
    then cross-key consistency. `explicit`: key -> where it was set."""
    from model.methods import get_method
    method = get_method(cfg.model)
    for k, v in method.fixed.items():
        if cfg[k] != v and k in explicit:
            raise ConfigError(f"config key '{k}' = {cfg[k]!r} in {explicit[k]}: model '{method.name}' fixes it "
                              f"to {v!r}; remove it, or use another `model`")
        dict.__setitem__(cfg, k, v)
    _check_consistency(cfg)


def _check_sizes(cfg: Config) -> None:
    """PFENet's sizes satisfy (size - 1) % 8 == 0 (its x8 upsampling lands on the input size);
    FS-CS learners take any size (the iFSL release's 400 px)."""
    if cfg.ifsl:
        return
    for k in ("train_h", "train_w", "val_size"):
        if (msg := _odd8(cfg[k])) is not None:
            raise ConfigError(f"config key '{k}' = {cfg[k]!r}: {msg}")


def _check_consistency(cfg: Config) -> None:
    _check_sizes(cfg)
    if cfg.scale_min > cfg.scale_max:
        raise ConfigError(f"scale_min {cfg.scale_min} > scale_max {cfg.scale_max}: swap them")
    if cfg.rotate_min > cfg.rotate_max:
        raise ConfigError(f"rotate_min {cfg.rotate_min} > rotate_max {cfg.rotate_max}: swap them")
    if cfg.weak:
        _check_weak(cfg)


def _check_weak(cfg: Config) -> None:
    """Class-tag training: FS-CS only, ASNet only, and only where labels tag every class."""
    from util.data.benchmarks import BINARY_MASKS, get_benchmark
    if not cfg.ifsl:
        raise ConfigError("weak true (training on class tags) needs ifsl true (FS-CS episodes): set ifsl true, "
                          "or use model asnet")
    if cfg.model != "asnet":
        raise ConfigError(f"weak true trains on class tags alone, which model asnet supports; model "
                          f"'{cfg.model}' learns from masks: set weak false, or model asnet")
    if get_benchmark(cfg.dataset).label_format == BINARY_MASKS:
        raise ConfigError(f"weak true needs class tags, but {cfg.dataset} labels one class per image (binary "
                          "masks): whether its other classes appear is unknown; set weak false")


def dump_config(cfg: Config, path: str) -> None:
    """Write the effective config (every key) so a run can be reproduced from it alone."""
    data = {k: v for k, v in cfg.items() if k in SCHEMA}
    write_atomic(path, yaml.safe_dump(data, sort_keys=False))


def variant_keys(cfg: dict) -> list[str]:
    """The variant-marked keys that matter for this config (absent keys take defaults)."""
    out = []
    for k, key in SCHEMA.items():
        if key.variant is True or (callable(key.variant) and key.variant(cfg)):
            out.append(k)
    return out


def schema_table() -> str:
    """Markdown table of every key (docs/configuration.md's key reference is generated from this)."""
    rows = ["| key | type | default | meaning | report |", "|---|---|---|---|---|"]
    for k, key in SCHEMA.items():
        meaning = key.help + (f" ({' / '.join(map(str, key.choices))})" if key.choices else "")
        variant = "" if key.variant is False else "variant" if key.variant is True else "variant (when relevant)"
        rows.append(f"| `{k}` | {_type_name(key.type)} | `{key.default!r}` | {meaning} | {variant} |")
    return "\n".join(rows)


if __name__ == "__main__":  # `python -m util.config`: the key table of docs/configuration.md
    import sys
    sys.stdout.write(schema_table() + "\n")
