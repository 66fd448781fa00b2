"""`python -m util.bench --config FILE [key value ...]` (util/bench/speed.py) and
`python -m util.bench compare [--reference DIR] [...]` (util/bench/compare.py)."""
import sys

from util.engine.runtime import run_cli

if sys.argv[1:2] == ["compare"]:
    from util.bench.compare import main

    run_cli(lambda _argv: main(sys.argv[2:]))
else:
    from util.bench.speed import main

    run_cli(main)
