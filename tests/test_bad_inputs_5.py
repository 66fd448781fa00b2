"""Fourth bad-input catalogue, by class (docs/reliability.md): preparers with a way through a
release's known defect, encodings and unwritable outputs; numeric command-line options out of
range; FS-CS settings that cannot be tested; a finished run that still checks its files; a
run killed before its first checkpoint; results files that are not figures."""
import errno
import importlib
import json
import logging
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import train
from conftest import ROOT, toy_overrides
from model import build_model
from target_fixtures import MAKERS, make_fss1000
from test_report import write_result
from util.config import ConfigError, load_config
from util.engine.checkpoint import save_checkpoint
from util.engine.guard import LOCK, claim_output_dir
from util.errors import UserError
from util.prepare.cli import main as prepare_main
from util.prepare.pascal import read_ids
from util.report.cli import main as report_main

CFG = "config/toy/toy_split0_vgg.yaml"


def last_error(capsys) -> str:
    return capsys.readouterr().err.strip().split("\n")[-1]


def prepare(tmp_path: Path, name: str, *extra: str, src: Path | None = None) -> tuple[int, Path]:
    """`python -m util.prepare NAME` on the synthetic download under tmp_path/download."""
    src = src or tmp_path / "download"
    args = MAKERS[name](src) if not src.exists() else []
    out, lists = tmp_path / "data", tmp_path / "lists"
    rc = prepare_main([name, "--src", str(src), "--out", str(out), "--lists", str(lists), "--workers", "1",
                       *args, *extra])
    return rc, lists / "test.txt"


# --- a release's known defect: --skip-bad names every pair it leaves out ---------------------------

def photo_in_place_of_a_mask(src: Path) -> Path:
    """FSS-1000's defect: a class folder where one `<n>.png` is an RGB photo of another size.
    The class gets a third pair first, so two remain to test it once the bad one is left out."""
    for ext in ("jpg", "png"):
        (src / "bus" / f"3.{ext}").write_bytes((src / "bus" / f"1.{ext}").read_bytes())
    photo = np.random.default_rng(0).integers(0, 255, (31, 45, 3)).astype(np.uint8)
    cv2.imwrite(str(src / "bus" / "2.png"), photo)
    return src / "bus" / "2.png"


@pytest.fixture(scope="module")
def fss_download(tmp_path_factory) -> tuple[Path, Path]:
    src = tmp_path_factory.mktemp("fss") / "fewshot_data"
    make_fss1000(src)
    return src, photo_in_place_of_a_mask(src)


def test_fss1000_defect_stops_naming_the_way_through(fss_download, tmp_path, capsys):
    src, bad = fss_download
    rc, lst = prepare(tmp_path, "fss1000", src=src)
    err = last_error(capsys)
    assert rc == 2 and err.startswith(f"error: mask '{bad}'") and "--skip-bad" in err, err
    assert not lst.exists()


def test_fss1000_skip_bad_leaves_the_defect_out_and_names_it(fss_download, tmp_path, caplog):
    src, bad = fss_download
    with caplog.at_level(logging.WARNING):
        rc, lst = prepare(tmp_path, "fss1000", "--skip-bad", src=src)
    assert rc == 0
    lines = lst.read_text().splitlines()
    assert len(lines) == 2 * 240 + 1 - 1  # every pair but the defect (bus has three)
    images = [line.split()[0] for line in lines]
    assert "source/bus/2.jpg" not in images and "source/bus/3.jpg" in images
    assert str(bad) in caplog.text and "--skip-bad: 1 FSS-1000 pair(s) left out" in caplog.text
    before = lst.read_text()
    assert prepare(tmp_path, "fss1000", "--skip-bad", src=src)[0] == 0  # a rerun: the same list
    assert lst.read_text() == before


