"""Third bad-input catalogue, class "generated data": a generator (toy, toyshift, the preparers'
lists) never writes over a file it did not create; what it wrote itself it may replace
(docs/reliability.md)."""
import functools

import pytest

from util.config import load_config
from util.errors import UserError
from util.prepare import toy, toy_shift
from util.prepare.common import GENERATED, write_generated, write_lines_atomic


@pytest.fixture
def small(monkeypatch):
    """The toy generator at 4 + 2 tiny images."""
    monkeypatch.setattr(toy, "generate_toy", functools.partial(toy.generate_toy, n_train=4, n_val=2, min_side=32,
                                                               max_side=36, workers=1))


def toy_cfg(tmp_path, root="data"):
    return load_config(None, ["dataset", "toy", "data_root", str(tmp_path / root),
                              "train_list", str(tmp_path / "lists/train.txt"), "val_list", str(tmp_path / "lists/val.txt")])


def test_a_mistyped_data_root_keeps_the_users_lists_and_generates_nothing(tmp_path, small):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists/train.txt").write_text("my/own.jpg my/own.png\n")
    with pytest.raises(UserError, match=r"toy data at data_root .*datta is missing, and .*train.txt exists but was "
                                        r"not written by its generator"):
        toy.ensure_toy(toy_cfg(tmp_path, "datta"))
    assert (tmp_path / "lists/train.txt").read_text() == "my/own.jpg my/own.png\n"
    assert not (tmp_path / "datta").exists()


def test_lists_the_generator_wrote_are_replaced_on_regeneration(tmp_path, small):
    cfg = toy_cfg(tmp_path)
    toy.ensure_toy(cfg)
    first = (tmp_path / "lists/val.txt").read_text()
    toy.ensure_toy(toy_cfg(tmp_path, "elsewhere"))  # same generator, same lists: nothing refused
    assert (tmp_path / "lists/val.txt").read_text() == first
    assert (tmp_path / "lists" / GENERATED).is_file()


def test_a_generated_list_edited_by_hand_is_the_users(tmp_path, small):
    toy.ensure_toy(toy_cfg(tmp_path))
    (tmp_path / "lists/val.txt").write_text((tmp_path / "lists/val.txt").read_text() + "# mine\n")
    with pytest.raises(UserError, match="was not written by its generator"):
        toy.ensure_toy(toy_cfg(tmp_path, "other"))
    assert (tmp_path / "lists/val.txt").read_text().endswith("# mine\n")


def test_toy_cli_refuses_lists_it_did_not_write_before_generating(tmp_path):
    (tmp_path / "l").mkdir()
    (tmp_path / "l/val.txt").write_text("keep me\n")
    with pytest.raises(UserError, match="l/val.txt exists but was not written"):
        toy.generate_toy(str(tmp_path / "d"), str(tmp_path / "l"), n_train=2, n_val=2, min_side=32, max_side=32,
                         workers=1)
    assert (tmp_path / "l/val.txt").read_text() == "keep me\n" and not (tmp_path / "d").exists()


def test_toy_out_that_is_a_file_is_one_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="'.*f' is a file, not a folder"):
        toy.generate_toy(str(tmp_path / "f"), None, n_train=2, n_val=2, min_side=32, max_side=32, workers=1)
    assert (tmp_path / "f").read_text() == "x"


def test_toyshift_keeps_the_users_target_list(tmp_path, monkeypatch):
    monkeypatch.setattr(toy_shift, "generate_toy_shift", lambda *a, **k: pytest.fail("generated"))
    (tmp_path / "mine.txt").write_text("a b\n")
    cfg = load_config(None, ["dataset", "toyshift", "data_root", str(tmp_path / "nowhere"),
                             "val_list", str(tmp_path / "mine.txt")])
    with pytest.raises(UserError, match="second toy domain .* is missing, and .*mine.txt exists but was not written"):
        toy_shift.ensure_toy_shift(cfg)
    assert (tmp_path / "mine.txt").read_text() == "a b\n"


def test_a_list_path_that_is_a_folder_is_one_error(tmp_path, small):
    (tmp_path / "lists/train.txt").mkdir(parents=True)
    with pytest.raises(UserError, match="list path .*train.txt is a folder"):
        toy.ensure_toy(toy_cfg(tmp_path))


def test_preparers_lists_follow_the_same_rule(tmp_path):
    """write_lines_atomic is how every preparer (pascal, coco, fss1000, isic, ...) writes a list."""
    path = tmp_path / "test.txt"
    assert write_lines_atomic(path, ["a b"]) and write_lines_atomic(path, ["a b", "c d"])  # its own: replaced
    assert not write_lines_atomic(path, ["a b", "c d"])  # unchanged: not written
    path.write_text("hand-made\n")
    with pytest.raises(UserError, match="test.txt exists and was not written by this generator"):
        write_lines_atomic(path, ["a b"])
    assert path.read_text() == "hand-made\n"
    write_generated(tmp_path / "new.txt", "x\n")
    assert (tmp_path / "new.txt").read_text() == "x\n"
