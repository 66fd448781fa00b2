"""Measurement tools: training/evaluation speed (speed.py), class-index build time (index.py),
host memory over a run (memory.py). Each is a command, `python -m util.bench[.index|.memory]`."""