def spoil_isic(src):
    """Add the unlisted image to melanoma, then replace a melanoma mask with a colour photo."""
    with open(src / "class_id.csv", "a") as f:
        f.write("ISIC_0000006,melanoma\n")
    cv2.imwrite(str(src / "ISIC2018_Task1_Training_GroundTruth/ISIC_0000000_segmentation.png"),
                np.dstack([np.zeros((40, 40), np.uint8), np.full((40, 40), 200, np.uint8), np.zeros((40, 40), np.uint8)]))
    return "ISIC_0000000_segmentation.png"


SPOIL = {  # a mask that cannot label its image, in a download where enough pairs remain
    "chestxray": lambda src: (cv2.imwrite(str(src / "masks/MCUCXR_0001_0.png"), np.zeros((12, 9), np.uint8)),
                              "MCUCXR_0001_0.png")[1],
    "deepglobe": lambda src: (cv2.imwrite(str(src / "102_mask.png"), np.zeros((30, 60, 3), np.uint8)),
                              "102_mask.png")[1],
    "isic": spoil_isic,
}


@pytest.mark.parametrize("name", sorted(SPOIL))
def test_every_target_preparer_has_the_same_way_through(tmp_path, capsys, caplog, name):
    src = tmp_path / "download"
    extra = MAKERS[name](src)
    bad = SPOIL[name](src)
    out, lists = tmp_path / "data", tmp_path / "lists"
    argv = [name, "--src", str(src), "--out", str(out), "--lists", str(lists), "--workers", "1", *extra]
    assert prepare_main(argv) == 2
    err = last_error(capsys)
    assert bad in err and "--skip-bad" in err, err
    with caplog.at_level(logging.WARNING):
        assert prepare_main(argv + ["--skip-bad"]) == 0
    assert bad in caplog.text and "left out of the list" in caplog.text
    assert (lists / "test.txt").read_text().strip()


# --- text the preparers read: Excel's BOM is UTF-8, other encodings are one error -------------------

def isic_csv(tmp_path, data: bytes) -> tuple[int, Path]:
    src = tmp_path / "download"
    MAKERS["isic"](src)
    (src / "class_id.csv").write_bytes(data)
    return prepare(tmp_path, "isic", "--classes", str(src / "class_id.csv"), src=src)


