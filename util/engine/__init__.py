"""The training/evaluation engine: devices and seeds, distributed runs, checkpoints, the output
folder guard, the event writer, precision and the one evaluation loop."""
