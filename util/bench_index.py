"""`python -m util.bench_index ...`: alias of `python -m util.bench.index ...` (util/bench/index.py)."""

if __name__ == "__main__":
    from util.bench.index import main
    from util.engine.runtime import run_cli

    run_cli(main)
