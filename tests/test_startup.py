"""`--help` and argument mistakes are answered before torch is imported (structural check, not a
timing test: torch takes seconds to import on a loaded machine). One fresh interpreter runs every
entry point as `__main__` in turn and reports, after each exit, its code and whether torch loaded."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ("train.py", "test.py", "test_gfss.py", "test_recall.py", "train_base.py", "predict.py",
           "pretrain_prior.py")
MODULES = ("util.prepare", "util.report", "util.bench", "util.bench.index", "util.bench.memory")

PROBE = r"""
import contextlib, io, json, runpy, sys
out = []
for kind, target, args in json.loads(sys.argv[1]):
    sys.argv = [target, *args]
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            if kind == "path":
                runpy.run_path(target, run_name="__main__")
            else:
                runpy.run_module(target, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code
    out.append([target, args, code, "torch" in sys.modules, err.getvalue()[-300:]])
print(json.dumps(out))
"""


def _probe(cases):
    res = subprocess.run([sys.executable, "-c", PROBE, json.dumps(cases)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_help_of_every_entry_point_does_not_import_torch():
    cases = [["path", s, ["--help"]] for s in SCRIPTS] + [["module", m, ["--help"]] for m in MODULES]
    cases += [["module", "util.bench", ["compare", "--help"]]]
    for target, args, code, torch_loaded, err in _probe(cases):
        assert code == 0, (target, err)
        assert not torch_loaded, f"{target} --help imported torch"


def test_argument_mistakes_are_answered_before_torch(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    cases = [["path", "train.py", []],                                   # no --config: argparse usage
             ["path", "test.py", ["--config", missing]],                 # a config that is not there
             ["path", "train.py", ["--config", "config/toy/toy_split0_vgg.yaml", "no_such_key", "1"]],
             ["path", "predict.py", ["--bogus"]],                        # an unknown option
             ["path", "pretrain_prior.py", ["--config", missing]],
             ["module", "util.bench", ["--steps", "0", "--config", missing]],   # out of range
             ["module", "util.bench", ["compare", "--rounds", "-1"]]]
    results = _probe(cases)
    for target, args, code, torch_loaded, err in results:
        assert code == 2, (target, args, err)
        assert not torch_loaded, f"{target} {args} imported torch before answering"
    assert "error: config file not found" in results[1][4] and "nope.yaml" in results[1][4]
    assert "no_such_key" in results[2][4]


def test_a_valid_command_line_goes_on_to_the_run(tmp_path):
    """The early check only decides whether to go on: a correct config reaches the real run,
    which then loads torch (here it stops at the missing checkpoint, a user error)."""
    cases = [["path", "test.py", ["--config", "config/toy/toy_split0_vgg.yaml", "save_path", str(tmp_path / "x")]]]
    (target, args, code, torch_loaded, err), = _probe(cases)
    assert code == 2 and torch_loaded, err
    assert "error:" in err
