"""Third bad-input catalogue, class "data lost": setting a run aside for `overwrite true` never
deletes what it did not move, and a restore puts back exactly what was moved; logging survives a
full or unwritable disk (docs/reliability.md)."""
import errno
import io
import logging
import os

import pytest

import util.engine.guard as guard
from util.engine.guard import PREVIOUS, claim_output_dir
from util.engine.runtime import setup_logging
from util.errors import UserError


def old_run(folder):
    for name, data in (("model/last.pth", b"old-last"), ("model/best.pth", b"old-best"),
                       ("tb/events.out.tfevents.1.h", b"old-ev"), ("result/config.yaml", b"old: 1")):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def contents(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize("fail_at", [0, 1, 3])
def test_a_set_aside_failing_midway_leaves_the_old_run_whole(tmp_path, monkeypatch, fail_at):
    """Any file's move may fail (cross-device, permission); the files not yet moved stay put."""
    old_run(tmp_path)
    before = contents(tmp_path)
    real, calls = guard._move, []

    def flaky(src, dst):
        calls.append(src)
        if len(calls) > fail_at and PREVIOUS not in src:  # moving aside fails, moving back works
            raise OSError(errno.EACCES, "Permission denied")
        real(src, dst)
    monkeypatch.setattr(guard, "_move", flaky)
    with pytest.raises(UserError, match=r"cannot set the previous run .* aside \(Permission denied\)"):
        claim_output_dir(str(tmp_path), resume="", overwrite=True)
    monkeypatch.setattr(guard, "_move", real)
    assert contents(tmp_path) == before
    assert not (tmp_path / PREVIOUS).exists()


def test_a_model_folder_on_another_disk_is_copied_checked_and_restored(tmp_path, monkeypatch):
    """`model/` linked to another filesystem: rename fails with EXDEV, the copy path is taken."""
    old_run(tmp_path)
    before = contents(tmp_path)
    real = os.replace

    def cross_device(src, dst):
        if "/model/" in str(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real(src, dst)
    monkeypatch.setattr(guard.os, "replace", cross_device)
    claim = claim_output_dir(str(tmp_path), resume="", overwrite=True)
    assert not (tmp_path / "model/last.pth").exists()
    assert (tmp_path / PREVIOUS / "model/last.pth").read_bytes() == b"old-last"
    (tmp_path / "tb/events.out.tfevents.2.h").write_bytes(b"new-ev")  # the new run's own file
    claim.release()
    assert contents(tmp_path) == before


def test_a_crash_during_the_set_aside_is_undone_without_losing_the_unmoved_checkpoint(tmp_path, monkeypatch):
    """Killed after moving best.pth but before last.pth: the next start must not take the old
    last.pth, still in model/, for the new run's checkpoint and delete the set-aside files."""
    old_run(tmp_path)
    before = contents(tmp_path)
    real, calls = guard._move, []

    def dies(src, dst):
        calls.append(src)
        if src.endswith("last.pth"):
            raise KeyboardInterrupt  # as if killed here; no restore runs after a real kill
        real(src, dst)
    monkeypatch.setattr(guard, "_move", dies)
    monkeypatch.setattr(guard.OutputClaim, "release", lambda self, failed=False: self._lock_file.close())
    with pytest.raises(KeyboardInterrupt):
        claim_output_dir(str(tmp_path), resume="", overwrite=True)
    monkeypatch.undo()
    assert (tmp_path / PREVIOUS).is_dir()
    with pytest.raises(UserError, match="already holds a run"):  # the next start restores, then refuses
        claim_output_dir(str(tmp_path), resume="", overwrite=False)
    assert contents(tmp_path) == before


# --- logging on full and read-only disks (every entry point logs through setup_logging) -----------

def test_a_log_file_that_cannot_be_created_is_one_error(tmp_path):
    (tmp_path / "result").write_text("a file where the run's folder should be")
    with pytest.raises(UserError, match=r"cannot write the log file .*result/test.log \(File exists\): "
                                        "make it writable, or set save_path"):
        setup_logging(str(tmp_path / "result/test.log"))
    setup_logging(None)


class FullDisk(io.StringIO):
    def write(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_disk_filling_up_while_logging_gives_one_warning_and_the_console_goes_on(tmp_path, capsys):
    setup_logging(str(tmp_path / "run.log"))
    log = logging.getLogger("x")
    log.info("before")
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler))
    handler.stream = FullDisk()
    for i in range(7):
        log.info("step %d", i)
    err = capsys.readouterr()
    assert err.err.count("warning: cannot write the log file") == 1 and "Traceback" not in err.err
    assert "step 6" in err.out
    setup_logging(None)
