"""Disk safety: another run's outputs are never overwritten silently, an overwrite that fails
loses nothing, two trainings never share a folder, the user's own files are left alone."""
import errno
import os

import pytest

from util.errors import UserError
from util.engine.guard import PREVIOUS, claim_output_dir, write_atomic


def make_run(folder):
    (folder / "model").mkdir(parents=True)
    (folder / "model/last.pth").write_bytes(b"old-last")
    (folder / "tb").mkdir()
    (folder / "tb/events.out.tfevents.1.host").write_bytes(b"old-events")
    (folder / "result").mkdir()
    (folder / "result/train.log").write_text("old")
    (folder / "result/config.yaml").write_text("old: 1")


def test_empty_or_config_only_folder_is_fine(tmp_path):
    claim_output_dir(str(tmp_path / "new"), resume="", overwrite=False).release()
    (tmp_path / "cfgonly/result").mkdir(parents=True)
    (tmp_path / "cfgonly/result/x.yaml").write_text("a: 1")  # train.sh copies the config first
    claim_output_dir(str(tmp_path / "cfgonly"), resume="", overwrite=False).release()


def test_existing_run_is_refused_with_the_fix(tmp_path):
    make_run(tmp_path)
    with pytest.raises(UserError, match=r"already holds a run \(model/last.pth.*resume .*overwrite true"):
        claim_output_dir(str(tmp_path), resume="", overwrite=False)
    assert (tmp_path / "model/last.pth").exists()
    claim_output_dir(str(tmp_path), resume="", overwrite=True).release()  # the refusal left no lock behind


def test_resume_keeps_everything(tmp_path):
    make_run(tmp_path)
    claim_output_dir(str(tmp_path), resume=str(tmp_path / "model/last.pth"), overwrite=False).release()
    assert (tmp_path / "model/last.pth").read_bytes() == b"old-last"


def test_overwrite_removes_the_old_run_only_after_the_first_checkpoint(tmp_path):
    make_run(tmp_path)
    claim = claim_output_dir(str(tmp_path), resume="", overwrite=True)
    assert not (tmp_path / "model/last.pth").exists() and not (tmp_path / "tb/events.out.tfevents.1.host").exists()
    assert (tmp_path / PREVIOUS / "model/last.pth").read_bytes() == b"old-last"
    (tmp_path / "model/last.pth").write_bytes(b"new")
    claim.commit()
    claim.release()
    assert not (tmp_path / PREVIOUS).exists()
    assert (tmp_path / "model/last.pth").read_bytes() == b"new"
    assert (tmp_path / "result/train.log").read_text() == "old"  # logs are appended to, never removed


def test_failed_overwrite_restores_the_old_run(tmp_path):
    make_run(tmp_path)
    claim = claim_output_dir(str(tmp_path), resume="", overwrite=True)
    (tmp_path / "tb/events.out.tfevents.2.host").write_bytes(b"new-events")  # the failing run's
    (tmp_path / "result/config.yaml").write_text("new: 2")
    claim.release()
    assert (tmp_path / "model/last.pth").read_bytes() == b"old-last"
    assert sorted(os.listdir(tmp_path / "tb")) == ["events.out.tfevents.1.host"]
    assert (tmp_path / "result/config.yaml").read_text() == "old: 1"
    assert not (tmp_path / PREVIOUS).exists()


def test_overwrite_killed_before_its_first_checkpoint_is_undone_at_the_next_start(tmp_path):
    make_run(tmp_path)
    claim = claim_output_dir(str(tmp_path), resume="", overwrite=True)
    claim._lock_file.close()  # as if the process died: no release()
    claim.previous = None
    with pytest.raises(UserError, match="already holds a run"):
        claim_output_dir(str(tmp_path), resume="", overwrite=False)
    assert (tmp_path / "model/last.pth").read_bytes() == b"old-last"


def test_second_training_into_the_same_folder_is_refused(tmp_path):
    first = claim_output_dir(str(tmp_path), resume="", overwrite=False)
    with pytest.raises(UserError, match=rf"{tmp_path} is in use by another training \(pid {os.getpid()}\)"):
        claim_output_dir(str(tmp_path), resume="", overwrite=True)
    first.release()
    claim_output_dir(str(tmp_path), resume="", overwrite=False).release()


def test_foreign_files_in_model_are_not_a_run_and_survive_overwrite(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model/resnet50_v2.pth").write_bytes(b"user weights")
    (tmp_path / "model/notes.txt").write_text("mine")
    claim_output_dir(str(tmp_path), resume="", overwrite=False).release()  # not refused: no run here
    make_run(tmp_path / "r")
    (tmp_path / "r/model/notes.txt").write_text("mine")
    claim = claim_output_dir(str(tmp_path / "r"), resume="", overwrite=True)
    claim.commit()
    claim.release()
    assert (tmp_path / "r/model/notes.txt").read_text() == "mine"


def test_unwritable_folder_and_full_disk_give_one_message(tmp_path, monkeypatch):
    real_open = open

    def refuse(path, *a, **k):
        if str(path).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(UserError, match=r"cannot write .*/ro \(Read-only file system\): make it writable, or set "
                                        "save_path"):
        claim_output_dir(str(tmp_path / "ro"), resume="", overwrite=False)
    with pytest.raises(UserError, match=r"ro/r.json \(Read-only file system\)"):
        write_atomic(str(tmp_path / "ro/r.json"), "{}")
    assert not [p for p in os.listdir(tmp_path / "ro") if "tmp" in p]
