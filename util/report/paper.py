"""Published numbers to print beside our results (class mIoU / FB-IoU / precision, percent).

Source: the NTRENet paper ("Learning Non-target Knowledge for Few-shot Semantic Segmentation",
CVPR 2022), Tables 1-4. PFENet's rows are
taken from the same Tables 1 and 2 (as NTRENet cites them), so the baseline can be compared
against PFENet's published numbers. Fig. 6 (BG prototype width D) is a plot: the paper's
text gives no values, only which D is best (see BG_DIM_BEST).
"""
from __future__ import annotations

from typing import NamedTuple


class FoldRow(NamedTuple):
    """Folds 0-3, their mean, and the fold-averaged FB-IoU (None: not reported)."""

    folds: tuple[float | None, float | None, float | None, float | None]
    mean: float | None
    fbiou: float | None


# Tables 1 (PASCAL-5i) and 2 (COCO-20i), NTRENet rows: (dataset, backbone, shot) -> FoldRow.
NTRENET: dict[tuple[str, str, int], FoldRow] = {
    ("pascal", "vgg", 1): FoldRow((57.7, 67.6, 57.1, 53.7), 59.0, 73.1),
    ("pascal", "resnet50", 1): FoldRow((65.4, 72.3, 59.4, 59.8), 64.2, 77.0),
    ("pascal", "resnet101", 1): FoldRow((65.5, 71.8, 59.1, 58.3), 63.7, 75.3),
    ("pascal", "vgg", 5): FoldRow((60.3, 68.0, 55.2, 57.1), 60.2, 74.2),
    ("pascal", "resnet50", 5): FoldRow((66.2, 72.8, 61.7, 62.2), 65.7, 78.4),
    ("pascal", "resnet101", 5): FoldRow((67.9, 73.2, 60.1, 66.8), 67.0, 78.2),
    ("coco", "resnet50", 1): FoldRow((36.8, 42.6, 39.9, 37.9), 39.3, 68.5),
    ("coco", "resnet101", 1): FoldRow((38.3, 40.4, 39.5, 38.1), 39.1, 67.5),
    ("coco", "resnet50", 5): FoldRow((38.2, 44.1, 40.4, 38.4), 40.3, 69.2),
    ("coco", "resnet101", 5): FoldRow((42.3, 44.4, 44.2, 41.7), 43.2, 69.6),
}

# PFENet rows of Tables 1 and 2 (PFENet's own published numbers). Table 2 lists PFENet
# only for ResNet-101 on COCO.
PFENET: dict[tuple[str, str, int], FoldRow] = {
    ("pascal", "vgg", 1): FoldRow((56.9, 68.2, 54.4, 52.4), 58.0, 72.3),
    ("pascal", "resnet50", 1): FoldRow((61.7, 69.5, 55.4, 56.3), 60.8, 73.3),
    ("pascal", "resnet101", 1): FoldRow((60.5, 69.4, 54.4, 55.9), 60.1, 72.9),
    ("pascal", "vgg", 5): FoldRow((59.0, 69.1, 54.8, 52.9), 59.0, 72.3),
    ("pascal", "resnet50", 5): FoldRow((63.1, 70.7, 55.8, 57.9), 61.9, 73.9),
    ("pascal", "resnet101", 5): FoldRow((62.8, 70.4, 54.9, 57.6), 61.4, 73.5),
    ("coco", "resnet101", 1): FoldRow((34.3, 33.0, 32.3, 30.1), 32.4, 58.6),
    ("coco", "resnet101", 5): FoldRow((38.5, 38.6, 38.2, 34.3), 37.4, 61.9),
}

# Table 3: module ablation, PASCAL-5i, ResNet-50, 1-shot. Keyed by variant label (see
# report.variant_label). Values: folds 0-3, mean mIoU, precision of the foreground.
ABLATION_SETTING = ("pascal", "resnet50", 1)
ABLATION: dict[str, tuple[tuple[float, float, float, float], float, float]] = {
    "baseline": ((60.8, 68.2, 55.4, 55.3), 60.0, 61.9),
    "+BGEM": ((63.2, 71.1, 57.7, 57.4), 62.4, 62.8),
    "+BGEM+DOEM": ((64.7, 71.9, 58.8, 59.0), 63.6, 63.3),
    "+BGEM+DOEM+PCL": ((65.4, 72.3, 59.4, 59.8), 64.2, 63.6),
}