def test_isic_csv_with_a_byte_order_mark_reads_as_without(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    rc, lst = prepare(plain, "isic")
    assert rc == 0
    text = (plain / "download/class_id.csv").read_text()
    rc, lst_bom = isic_csv(tmp_path / "bom", ("\ufeff" + text.replace("\n", "\r\n")).encode("utf-8"))
    assert rc == 0 and lst_bom.read_text() == lst.read_text()


def test_isic_csv_in_latin1_is_one_error_naming_the_line(tmp_path, capsys):
    rows = "ID,Class\nISIC_0000000,melanoma\nISIC_0000001,n\u00e6vus\n"
    rc, lst = isic_csv(tmp_path, rows.encode("latin-1"))
    err = last_error(capsys)
    assert rc == 2 and err.endswith("class_id.csv:3: not UTF-8 text (byte 0xe6): save the csv as UTF-8 "
                                    "(Excel: 'CSV UTF-8'), or use the benchmark's class_id.csv"), err
    assert not lst.exists()


def test_isic_csv_with_another_header_names_it(tmp_path, capsys):
    rc, _ = isic_csv(tmp_path, b"image;diagnosis\nISIC_0000000;melanoma\n")
    err = last_error(capsys)
    assert rc == 2 and "class_id.csv:1: the header is image;diagnosis, not 'ID,Class'" in err, err


@pytest.mark.parametrize("data, expected", [
    ("\ufeff2007_000032\r\n2007_000033\r\n".encode("utf-8"), {"2007_000032", "2007_000033"}),
    ("2007_000032\n".encode("utf-16"), "not UTF-8 text (byte 0xff)"),
])
def test_pascal_id_lists_read_a_bom_and_refuse_other_encodings(tmp_path, data, expected):
    path = tmp_path / "train.txt"
    path.write_bytes(data)
    if isinstance(expected, set):
        assert read_ids(path) == expected
    else:
        with pytest.raises(UserError, match=rf"train.txt:1: {re.escape(expected)}"):
            read_ids(path)


# --- unwritable outputs: one error before anything is written --------------------------------------

OUT_ARGS = {  # the other required arguments of each subcommand (never read: the check comes first)
    "toy": [], "pascal": ["--voc", "v", "--sbd", "s"], "coco": ["--coco", "c"],
    **{name: ["--src", "s"] for name in ("fss1000", "deepglobe", "chestxray", "suim")},
    "isic": ["--src", "s", "--classes", "c.csv"],
}


@pytest.mark.parametrize("name", sorted(OUT_ARGS))
def test_a_file_as_out_is_one_error_for_every_preparer(tmp_path, capsys, name):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    rc = prepare_main([name, *OUT_ARGS[name], "--out", str(out), "--lists", str(tmp_path / "lists")])
    assert rc == 2 and last_error(capsys) == (f"error: --out {out} is a file, not a folder: pass a folder "
                                              "(it is created if missing)")
    assert out.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """A folder nobody may write into; root ignores permission bits, so there the kernel's refusal
    is played by Path.touch, the call the check makes."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        real = pathlib.Path.touch

        def refuse(self, *a, **k):
            if self.parent == folder:
                raise OSError(errno.EROFS, "Read-only file system")
            return real(self, *a, **k)
        monkeypatch.setattr(pathlib.Path, "touch", refuse)
    yield folder
    folder.chmod(0o755)


@pytest.mark.parametrize("name, flag", [("toy", "--out"), ("fss1000", "--out"), ("pascal", "--out"),
                                        ("suim", "--lists")])
def test_a_read_only_output_folder_is_one_error_before_any_work(read_only, capsys, name, flag):
    args = {"--out": str(read_only.parent / "data"), "--lists": str(read_only.parent / "lists")}
    args[flag] = str(read_only / flag.strip("-"))
    rc = prepare_main([name, *OUT_ARGS[name], *[x for kv in args.items() for x in kv]])
    err = last_error(capsys)
    assert rc == 2 and err == (f"error: {flag} {args[flag]}: {read_only} is not writable (read-only or no "
                               f"permission): make it writable, or pass another {flag}"), err
    assert not list(read_only.iterdir()) and sorted(p.name for p in read_only.parent.iterdir()) == ["ro"]


# --- numeric command-line options: a value out of range is argparse's error, exit 2 ---------------

@pytest.mark.parametrize("module, argv, shown", [
    ("util.bench.index", ["--workers", "0"], "--workers: 0 is out of range: use 1..256"),
    ("util.bench.index", ["--labels", "-3"], "--labels: -3 is out of range"),
    ("util.bench.speed", ["--config", CFG, "--steps", "0"], "--steps: 0 is out of range"),
    ("util.bench.speed", ["--config", CFG, "--episodes", "1e9"], "--episodes: '1e9' is not a whole number"),
    ("util.bench.memory", ["--iters", "0"], "--iters: 0 is out of range"),
    ("util.bench.compare", ["--rounds", "-1"], "--rounds: -1 is out of range"),
    ("util.prepare.cli", ["toy", "--workers", "-1"], "--workers: -1 is out of range"),
    ("util.prepare.cli", ["toy", "--seed", "-1"], "--seed: -1 is out of range"),
    ("util.prepare.cli", ["toy", "--images", "0"], "--images: 0 is out of range"),
    ("util.prepare.cli", ["chestxray", "--src", "s", "--out", "o", "--workers", "100000"], "--workers: 100000"),
    ("util.prepare.toy_shift", ["--val", "0"], "--val: 0 is out of range"),
])
def test_numeric_options_out_of_range_are_one_error(capsys, module, argv, shown):
    with pytest.raises(SystemExit) as stop:
        importlib.import_module(module).main(argv)
    err = last_error(capsys)
    assert stop.value.code == 2 and "error: argument " + shown in err, err


# --- FS-CS: what it cannot test is refused at load -------------------------------------------------

@pytest.mark.parametrize("keys, says", [
    (["dataset", "toy", "target", "toyshift"], "ifsl true with target toyshift: FS-CS is tested in-domain only"),
    (["dataset", "pascal", "target", "chestxray", "way", "2"], "ifsl true with target chestxray"),
    (["dataset", "chestxray", "way", "2"], "way 2: 2-way episodes need 2 classes, but chestxray fold 0 tests 1 "
                                           "(lungs): set way to at most 1"),
    (["dataset", "isic", "way", "4"], "4-way episodes need 4 classes, but isic fold 0 tests 3"),
])
def test_fscs_settings_that_cannot_be_tested_are_refused(keys, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_config(None, ["ifsl", "true", *keys])


def test_fscs_in_domain_and_fitting_ways_still_load():
    assert load_config(None, ["ifsl", "true", "dataset", "toy", "target", "toy", "way", "2"]).way == 2


# --- a finished run reads its checkpoints before `nothing to do` -----------------------------------

def checkpoint(path: Path, config: str, overrides: list[str], drop: bool = False) -> Path:
    """A checkpoint as train.py writes it after one epoch (a random model); `drop` removes its
    last weight, as an incomplete or foreign file would lack it."""
    cfg = load_config(config, overrides)
    net = build_model(cfg)
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    save_checkpoint(str(path), model=net, optimizer=opt, epoch=1, iteration=2, best_miou=1.0, cfg=cfg)
    if drop:
        state = torch.load(path, weights_only=True)
        del state["model"][list(state["model"])[-1]]
        torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory, toy_tree):
    folder = tmp_path_factory.mktemp("finished")
    keys = [*toy_overrides(toy_tree), "epochs", "1", "pretrained", "false"]
    return folder, keys, checkpoint(folder / "last.pth", CFG, keys)


def test_a_finished_run_with_its_own_files_has_nothing_to_do(finished, tmp_path):
    folder, keys, last = finished
    assert train.main(["--config", CFG, *keys, "resume", str(last), "weight", str(last),
                       "save_path", str(tmp_path / "r")]) == 0
    assert "nothing to do" in (tmp_path / "r/result/train.log").read_text()
    assert not (tmp_path / "r/model").exists()


def test_a_finished_run_given_another_architectures_weight_is_refused(finished, tmp_path):
    folder, keys, last = finished
    other = checkpoint(folder / "scnet.pth", "config/toy/toy_split0_vgg_scnet.yaml", keys)
    with pytest.raises(UserError, match=r"scnet.pth \(own checkpoint\) does not fit this model"):
        train.main(["--config", CFG, *keys, "resume", str(last), "weight", str(other), "save_path", str(tmp_path)])


def test_a_finished_run_whose_resume_file_lacks_weights_is_refused(finished, tmp_path):
    folder, keys, _ = finished
    broken = checkpoint(folder / "broken.pth", CFG, keys, drop=True)
    with pytest.raises(UserError, match=r"cannot resume .*broken.pth: its model state does not fit this run"):
        train.main(["--config", CFG, *keys, "resume", str(broken), "save_path", str(tmp_path)])


# --- a run killed (SIGKILL) before its first checkpoint starts again with the same command --------

def killed_claim(folder: Path, files: tuple[str, ...]) -> None:
    """A claim whose process dies without a word: its files stay, so does the lock file (the
    kernel drops the lock itself with the process)."""
    claim = claim_output_dir(str(folder), resume="", overwrite=False)
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    claim._lock_file.close()


def test_a_run_killed_before_its_first_checkpoint_starts_again(tmp_path, caplog):
    killed_claim(tmp_path, ("tb/events.out.tfevents.1.host", "result/train.log"))
    assert (tmp_path / LOCK).is_file()
    with caplog.at_level(logging.WARNING):
        claim = claim_output_dir(str(tmp_path), resume="", overwrite=False)
    claim.release()
    assert "killed before its first checkpoint" in caplog.text
    assert not list((tmp_path / "tb").iterdir()) and (tmp_path / "result/train.log").is_file()


@pytest.mark.parametrize("saved", ["model/last.pth", "model/results_shot1.json"])
def test_a_killed_run_that_saved_something_is_kept_and_refused(tmp_path, saved):
    killed_claim(tmp_path, ("tb/events.out.tfevents.1.host", saved))
    with pytest.raises(UserError, match="already holds a run"):
        claim_output_dir(str(tmp_path), resume="", overwrite=False)
    assert (tmp_path / "tb/events.out.tfevents.1.host").is_file() and (tmp_path / saved).is_file()


def test_train_py_killed_in_its_first_epoch_starts_again_with_the_same_command(toy_tree, tmp_path):
    argv = ["--config", CFG, *toy_overrides(toy_tree), "pretrained", "false", "epochs", "1",
            "max_iters_per_epoch", "1", "val_every", "0", "save_path", str(tmp_path / "run")]
    proc = subprocess.Popen([sys.executable, "train.py", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not list((tmp_path / "run/tb").glob("events.out.tfevents.*")) and time.time() < deadline:
            assert proc.poll() is None, "train.py ended before it was killed"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (tmp_path / "run/model/last.pth").exists()
    assert train.main(argv) == 0
    assert (tmp_path / "run/model/last.pth").is_file()


# --- results files that are no figures: named in the report's Sources, never a cell ---------------

def test_report_names_nan_infinity_and_dangling_results_in_sources(tmp_path, capsys):
    for split in range(2):
        write_result(tmp_path, f"ok{split}", split=split, miou=60.0 + split)
    for name, value in (("inf", "Infinity"), ("nan", "NaN")):
        path = write_result(tmp_path, name, split=2, miou=1.25, backbone="resnet101")
        path.write_text(path.read_text().replace('"miou": 1.25', f'"miou": {value}', 1))
    (tmp_path / "gone").mkdir()
    (tmp_path / "gone/results_shot1.json").symlink_to(tmp_path / "nowhere.json")
    assert report_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    cells = [line for line in out.splitlines() if line.startswith("|")]
    assert not any(word in line.lower() for line in cells for word in ("inf", "nan", "1.2"))
    assert "_skipped inf/results_shot1.json: it holds Infinity, which is no figure" in out
    assert "_skipped nan/results_shot1.json: it holds NaN" in out
    assert f"_skipped gone/results_shot1.json: a link to {tmp_path / 'nowhere.json'}, which does not exist_" in out
    assert "| 60.0 |" in out and "| 61.0 |" in out


def test_report_html_page_leaves_the_same_files_out(tmp_path):
    write_result(tmp_path, "ok", split=0, miou=60.0)
    bad = write_result(tmp_path, "bad", split=1, miou=1.25)
    bad.write_text(bad.read_text().replace('"miou": 1.25', '"miou": -Infinity', 1))
    assert report_main([str(tmp_path), "--html", str(tmp_path / "page.html")]) == 0
    page = (tmp_path / "page.html").read_text()
    assert "skipped bad/results_shot1.json: it holds -Infinity" in page


def test_report_of_a_gfss_file_holding_nan_is_one_error(tmp_path, capsys):
    write_result(tmp_path, "ok", split=0, miou=60.0)
    path = tmp_path / "ok/gfss_shot1.json"
    path.write_text(json.dumps({"config": {"dataset": "pascal", "backbone": "resnet50", "shot": 1, "split": 0},
                                "gfss": {"base": 1.0}}).replace("1.0}", "NaN}"))
    assert report_main([str(tmp_path)]) == 2
    assert "gfss_shot1.json: it holds NaN, which is no figure" in last_error(capsys)
