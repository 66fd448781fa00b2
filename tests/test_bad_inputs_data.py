"""Second catalogue of bad inputs, data side: config files, list files, labels and the class
index cache, each driven through train.main / test.main on a small data tree. A case either
stops with one line naming the file (and line or key) and the fix, writing no checkpoint and
no index cache from the bad data, or it simply works and gives the same episodes and scores
as the clean tree."""
import glob
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import test as test_cli
import train
from conftest import toy_overrides
from test_bad_inputs import CFG, first_pair, tree  # noqa: F401 (tree is a fixture)
from util.data.dataset import build_dataset
from util.errors import UserError
from util.data.index import CACHE_VERSION, cache_path, label_counts, parse_list

PASCAL = ["dataset", "pascal"]  # as test_bad_inputs: a toy config would regenerate missing data
TEST_NUM = ["test_num", "4"]  # the machine is shared: few episodes, each a full forward pass


def caches(root, split: str) -> dict[str, tuple[int, int]]:
    """Index caches of one list: path -> (size, mtime_ns)."""
    return {p: (os.stat(p).st_size, os.stat(p).st_mtime_ns)
            for p in glob.glob(str(root / "lists" / f"{split}.txt.cache-*.json"))}


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert msg and "\n" not in msg, msg
    return msg


def train_fails(root, out, *extra, config=CFG, bad_list="train") -> str:
    """train.main's single-line message; no checkpoint, no cache of the bad list written."""
    before = caches(root, bad_list)
    with pytest.raises(UserError) as err:
        train.main(["--config", str(config), *toy_overrides(root), "save_path", str(out), *PASCAL, *extra])
    assert not glob.glob(f"{out}/**/*.pth", recursive=True)
    assert caches(root, bad_list) == before
    return one_line(err)


def eval_fails(root, weight, out) -> str:
    """test.main's single-line message; no results written, no cache of the val list."""
    before = caches(root, "val")
    with pytest.raises(UserError) as err:
        test_cli.main(["--config", CFG, *toy_overrides(root), *PASCAL, *TEST_NUM, "weight", str(weight),
                       "save_path", str(out)])
    assert not glob.glob(f"{out}/**/results*.json", recursive=True)
    assert caches(root, "val") == before
    return one_line(err)


