"""SCNet's self-contrastive query branch ("Self-Contrastive Network for Few-Shot Segmentation"),
an option of the NTRENet/PFENet network (`scnet` key)."""
