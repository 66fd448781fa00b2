"""The schema: every config key declared once with its type, default, checks and meaning, and
which keys tell runs apart in the report (docs/configuration.md)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable
from util.errors import UserError
from util.config.recipes import PUBLISHED


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
    from model.method import METHODS
    return None if METHODS.find(v) is not None else f"is not a method; use one of {', '.join(METHODS.names())}"


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
    "model": Key(str, "ntrenet", "method, one module of model/<family>/ each: ntrenet; pfenet = ntrenet with every "
                 "module off; qgnet = pfenet + the prior region map; bam; asnet, hsnet (FS-CS)",
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


def _type_name(t: type | tuple) -> str:
    return f"list of {t[1].__name__}" if isinstance(t, tuple) else t.__name__


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