# Table 4: PCL negatives, PASCAL-5i 1-shot (ResNet-50: its DO row equals Table 1's R50 row).
# Keyed by the `pcl_negatives` config value. No FB-IoU is reported.
PCL_NEGATIVES_SETTING = ("pascal", "resnet50", 1)
PCL_NEGATIVES: dict[str, FoldRow] = {
    "nontarget": FoldRow((63.7, 69.0, 57.8, 56.8), 61.8, None),
    "bg": FoldRow((64.4, 68.7, 58.4, 58.6), 62.6, None),
    "do": FoldRow((65.4, 72.3, 59.4, 59.8), 64.2, None),
}

# Fig. 6: BG prototype width D, PASCAL-5i 1-shot. Values only in the plot, not the text.
BG_DIM_USED = 640
BG_DIM_BEST = {"fold0": 640, "fold1": 640, "fold2": 512, "fold3": 512, "mean": 640}
BG_DIM_NOTE = ("Fig. 6 gives no numbers in the paper's text: 640 is best for folds 0, 1 and "
               "the mean, 512 for folds 2 and 3; the paper uses D = 640 (released code 256).")

BACKBONE_NAMES = {"vgg": "VGG-16", "resnet50": "ResNet-50", "resnet101": "ResNet-101"}

# SCNet (Chen et al., "SCNet: Enhancing Few-Shot Semantic
# Segmentation by Self-Contrastive Background Prototypes"). SCNet reports class mIoU only (no
# FB-IoU). Tables 1 (PASCAL-5i) and 2 (COCO-20i), SCNet rows, n = 3 clusters, lambda = 0.5;
# its PFENet rows on PASCAL equal PFENET above. Tables 4 (support vs query BG prototypes) and
# 6 (spatial-pyramid prototypes) are variants this code does not implement.
SCNET_PUBLISHED = (3, 0.5)  # (scnet_clusters, scnet_lambda) of Tables 1 and 2
SCNET: dict[tuple[str, str, int], FoldRow] = {
    ("pascal", "vgg", 1): FoldRow((58.0, 68.9, 57.0, 52.2), 59.0, None),
    ("pascal", "resnet50", 1): FoldRow((62.2, 70.5, 61.1, 58.1), 63.0, None),
    ("pascal", "resnet101", 1): FoldRow((63.1, 71.1, 63.8, 57.9), 64.0, None),
    ("pascal", "vgg", 5): FoldRow((59.8, 70.0, 62.7, 57.7), 62.6, None),
    ("pascal", "resnet50", 5): FoldRow((63.3, 72.0, 68.4, 60.2), 66.0, None),
    ("pascal", "resnet101", 5): FoldRow((67.5, 73.3, 67.9, 63.1), 68.0, None),
    ("coco", "resnet50", 1): FoldRow((35.7, 41.9, 37.2, 39.0), 38.4, None),
    ("coco", "resnet101", 1): FoldRow((38.3, 43.1, 40.0, 39.1), 40.1, None),
    ("coco", "resnet50", 5): FoldRow((39.6, 45.5, 41.9, 41.3), 42.1, None),
    ("coco", "resnet101", 5): FoldRow((44.0, 47.7, 45.0, 42.8), 44.8, None),
}

# SCNet Tables 3 (clusters n, lambda 0.5) and 5 (lambda, n = 3): PASCAL-5i, ResNet-50, 1-shot.
# n = 0 and lambda = 0 are the baseline (PFENet's published R50 row).
SCNET_ABLATION_SETTING = ("pascal", "resnet50", 1)
SCNET_CLUSTERS: dict[int, FoldRow] = {
    0: FoldRow((61.7, 69.5, 55.4, 56.3), 60.8, None),
    1: FoldRow((61.7, 70.1, 60.4, 55.0), 61.8, None),
    2: FoldRow((61.9, 70.0, 61.6, 55.8), 62.3, None),
    3: FoldRow((62.2, 70.5, 61.1, 58.1), 63.0, None),
    4: FoldRow((62.0, 70.3, 62.0, 56.1), 62.6, None),
    5: FoldRow((61.3, 70.1, 60.1, 56.6), 62.0, None),
}
SCNET_LAMBDA: dict[float, FoldRow] = {
    0.0: FoldRow((61.7, 69.5, 55.4, 56.3), 60.8, None),
    0.1: FoldRow((61.1, 69.9, 58.2, 57.3), 61.6, None),
    0.3: FoldRow((60.8, 70.1, 60.5, 57.0), 62.1, None),
    0.5: FoldRow((62.2, 70.5, 61.1, 58.1), 63.0, None),
    0.7: FoldRow((61.2, 70.3, 61.4, 57.2), 62.5, None),
    0.9: FoldRow((59.8, 69.2, 60.0, 53.3), 57.7, None),
    1.0: FoldRow((17.2, 28.8, 33.2, 21.0), 25.1, None),
}
SCNET_LAMBDA_NOTE = ("SCNet's Table 5 prints a mean of 57.7 for lambda = 0.9, but its four folds average "
                     "60.6; the printed value is shown.")

