"""QGNet (Liu et al., "Few-Shot Segmentation with Global and Local Contrastive Learning"):
PFENet's two-branch network guided by the query's own prior region map.

Self-correspondence: the frozen, contrastively pre-trained prior extractor gives the prior
region map of the query (model/qgnet/prior_region.py). Cross-correspondence: the guided region map
(PFENet's prior mask C_p: masked support features against the bridge features) and the
category guider (the masked-average support prototype). Both maps are concatenated with the
category guider and the bridge features and decoded by FEM (Sec. IV-B, Fig. 2). That is the
NTRENet network of this project with its BG/DO modules and PCL off and the prior region map
as a second prior channel, so QGNet is built by the same builder with those values fixed.
"""
from __future__ import annotations

from model.method import Method
from model.ntrenet.ntrenet import build

METHOD = Method("qgnet", build, network="ntrenet",
                fixed={"use_bgem": False, "use_doem": False, "use_pcl": False, "qgnet_prior": True})
