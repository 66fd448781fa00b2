"""The suite writes only under temporary folders: conftest fails a run that leaves anything new
under exp/, lists/, data/ or initmodel/ (checked here on a throwaway repository)."""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_suite(repo, body):
    (repo / "tests").mkdir(exist_ok=True)
    shutil.copy(os.path.join(ROOT, "tests", "conftest.py"), repo / "tests" / "conftest.py")
    (repo / "tests" / "test_one.py").write_text(body)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": ROOT, "HOME": str(repo)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=300)


def test_leftovers_fail_the_run(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("exp/*\n")
    leak = "import os\ndef test_leak():\n    os.makedirs('exp/toy/run/result')\n    open('exp/toy/run/result/x.log', 'w').close()\n"
    r = _run_suite(tmp_path, leak)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "left files in the working tree" in r.stdout and "exp/toy/run/result/x.log" in r.stdout
    shutil.rmtree(tmp_path / "exp")
    r = _run_suite(tmp_path, "def test_tidy(tmp_path):\n    (tmp_path / 'x').write_text('ok')\n")
    assert r.returncode == 0, r.stdout + r.stderr