# QGNet ("Few-Shot Segmentation with Global and Local Contrastive Learning"): Tables I (PASCAL-5i)
# and III (COCO-20i) at 473 x 473; FB-IoU from Tables II and IV. Table II's method names are lost
# in the paper's text; its last row (72.2 / 73.9, "Ours" by position) is taken as the ResNet-50
# row, the paper's default setting. The 321 x 321 rows are in QGNET_321 (not a report variant).
QGNET: dict[tuple[str, str, int], FoldRow] = {
    ("pascal", "vgg", 1): FoldRow((58.6, 67.2, 52.3, 52.0), 57.5, None),
    ("pascal", "resnet50", 1): FoldRow((63.4, 69.4, 55.1, 58.4), 61.6, 72.2),
    ("pascal", "resnet101", 1): FoldRow((60.3, 69.3, 53.3, 57.4), 60.1, None),
    ("pascal", "vgg", 5): FoldRow((58.7, 68.4, 52.6, 55.0), 58.7, None),
    ("pascal", "resnet50", 5): FoldRow((64.7, 71.0, 53.6, 61.6), 62.8, 73.9),
    ("pascal", "resnet101", 5): FoldRow((67.6, 71.8, 55.1, 64.4), 64.7, None),
    ("coco", "resnet50", 1): FoldRow((36.7, 41.4, 38.7, 36.6), 38.3, 62.4),
    ("coco", "resnet50", 5): FoldRow((41.5, 48.1, 46.3, 43.6), 44.8, 66.2),
}
QGNET_321: dict[tuple[str, str, int], FoldRow] = {
    ("pascal", "vgg", 1): FoldRow((52.9, 65.0, 50.7, 51.6), 55.0, None),
    ("pascal", "resnet50", 1): FoldRow((57.9, 67.2, 52.4, 55.5), 58.2, None),
    ("pascal", "resnet101", 1): FoldRow((57.6, 67.5, 53.0, 53.6), 57.9, None),
    ("pascal", "vgg", 5): FoldRow((56.8, 67.3, 51.2, 58.2), 58.3, None),
    ("pascal", "resnet50", 5): FoldRow((59.2, 69.4, 53.0, 64.5), 61.5, None),
    ("pascal", "resnet101", 5): FoldRow((58.6, 66.5, 53.3, 53.6), 58.0, None),
    ("coco", "resnet50", 1): FoldRow((34.4, 38.5, 34.6, 33.2), 35.2, None),
    ("coco", "resnet50", 5): FoldRow((38.9, 46.2, 39.1, 38.9), 40.7, None),
}
# Pre-training epochs of the published rows (Sec. V-A).
QGNET_PRIOR_EPOCHS = {"pascal": 1000, "coco": 200}
# Tables V (patch generator x epochs) and VI (which contrastive terms), PASCAL-5i, ResNet-50,
# 1-shot, keyed by (prior_patches, prior_epochs, prior_global, prior_local). Table VI's first
# row lost its check mark in the paper's text; with the global-only row and the full row given,
# it is read as local only.
QGNET_PRIOR_SETTING = ("pascal", "resnet50", 1)
QGNET_PRIOR_ABLATION: dict[tuple[str, int, bool, bool], FoldRow] = {
    ("felzenszwalb", 1000, True, True): FoldRow((62.6, 68.9, 54.9, 56.7), 60.8, None),
    ("felzenszwalb", 2000, True, True): FoldRow((62.7, 69.3, 54.7, 56.8), 60.9, None),
    ("slic", 1000, True, True): FoldRow((63.4, 69.4, 55.1, 58.4), 61.6, None),
    ("slic", 2000, True, True): FoldRow((62.4, 69.4, 55.2, 57.0), 61.0, None),
    ("slic", 1000, False, True): FoldRow((63.2, 69.3, 54.9, 57.4), 61.2, None),
    ("slic", 1000, True, False): FoldRow((62.2, 69.7, 54.5, 57.5), 60.9, None),
}
# Table VII: recall of the prior region map against the query mask, fold 0, thresholds 0.1..0.9
# (the guided map's row is empty in the paper's text).
QGNET_PRIOR_RECALL = (99.9, 99.9, 99.1, 96.5, 89.7, 76.2, 54.7, 28.2, 6.6)
