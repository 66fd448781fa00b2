"""Published cross-domain numbers to print beside ours (class mIoU, percent).

PATNet: "Cross-Domain Few-Shot Semantic Segmentation" (ECCV 2022), Table 1 (ResNet-50, trained
on PASCAL VOC with every class, tested on the four targets): its own row and PFENet's as it
reports it. MMT: "Remember the Difference: Cross-Domain Few-Shot Semantic Segmentation via
Meta-Memory Transfer" (CVPR 2022): its COCO-20i -> SUIM and PASCAL-5i -> SUIM tables (ResNet-50,
"Ours" rows) and its COCO-20i -> PASCAL-5i ablation (1-shot, mean mIoU).
Each suite row's four targets average to its published mean column (tested), which guards the
transcription of single cells.
"""
from __future__ import annotations

# target -> {shot: mIoU}, and the mean over the four targets
SUITE_TARGETS = ("deepglobe", "isic", "chestxray", "fss1000")
PATNET = {"deepglobe": {1: 37.89, 5: 42.97}, "isic": {1: 41.16, 5: 53.58}, "chestxray": {1: 66.61, 5: 70.20},
          "fss1000": {1: 78.59, 5: 81.23}, "mean": {1: 56.06, 5: 61.99}}
PFENET_SUITE = {"deepglobe": {1: 16.88, 5: 18.01}, "isic": {1: 23.50, 5: 23.83}, "chestxray": {1: 27.22, 5: 27.57},
                "fss1000": {1: 70.87, 5: 70.52}, "mean": {1: 34.62, 5: 34.98}}

# source benchmark -> folds 0-3 and mean, MMT ("Ours"), ResNet-50, to SUIM
MMT_SUIM = {"coco": ((30.5, 38.6, 42.5, 36.6), 37.1), "pascal": ((35.2, 33.4, 34.3, 36.0), 34.7)}

# COCO-20i -> PASCAL-5i ablation, 1-shot mean mIoU: (Cons, MEnS, MEnT) -> value; None = no MMT (BS)
MMT_ABLATION = {None: 57.4, (True, False, False): 62.8, (True, True, False): 63.5, (False, True, True): 62.5,
                (True, True, True): 65.6}
MMT_ABLATION_ROWS = {None: "BS", (True, False, False): "(a) Cons", (True, True, False): "(b) Cons+MEnS",
                     (False, True, True): "(c) MEnS+MEnT", (True, True, True): "(d) Cons+MEnS+MEnT"}
