"""Meta-memory transfer ("Remember the Difference: Cross-Domain Few-Shot Semantic Segmentation via
Meta-Memory Transfer", CVPR 2022), an option of the NTRENet/PFENet network (`use_mmt` key)."""
