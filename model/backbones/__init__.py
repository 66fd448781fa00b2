"""Backbones shared by every method: the frozen encoder (ResNet, VGG), its ResNet, BN folding."""
