"""PFENet (Tian et al., "Prior Guided Feature Enrichment Network for Few-Shot Segmentation"):
NTRENet with its BG/DO elimination and PCL switched off, which is PFENet's network exactly
(docs/model.md, "Paper vs code")."""
from __future__ import annotations

from model.method import Method
from model.ntrenet.ntrenet import build

METHOD = Method("pfenet", build, network="ntrenet",
                fixed={"use_bgem": False, "use_doem": False, "use_pcl": False})