def scores(root, weight, out) -> dict:
    """Metrics of test.main on this tree with a fixed checkpoint (copied into `out`, where the
    results are written next to it)."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(weight, out / "w.pth")
    assert test_cli.main(["--config", CFG, *toy_overrides(root), *PASCAL, *TEST_NUM, "weight", str(out / "w.pth"),
                          "save_path", str(out)]) == 0
    with open(out / "results_shot1.json") as f:
        return json.load(f)["metrics"]


def eval_log(out) -> str:
    with open(out / "result" / "test_shot1.log") as f:
        return f.read()


def episodes(root) -> tuple[list, list]:
    """Test episodes and their (image, label) paths relative to data_root."""
    from util.config import load_config
    cfg = load_config(CFG, toy_overrides(root) + PASCAL + TEST_NUM)
    ds = build_dataset(cfg, "test")
    rel = [(os.path.relpath(i, cfg.data_root), os.path.relpath(l, cfg.data_root)) for i, l in ds.index.items]
    return ds.episodes, rel


@pytest.fixture(scope="module")
def weight(tmp_path_factory, toy_tree):
    """A random-init checkpoint of the test config (scores depend on every image and label)."""
    from model import build_model
    from util.config import load_config
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "random.pth"
    torch.save({"model": build_model(load_config(CFG, toy_overrides(toy_tree) + PASCAL)).state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def clean(tmp_path_factory, toy_tree, weight):
    """Scores and episodes of an untouched copy of the toy tree."""
    root = tmp_path_factory.mktemp("clean") / "t"
    shutil.copytree(toy_tree, root)
    return scores(root, weight, root / "exp"), episodes(root), counts(root, "val")


def counts(root, split: str) -> list[dict[int, int]]:
    """Pixels per class of every label of a list, read afresh."""
    return label_counts(str(root / "lists" / f"{split}.txt"), str(root / "data"), 20, use_cache=False)[1]


def label_paths(root, split: str) -> list:
    return [root / "data" / line.split()[1] for line in (root / "lists" / f"{split}.txt").read_text().split("\n")
            if line.strip()]


# ---------------------------------------------------------------- config files

def write(path, data) -> str:
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return str(path)


BASE = os.path.abspath(CFG)


@pytest.mark.parametrize("content, needle", [
    ("- split: 0\n- shot: 1\n", "holds a YAML list, not a mapping: write one 'key: value' pair per line"),
    ("split0\n", "holds a YAML str, not a mapping"),
    (b"", "is empty (no 'key: value' lines)"),
    ("# split: 0\n# shot: 1\n\n", "is empty (no 'key: value' lines)"),
    (f"base: {BASE}\n# r\xe9sum\xe9\n".encode("latin-1"), "c.yaml:2: not UTF-8 text (byte 0xe9): save the config as UTF-8"),
    (f"base: {BASE}\nshot: [1,\n", "c.yaml:3: not valid YAML"),
    ("base: [a.yaml, b.yaml]\n", "'base' must name one YAML file, got ['a.yaml', 'b.yaml']"),
    ("base: nope.yaml\nshot: 1\n", "base file 'nope.yaml' not found"),
], ids=["list", "scalar", "zero_bytes", "only_comments", "latin1", "yaml_syntax", "base_not_str", "missing_base"])
def test_config_file_faults(content, needle, toy_tree, tmp_path):
    cfg = write(tmp_path / "c.yaml", content)
    out = tmp_path / "exp"
    msg = train_fails(toy_tree, out, config=cfg)
    assert needle in msg and cfg in msg
    assert not out.exists()


@pytest.mark.parametrize("files, needle", [
    ({"a.yaml": "base: b.yaml\nshot: 1\n", "b.yaml": "base: a.yaml\nsplit: 0\n"}, "loop (a.yaml -> b.yaml -> a.yaml)"),
    ({"a.yaml": "base: ./a.yaml\nshot: 1\n"}, "loop (a.yaml -> a.yaml)"),
    ({"a.yaml": "base: sub/../b.yaml\n", "b.yaml": "- 1\n- 2\n"}, "b.yaml holds a YAML list"),
    ({"a.yaml": "base: b.yaml\n", "b.yaml": f"base: {BASE}\nbase_lr: [\n"}, "b.yaml:3: not valid YAML"),
], ids=["cycle_a_b_a", "cycle_a_a", "base_not_mapping", "base_bad_yaml"])
def test_config_base_faults(files, needle, toy_tree, tmp_path):
    (tmp_path / "sub").mkdir()
    for name, text in files.items():
        write(tmp_path / name, text)
    msg = train_fails(toy_tree, tmp_path / "exp", config=tmp_path / "a.yaml")
    assert needle in msg
    assert not (tmp_path / "exp").exists()


def test_config_error_from_the_command_line(tmp_path):
    cfg = write(tmp_path / "c.yaml", b"shot: 1\nsplit: \xff\n")
    r = subprocess.run([sys.executable, "train.py", "--config", cfg], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: {cfg}:2: not UTF-8 text (byte 0xff): save the config as UTF-8"]


# ------------------------------------------------------------------ list files

def rewrite_list(root, split: str, fn) -> None:
    path = root / "lists" / f"{split}.txt"
    path.write_bytes(fn(path.read_bytes()))


WORKING_LISTS = {
    "crlf": lambda b: b.replace(b"\n", b"\r\n"),
    "blanks_and_trailing_spaces": lambda b: b"\n   \n# a comment line\n" + b.replace(b" ", b"  \t ").replace(
        b"\n", b"   \t\n\n"),
    "utf8_bom": lambda b: b"\xef\xbb\xbf" + b,
}


@pytest.mark.parametrize("kind", WORKING_LISTS)
def test_list_formats_that_work(kind, tree, tmp_path, weight, clean):
    rewrite_list(tree, "val", WORKING_LISTS[kind])
    assert episodes(tree) == clean[1]
    assert scores(tree, weight, tmp_path / "exp") == clean[0]


def test_duplicate_lines_are_used_once_with_a_warning(tree, tmp_path, weight, clean):
    lines = (tree / "lists/val.txt").read_text().split("\n")
    rewrite_list(tree, "val", lambda b: b + "\n".join([lines[0], lines[3], lines[0]]).encode() + b"\n")
    assert episodes(tree) == clean[1]
    out = tmp_path / "exp"
    assert scores(tree, weight, out) == clean[0]
    assert "val.txt: 3 duplicate lines ignored" in eval_log(out)


def test_crlf_list_trains(tree, tmp_path):
    rewrite_list(tree, "train", WORKING_LISTS["crlf"])
    assert train.main(["--config", CFG, *toy_overrides(tree), *PASCAL, "save_path", str(tmp_path / "e"),
                       "epochs", "1", "val_every", "0"]) == 0
    assert os.path.isfile(tmp_path / "e/model/last.pth")


def test_non_utf8_list(tree, tmp_path, weight):
    rewrite_list(tree, "val", lambda b: b.replace(b"\n", b"\n\xe9t\xe9.jpg x.png\n", 1))
    msg = eval_fails(tree, weight, tmp_path / "exp")
    assert msg == (f"{tree}/lists/val.txt:2: not UTF-8 text (byte 0xe9): save the list as UTF-8 "
                   "(rename files with other names)")


@pytest.mark.parametrize("kind", ["absolute", "dotdot"])
def test_list_paths_leaving_data_root(kind, tree, tmp_path):
    img, lab = first_pair(tree)
    bad = str(img) if kind == "absolute" else "JPEGImages/../../data/" + os.path.relpath(img, tree / "data")
    lines = (tree / "lists/train.txt").read_text().split("\n")
    lines[2] = f"{bad} {lines[2].split()[1]}"
    (tree / "lists/train.txt").write_text("\n".join(lines))
    msg = train_fails(tree, tmp_path / "exp")
    assert msg.startswith(f"{tree}/lists/train.txt:3: path '{bad}' is outside data_root: write list paths "
                          "relative to data_root")


# ---------------------------------------------------------------------- labels

def convert_labels(root, split: str, fn) -> None:
    for p in label_paths(root, split):
        fn(p, cv2.imread(str(p), cv2.IMREAD_GRAYSCALE))


def save_palette(path, label) -> None:
    im = Image.fromarray(label, mode="P")
    im.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, 255 - i)])
    im.save(path)


WORKING_LABELS = {
    "palette": save_palette,
    "grey_saved_as_rgb": lambda p, lab: cv2.imwrite(str(p), np.repeat(lab[..., None], 3, axis=2)),
}


@pytest.mark.parametrize("kind", WORKING_LABELS)
def test_label_formats_that_work(kind, tree, tmp_path, weight, clean):
    convert_labels(tree, "val", WORKING_LABELS[kind])
    assert counts(tree, "val") == clean[2]
    assert scores(tree, weight, tmp_path / "exp") == clean[0]


def jpeg(path, label) -> None:
    ok, data = cv2.imencode(".jpg", label)
    path.write_bytes(data.tobytes())


def colours(path, label) -> None:
    rgb = np.stack([label, label // 2, 255 - label], axis=2)  # VOC-like colour coding
    cv2.imwrite(str(path), rgb)


LABEL_FAULTS = {  # (writer, text after "label '<path>'")
    "jpeg": (jpeg, "is a JPEG: lossy compression changes class values along object edges, so labels "
                   "must be lossless PNG class maps"),
    "16bit": (lambda p, lab: cv2.imwrite(str(p), lab.astype(np.uint16)), "is a 16-bit PNG: labels must be 8-bit"),
    "rgb_colours": (colours, "is an RGB PNG with colours: labels must be class maps"),
    "rgba": (lambda p, lab: cv2.imwrite(str(p), np.dstack([lab, lab, lab, np.full_like(lab, 255)])),
             "is a RGBA PNG: labels must be single-channel class maps (grey or palette PNG)"),
    "grey_alpha": (lambda p, lab: Image.fromarray(np.dstack([lab, lab]), mode="LA").save(p),
                   "is a grayscale+alpha PNG"),
    "zero_bytes": (lambda p, lab: p.write_bytes(b""), "is empty (0 bytes; an interrupted copy?)"),
}


@pytest.mark.parametrize("kind", LABEL_FAULTS)
def test_label_faults(kind, tree, tmp_path):
    writer, needle = LABEL_FAULTS[kind]
    lab = label_paths(tree, "train")[7]
    writer(lab, cv2.imread(str(lab), cv2.IMREAD_GRAYSCALE))
    msg = train_fails(tree, tmp_path / "exp")
    assert msg.startswith(f"label '{lab}' {needle}"), msg
    assert "python -m util.prepare" in msg


def test_label_of_another_size(tree, tmp_path):
    for p in label_paths(tree, "train"):  # all: the first batch must meet one
        lab = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(p), cv2.resize(lab, (lab.shape[1] + 5, lab.shape[0]), interpolation=cv2.INTER_NEAREST))
    msg = train_fails(tree, tmp_path / "exp", bad_list="none")
    assert " but label '" in msg and "they must match; check the list pairs" in msg


# ----------------------------------------------------------------- index cache

def valid_cache(root, split: str) -> str:
    """Build the list's cache through the library; its path."""
    list_path = str(root / "lists" / f"{split}.txt")
    label_counts(list_path, str(root / "data"), 20)
    return cache_path(list_path, str(root / "data"), 20)


