"""`python -m util.toy [options]`: the toy generator's own command, the same as
`python -m util.prepare toy [options]` (util/prepare/toy.py)."""

if __name__ == "__main__":
    from util.engine.runtime import run_cli, setup_logging
    from util.prepare.toy import main

    setup_logging()
    run_cli(main)
