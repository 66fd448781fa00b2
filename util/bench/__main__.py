"""`python -m util.bench --config FILE [key value ...]` (util/bench/speed.py) and
`python -m util.bench compare [--reference DIR] [...]` (util/bench/compare.py). The command line
is read (util/bench/cli.py) before the measurement code and torch load."""
import sys

from util.bench.cli import compare_parser, speed_parser
from util.engine.runtime import run_cli

if sys.argv[1:2] == ["compare"]:
    compare_parser().parse_args(sys.argv[2:])  # --help and mistakes: answered here, before torch
    from util.bench.compare import main

    run_cli(lambda _argv: main(sys.argv[2:]))
else:
    speed_parser().parse_args(sys.argv[1:])
    from util.bench.speed import main

    run_cli(main)
