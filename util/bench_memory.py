"""`python -m util.bench_memory ...`: alias of `python -m util.bench.memory ...` (util/bench/memory.py)."""

if __name__ == "__main__":
    from util.bench.memory import main
    from util.engine.runtime import run_cli

    run_cli(main)
