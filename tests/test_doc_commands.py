"""Every command in the README's and docs' bash blocks works as written: programs, scripts, make
targets and modules exist, every config a command names loads with the overrides it gives, the
data-preparation options parse, and the cheap ones run in a fresh shell that only did the
README's setup (`source .venv/bin/activate`): `--help` of each entry point, the report on a
fixture, a config error through train.sh."""
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from test_report import write_result
from util.config import load_config
from util.prepare.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP = ("source", "mkdir", "tar", "python3")  # setup and shell steps, no project command


def commands() -> list[tuple[str, list[str]]]:
    """(page, argv) of every command in a bash block: continuations joined, comments, `&&`
    chains and leading VAR=value assignments split off, `[optional ...]` placeholders dropped,
    `for v in ...; do ... done` loops unrolled."""
    out = []
    for page in DOCS:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
            loop: tuple[str, list[str]] | None = None
            for line in block.replace("\\\n", " ").splitlines():
                line = re.split(r"\s#", " " + line)[0]
                for part in re.split(r"&&|;", line):
                    argv = shlex.split(re.sub(r"\[[^\]]*\]", "", part))
                    while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):
                        argv = argv[1:]
                    if argv[:1] == ["for"]:
                        loop = (argv[1], argv[3:])
                    elif argv[:1] == ["done"]:
                        loop = None
                    elif argv[:1] == ["do"] or not argv or argv[0] in SKIP:
                        continue
                    elif loop is not None:
                        out += [(page.name, [a.replace(f"${loop[0]}", v) for a in argv]) for v in loop[1]]
                    else:
                        out.append((page.name, argv))
    return out


COMMANDS = commands()


def _config_args(argv: list[str]) -> tuple[str, list[str]]:
    """--config FILE and the `key value` overrides after it (other --options skipped)."""
    i = argv.index("--config")
    rest, overrides, j = argv[i + 2:], [], 0
    while j < len(rest):
        if rest[j].startswith("--"):
            j += 1
            while j < len(rest) and not rest[j].startswith("--"):
                j += 1
            continue
        overrides.append(rest[j])
        j += 1
    return argv[i + 1], overrides


def check(argv: list[str]) -> None:
    prog, args = argv[0], argv[1:]
    if prog.endswith("/pip"):
        assert (ROOT / args[args.index("-r") + 1]).is_file()
    elif prog == "make":
        targets = re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M)
        assert args[0] in targets, f"no make target {args[0]}"
    elif prog in ("sh", "bash"):
        script, rest = args[0], args[1:]
        assert (ROOT / script).is_file(), f"no script {script}"
        if script in ("train.sh", "test.sh") and "$" not in " ".join(rest):
            path = ROOT / "config" / rest[0] / f"{rest[0]}_{rest[1]}.yaml"
            load_config(str(path), rest[2:])
        elif script == "scripts/run_folds.sh":
            for split in range(4):
                load_config(str(ROOT / "config" / rest[0] / f"{rest[0]}_split{split}_{rest[1]}.yaml"), rest[2:])
    elif prog in ("python", "torchrun"):
        if args[0] == "-m":
            assert importlib.util.find_spec(args[1]) is not None, f"no module {args[1]}"
            if args[1] == "util.prepare":
                build_parser().parse_args(args[2:])
            return
        script = next(a for a in args if a.endswith(".py"))
        assert (ROOT / script).is_file(), f"no script {script}"
        if "--config" in args:
            config, overrides = _config_args(args)
            if config.startswith("config/"):
                load_config(str(ROOT / config), overrides)
    else:
        pytest.fail(f"unrecognised command {argv}: teach this test what it is")


def test_the_pages_have_commands():
    progs = {argv[0] for _, argv in COMMANDS}
    assert {"make", "sh", "python"} <= progs and len(COMMANDS) > 40


@pytest.mark.parametrize("page, argv", COMMANDS, ids=[f"{p}:{' '.join(a)[:60]}" for p, a in COMMANDS])
def test_documented_command_is_valid(page, argv):
    check(argv)


