"""Disk safety: another run's outputs are never overwritten silently."""
import pytest

from util.errors import UserError
from util.engine.guard import claim_output_dir


def make_run(folder):
    (folder / "model").mkdir(parents=True)
    (folder / "model/last.pth").write_bytes(b"x")
    (folder / "tb").mkdir()
    (folder / "tb/events.out.tfevents.1.host").write_bytes(b"x")
    (folder / "result").mkdir()
    (folder / "result/train.log").write_text("old")


def test_empty_or_config_only_folder_is_fine(tmp_path):
    claim_output_dir(str(tmp_path / "new"), resume="", overwrite=False)
    (tmp_path / "cfgonly/result").mkdir(parents=True)
    (tmp_path / "cfgonly/result/x.yaml").write_text("a: 1")  # train.sh copies the config first
    claim_output_dir(str(tmp_path / "cfgonly"), resume="", overwrite=False)


def test_existing_run_is_refused_with_the_fix(tmp_path):
    make_run(tmp_path)
    with pytest.raises(UserError, match=r"already holds a run \(model/last.pth.*resume .*overwrite true"):
        claim_output_dir(str(tmp_path), resume="", overwrite=False)
    assert (tmp_path / "model/last.pth").exists()


def test_resume_and_overwrite(tmp_path):
    make_run(tmp_path)
    claim_output_dir(str(tmp_path), resume=str(tmp_path / "model/last.pth"), overwrite=False)
    assert (tmp_path / "model/last.pth").exists()
    claim_output_dir(str(tmp_path), resume="", overwrite=True)
    assert not (tmp_path / "model").exists() and not (tmp_path / "tb").exists()
    assert (tmp_path / "result/train.log").read_text() == "old"