def n_labels(root, split: str) -> int:
    return len(parse_list(str(root / "lists" / f"{split}.txt"), str(root / "data")))


def claims(n: int, row: list, version: int = CACHE_VERSION) -> bytes:
    """A cache of n labels that all hold `row` (e.g. [1, 10**6]: class 1 everywhere, which
    would change every episode if trusted)."""
    return json.dumps({"version": version, "counts": [row] * n, "stats": [0] * 4 * n}).encode()


CACHE_FAULTS = {  # (valid cache bytes, labels in the list) -> what is found in its place
    "truncated": lambda good, n: good[:len(good) // 2],
    "garbage": lambda good, n: bytes(range(256)) * 4,
    "json_list": lambda good, n: b"[1, 2, 3]",
    "no_counts": lambda good, n: json.dumps({"version": CACHE_VERSION}).encode(),
    "counts_of_strings": lambda good, n: claims(n, ["a", "b"]),
    "class_out_of_range": lambda good, n: claims(n, [99, 5]),
    "wrong_length": lambda good, n: claims(n - 1, [1, 10**6]),
    "older_version": lambda good, n: claims(n, [1, 10**6], CACHE_VERSION - 1),
}


@pytest.mark.parametrize("kind", CACHE_FAULTS)
def test_damaged_cache_is_rebuilt(kind, tree, tmp_path, weight, clean):
    path = valid_cache(tree, "val")
    with open(path, "rb") as f:
        good = f.read()
    with open(path, "wb") as f:
        f.write(CACHE_FAULTS[kind](good, n_labels(tree, "val")))
    out = tmp_path / "exp"
    assert scores(tree, weight, out) == clean[0]
    assert f"class index cache {path}" in eval_log(out) and "rebuilding it" in eval_log(out)
    with open(path) as f:
        again = json.load(f)  # rewritten whole, with what the labels hold
    assert again["version"] == CACHE_VERSION
    assert [dict(zip(r[::2], r[1::2])) for r in again["counts"]] == clean[2]


def replace_keeping_stamps(label, new: np.ndarray) -> None:
    """os.replace a same-size file over `label` and restore its and its folder's timestamps: only
    the inode and change time tell it apart."""
    folder, st = label.parent, os.stat(label)
    fst = os.stat(folder)
    tmp = folder / "incoming.png"
    cv2.imwrite(str(tmp), new, [cv2.IMWRITE_PNG_COMPRESSION, 0])
    assert os.path.getsize(tmp) == st.st_size
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, label)
    os.utime(folder, ns=(fst.st_atime_ns, fst.st_mtime_ns))


def test_label_replaced_by_rename_is_reread(tree, tmp_path, weight):
    lab = label_paths(tree, "val")[0]
    orig = cv2.imread(str(lab), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(lab), orig, [cv2.IMWRITE_PNG_COMPRESSION, 0])  # uncompressed: size depends on shape only
    scores(tree, weight, tmp_path / "first")
    cached = caches(tree, "val")
    bad = orig.copy()
    bad[0, 0] = 77
    replace_keeping_stamps(lab, bad)
    msg = eval_fails(tree, weight, tmp_path / "second")
    assert msg.startswith(f"label '{lab}' holds values [77] outside 0..20 and 255")
    assert caches(tree, "val") == cached  # the old cache stays, and is re-checked next start
    replace_keeping_stamps(lab, orig)
    assert scores(tree, weight, tmp_path / "third")
    assert "1 of 40 labels" in eval_log(tmp_path / "third")  # only the replaced label is re-read
