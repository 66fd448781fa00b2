"""Layers shared by several methods: conv blocks, masked average pooling (prototypes), PFENet's prior mask and FEM."""
