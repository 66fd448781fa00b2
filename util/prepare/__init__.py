"""Offline data preparation: one module per source (pascal, coco, toy), shared helpers in
common.py, the `python -m util.prepare SOURCE ...` command in cli.py."""
from util.prepare.cli import main

__all__ = ["main"]