def test_check_catches_broken_commands():
    for bad in (["make", "nosuchtarget"], ["sh", "train.sh", "pascal", "split9_resnet50"],
                ["sh", "train.sh", "pascal", "split0_resnet50", "bse_lr", "1"],
                ["python", "-m", "util.nosuch"], ["python", "-m", "util.prepare", "toy", "--nosuch"]):
        with pytest.raises((AssertionError, SystemExit, Exception)):
            check(bad)


def activated_env(home: Path) -> dict:
    """A fresh shell after `source .venv/bin/activate`: the venv first on PATH, nothing else."""
    venv = Path(sys.prefix)  # the environment running the suite: .venv under `make test`
    return {"PATH": f"{venv}/bin:/usr/bin:/bin", "VIRTUAL_ENV": str(venv), "HOME": str(home),
            "LANG": "C.UTF-8"}


def entry_points() -> list[list[str]]:
    """`python X.py` / `python -m M` entry points the pages use, each once."""
    seen = []
    for _, argv in COMMANDS:
        if argv[0] != "python":
            continue
        entry = argv[1:3] if argv[1] == "-m" else [argv[1]]
        if entry not in seen:
            seen.append(entry)
    return seen


def test_cheap_commands_run_in_a_fresh_shell(tmp_path):
    env = activated_env(tmp_path)
    entries = entry_points()
    assert ["train.py"] in entries and ["-m", "util.report"] in entries
    runs = {" ".join(e): subprocess.Popen(["python", *e, "--help"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True) for e in entries}
    # the report command of the README on a fixture folder
    write_result(tmp_path / "exp" / "pascal", "split0_resnet50/model", split=0, miou=63.1)
    report = [argv for _, argv in COMMANDS if argv[:3] == ["python", "-m", "util.report"]][0]
    runs["report"] = subprocess.Popen(["python", *report[1:3], str(tmp_path / "exp" / "pascal")], cwd=ROOT,
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # a config mistake through the documented script: one line, exit 2, nothing written
    runs["train.sh"] = subprocess.Popen(["sh", "train.sh", "toy", "split0_vgg", "epochs", "0"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = {name: (p.wait(timeout=300), *p.communicate()) for name, p in runs.items()}
    for name, (code, out, err) in done.items():
        if name == "train.sh":
            assert code == 2 and err.startswith("error: config key 'epochs'"), (name, out, err)
        else:
            assert code == 0, (name, out, err)
    assert "usage:" in done["train.py"][1] and "--config" in done["train.py"][1]
    assert "63.1" in done["report"][1]
    assert not (ROOT / "exp" / "toy" / "split0_vgg").exists()


def test_readme_activates_before_its_first_python_command():
    readme = (ROOT / "README.md").read_text()
    assert readme.index("source .venv/bin/activate") < readme.index("python -m util.prepare")


def shell_scripts() -> list[tuple[str, str]]:
    """(shell, script) of every script the pages run through `sh` or `bash`, and of every script
    under scripts/ and at the top level, with the shell its `# usage:` line names."""
    pairs = {(argv[0], argv[1]) for _, argv in COMMANDS if argv[0] in ("sh", "bash")}
    for path in [*sorted(ROOT.glob("*.sh")), *sorted((ROOT / "scripts").glob("*.sh"))]:
        usage = re.search(r"^# usage: (?:\[[^\]]*\] )?(sh|bash) ", path.read_text(), flags=re.M)
        if usage:
            pairs.add((usage.group(1), str(path.relative_to(ROOT))))
    return sorted(pairs)


@pytest.mark.parametrize("shell, script", shell_scripts())
def test_script_runs_through_the_shell_the_text_names(tmp_path, shell, script):
    """`sh` is dash on Debian (no `set -o pipefail`): each script, started exactly as written,
    gets as far as checking its arguments and answers a wrong one with one clear line, exit 2."""
    env = activated_env(tmp_path)
    done = subprocess.run([shell, script, "nosuch", "nosuch"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, (shell, script, done.stdout, done.stderr)
    assert done.stderr.startswith(("error: ", "usage: ")) and "Illegal option" not in done.stderr, done.stderr


def test_scripts_are_covered():
    covered = {script for _, script in shell_scripts()}
    assert {"train.sh", "test.sh", "scripts/run_folds.sh", "scripts/tensorboard.sh"} <= covered
