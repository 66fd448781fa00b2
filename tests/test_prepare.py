"""util.prepare on tiny synthetic VOC/SBD and COCO trees (docs/design.md §3.1)."""
import json
import os

import cv2
import numpy as np
import pytest
import scipy.io
from PIL import Image
from pycocotools import mask as mask_utils

from util.errors import UserError
from util.prepare import main
from util.prepare.coco import prepare_coco
from util.prepare.pascal import prepare_pascal

VOC_TRAIN, VOC_VAL = ["2007_000001", "2007_000002"], ["2007_000003", "2007_000004"]
SBD_TRAIN, SBD_VAL = ["2007_000002", "2008_000010"], ["2007_000003", "2008_000011"]
SBD_ONLY_IMAGE = "2008_000011"  # its JPEG exists only in SBD's img/
H, W = 12, 16


def _jpg(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(path)


def _voc_png(path, cls):
    """A VOC-style palette PNG: class `cls` in a block, a 255 band around it."""
    label = np.zeros((H, W), np.uint8)
    label[2:10, 2:10] = 255
    label[3:9, 3:9] = cls
    img = Image.fromarray(label)
    img.putpalette([(i * 37) % 256 for i in range(768)])  # L + palette -> mode P
    assert img.mode == "P"
    img.save(path)
    return label


def _sbd_mat(path, cls):
    label = np.zeros((H, W), np.uint8)
    label[:, W // 2:] = cls
    scipy.io.savemat(path, {"GTcls": {"Segmentation": label, "Boundaries": np.zeros((1, 1), object),
                                      "CategoriesPresent": np.array([cls], np.uint8)}})
    return label


def _ids_file(path, ids):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(ids) + "\n")


@pytest.fixture
def pascal(tmp_path):
    """VOC labels use class 5 (train) / 6 (val); SBD labels class 7."""
    voc, sbd = tmp_path / "VOC2012", tmp_path / "dataset"
    (voc / "SegmentationClass").mkdir(parents=True)
    (sbd / "cls").mkdir(parents=True)
    _ids_file(voc / "ImageSets" / "Segmentation" / "train.txt", VOC_TRAIN)
    _ids_file(voc / "ImageSets" / "Segmentation" / "val.txt", VOC_VAL)
    _ids_file(sbd / "train.txt", SBD_TRAIN)
    _ids_file(sbd / "val.txt", SBD_VAL)
    expect = {}
    for i in SBD_TRAIN + SBD_VAL:
        expect[i] = _sbd_mat(sbd / "cls" / f"{i}.mat", 7)
        _jpg(sbd / "img" / f"{i}.jpg")
    for i in VOC_TRAIN + VOC_VAL:
        expect[i] = _voc_png(voc / "SegmentationClass" / f"{i}.png", 5 if i in VOC_TRAIN else 6)
    for i in set(expect) - {SBD_ONLY_IMAGE}:
        _jpg(voc / "JPEGImages" / f"{i}.jpg")
    return voc, sbd, tmp_path / "out", tmp_path / "lists", expect


def _list_ids(path):
    lines = path.read_text().splitlines()
    assert all(line == f"JPEGImages/{line[11:22]}.jpg SegmentationClassAug/{line[11:22]}.png" for line in lines)
    return [line[11:22] for line in lines]


def test_sbd_mat_round_trip(tmp_path):
    label = _sbd_mat(tmp_path / "x.mat", 3)
    loaded = scipy.io.loadmat(tmp_path / "x.mat")["GTcls"][0]["Segmentation"][0]
    assert loaded.shape == (H, W) and (loaded == label).all()


def test_pascal_labels_images_lists(pascal):
    voc, sbd, out, lists, expect = pascal
    report = prepare_pascal(voc, sbd, out, lists, workers=1)
    train = set(VOC_TRAIN) | set(SBD_TRAIN) | set(SBD_VAL)
    assert _list_ids(lists / "train.txt") == sorted(train - set(VOC_VAL))
    assert _list_ids(lists / "val.txt") == sorted(VOC_VAL)
    assert report["labels_written"] == len(expect) == 6  # one label per distinct id
    for i in _list_ids(lists / "train.txt") + _list_ids(lists / "val.txt"):
        label = cv2.imread(str(out / "SegmentationClassAug" / f"{i}.png"), cv2.IMREAD_GRAYSCALE)
        assert (label == expect[i]).all(), i  # what the data loader will read
        assert cv2.imread(str(out / "JPEGImages" / f"{i}.jpg")).shape == (H, W, 3)
    both = "2007_000002"  # VOC train and SBD train: VOC's label (with its 255 band) wins
    assert set(np.unique(cv2.imread(str(out / "SegmentationClassAug" / f"{both}.png"), 0))) == {0, 5, 255}
    assert os.path.realpath(out / "JPEGImages" / f"{SBD_ONLY_IMAGE}.jpg") == str((sbd / "img" / f"{SBD_ONLY_IMAGE}.jpg").resolve())


def test_pascal_rerun_writes_nothing_and_redoes_interrupted(pascal):
    voc, sbd, out, lists, _ = pascal
    prepare_pascal(voc, sbd, out, lists, workers=2)
    files = sorted(out.rglob("*")) + sorted(lists.glob("*"))
    mtimes = [f.lstat().st_mtime_ns for f in files]
    report = prepare_pascal(voc, sbd, out, lists, workers=2)
    assert report["labels_written"] == report["images_linked"] == report["lists_written"] == 0
    assert [f.lstat().st_mtime_ns for f in files] == mtimes
    (out / "SegmentationClassAug" / "2008_000010.png").unlink()  # as if interrupted before os.replace
    (out / "SegmentationClassAug" / "2008_000010.png.tmp-999").write_bytes(b"\x89PNG truncated")
    assert prepare_pascal(voc, sbd, out, lists)["labels_written"] == 1
    assert sorted(p.name for p in (out / "SegmentationClassAug").iterdir() if "tmp" in p.name) == []


def test_pascal_out_is_voc_folder(pascal):
    voc, sbd, _, lists, _ = pascal
    report = prepare_pascal(voc, sbd, voc, lists)
    assert report["images_linked"] == 1  # only the SBD-only image needs a link
    assert not (voc / "JPEGImages" / "2007_000001.jpg").is_symlink()


def test_external_train_list(pascal, tmp_path):
    voc, sbd, out, lists, _ = pascal
    ext = tmp_path / "voc_sbd_merge_noduplicate.txt"
    chosen = ["2008_000011", "2007_000001"]
    ext.write_text("".join(f"JPEGImages/{i}.jpg SegmentationClassAug/{i}.png\n" for i in chosen))
    report = prepare_pascal(voc, sbd, out, lists, train_list=ext)
    assert report["train"] == 2 and (lists / "train.txt").read_text() == ext.read_text()
    ext.write_text(ext.read_text() + "JPEGImages/2007_000002.jpg SegmentationClassAug/2007_000009.png\n")
    with pytest.raises(UserError, match=f"{ext}:3: expected"):
        prepare_pascal(voc, sbd, out, lists, train_list=ext)
    ext.write_text("JPEGImages/2099_000001.jpg SegmentationClassAug/2099_000001.png\n")
    with pytest.raises(UserError, match=f"{ext}:1: names .*2099_000001"):
        prepare_pascal(voc, sbd, out, lists, train_list=ext)


def _break(kind, voc, sbd):
    if kind == "no_voc":
        return voc / "nope", "VOC2012"
    if kind == "no_cls":
        (sbd / "cls").rename(sbd / "cls_old")
        return voc, "cls"
    if kind == "corrupt_png":
        (voc / "SegmentationClass" / "2007_000001.png").write_bytes(b"not a png")
        return voc, "2007_000001.png"
    if kind == "rgb_png":
        Image.new("RGB", (W, H)).save(voc / "SegmentationClass" / "2007_000004.png")
        return voc, "2007_000004.png.*palette"
    if kind == "corrupt_mat":
        (sbd / "cls" / "2008_000010.mat").write_bytes(b"MATLAB garbage" * 20)
        return voc, "2008_000010.mat"
    if kind == "missing_image":
        (sbd / "img" / f"{SBD_ONLY_IMAGE}.jpg").unlink()
        return voc, f"1 images missing: .*{SBD_ONLY_IMAGE}.jpg"
    (voc / "SegmentationClass" / "2007_000003.png").unlink()  # missing VOC label of a VOC id
    return voc, "1 label files missing: .*SegmentationClass/2007_000003.png"


@pytest.mark.parametrize("kind", ["no_voc", "no_cls", "corrupt_png", "rgb_png", "corrupt_mat",
                                  "missing_image", "missing_voc_label"])
def test_pascal_bad_inputs(pascal, kind):
    voc, sbd, out, lists, _ = pascal
    voc_arg, pattern = _break(kind, voc, sbd)
    with pytest.raises(UserError, match=pattern):
        prepare_pascal(voc_arg, sbd, out, lists, workers=2)  # errors cross the worker pool
    assert not (lists / "train.txt").exists()


def test_cli_reports_user_error(tmp_path, capsys):
    code = main(["pascal", "--voc", str(tmp_path / "missing"), "--sbd", str(tmp_path), "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'missing'}")


# --- COCO ---------------------------------------------------------------------------------
CH, CW = 20, 30


def _poly(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


@pytest.fixture
def coco(tmp_path):
    """Category ids 3, 10, 42 -> classes 1, 2, 3."""
    root = tmp_path / "coco"
    cats = [{"id": c, "name": f"c{c}"} for c in (42, 3, 10)]
    crowd = {"counts": [22 * CH, 8 * CH], "size": [CH, CW]}  # uncompressed, column-major: x >= 22
    small = np.zeros((CH, CW), np.uint8, order="F")
    small[0:4, 0:4] = 1
    rle = mask_utils.encode(small)
    rle["counts"] = rle["counts"].decode()
    anns = {"train2014": [  # the small instance comes first: file order would hide it
        dict(id=1, image_id=1, category_id=3, segmentation=_poly(5, 5, 10, 10), iscrowd=0),
        dict(id=2, image_id=1, category_id=10, segmentation=_poly(0, 0, 20, 15), iscrowd=0),
        dict(id=3, image_id=1, category_id=42, segmentation=crowd, iscrowd=1),
        dict(id=4, image_id=2, category_id=42, segmentation=rle, iscrowd=0)],
        "val2014": [dict(id=5, image_id=7, category_id=10, segmentation=_poly(2, 2, 8, 8), iscrowd=0)]}
    for split, ids in (("train2014", [1, 2, 3]), ("val2014", [7])):
        images = [{"id": i, "file_name": f"COCO_{split}_{i:012d}.jpg", "height": CH, "width": CW} for i in ids]
        (root / split).mkdir(parents=True)
        for img in images:
            Image.new("RGB", (CW, CH)).save(root / split / img["file_name"])
        (root / "annotations").mkdir(exist_ok=True)
        data = {"images": images, "annotations": anns[split], "categories": cats}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root, tmp_path / "out", tmp_path / "lists"


def _coco_label(out, split, i):
    return cv2.imread(str(out / "annotations" / split / f"COCO_{split}_{i:012d}.png"), cv2.IMREAD_GRAYSCALE)


def test_coco_labels_and_lists(coco):
    root, out, lists = coco
    report = prepare_coco(root, out, lists, workers=1)
    assert report["train"] == 3 and report["val"] == 1 and report["labels_written"] == 4
    one = _coco_label(out, "train2014", 1)
    assert one[7, 7] == 1 and one[12, 15] == 2 and one[18, 2] == 0  # small on big, background
    assert (one[:, 22:] == 255).all() and set(np.unique(one)) == {0, 1, 2, 255}
    two = _coco_label(out, "train2014", 2)
    assert (two[0:4, 0:4] == 3).all() and two.sum() == 16 * 3
    assert not _coco_label(out, "train2014", 3).any()  # no annotation: all background, still listed
    assert _coco_label(out, "val2014", 7)[5, 5] == 2
    assert (lists / "val.txt").read_text() == \
        "val2014/COCO_val2014_000000000007.jpg annotations/val2014/COCO_val2014_000000000007.png\n"
    for line in (lists / "train.txt").read_text().splitlines():
        image, label = line.split()
        assert cv2.imread(str(out / image)).shape == (CH, CW, 3) and (out / label).is_file()
    assert (out / "train2014").is_symlink()


def test_coco_rerun_via_cli_writes_nothing(coco):
    root, out, lists = coco
    args = ["coco", "--coco", str(root), "--out", str(out), "--lists", str(lists), "--workers", "2"]
    assert main(args) == 0
    files = sorted(out.rglob("*")) + sorted(lists.glob("*"))
    mtimes = [f.lstat().st_mtime_ns for f in files]
    assert prepare_coco(root, out, lists)["labels_written"] == 0
    assert [f.lstat().st_mtime_ns for f in files] == mtimes
    assert prepare_coco(root, root, lists)["dirs_linked"] == 0  # OUT may be the COCO folder


@pytest.mark.parametrize("kind", ["no_json", "bad_json", "bad_category", "bad_segmentation"])
def test_coco_bad_inputs(coco, kind):
    root, out, lists = coco
    path = root / "annotations" / "instances_val2014.json"
    data = json.loads(path.read_text())
    if kind == "no_json":
        path.unlink()
    elif kind == "bad_json":
        path.write_text("{truncated")
    else:
        key, value = {"bad_category": ("category_id", 99),
                      "bad_segmentation": ("segmentation", {"counts": [5, 9999], "size": [CH, CW]})}[kind]
        data["annotations"][0][key] = value
        path.write_text(json.dumps(data))
    with pytest.raises(UserError, match="instances_val2014.json"):
        prepare_coco(root, out, lists)
