"""`python -m util.bench --config FILE [key value ...]` (see util/bench/speed.py)."""
from util.bench.speed import main
from util.engine.runtime import run_cli

run_cli(main)
