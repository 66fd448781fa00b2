"""Cross-domain targets: every `python -m util.prepare <target>` on a synthetic download in the
real layout, the loader on what it wrote (classes, masks, episode counts, fixed episodes
independent of the worker count), and the bad inputs each source refuses."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from target_fixtures import MAKERS, make_fss1000
from util.config import load_config
from util.data.benchmarks import get_benchmark
from util.data.cross_domain import target_config
from util.data.dataset import EpisodeDataset
from util.data.index import read_label
from util.data.loader import build_loader
from util.errors import UserError
from util.prepare.cli import main as prepare_main
from util.prepare.deepglobe import keep_tile, tile_boxes
from util.prepare.masks import binary_mask, colour_mask

EXPECTED = {  # target: (list lines, images per class in the fixture)
    "fss1000": (480, None), "isic": (6, [2, 2, 2]), "chestxray": (3, [3]), "suim": (4, None), "deepglobe": (72, None),
}


def prepare(tmp_path: Path, name: str) -> tuple[Path, Path, int]:
    src, out, lists = tmp_path / "download", tmp_path / "data", tmp_path / "lists"
    extra = MAKERS[name](src)
    rc = prepare_main([name, "--src", str(src), "--out", str(out), "--lists", str(lists), "--workers", "1", *extra])
    return out, lists / "test.txt", rc


def target_cfg(name: str, out: Path, lst: Path, **extra):
    pairs = {"dataset": name, "data_root": str(out), "val_list": str(lst), "train_list": str(lst),
             "min_class_pixels": 20, "val_size": 33, "num_workers": 0, "device": "cpu", **extra}
    return load_config(None, [str(x) for kv in pairs.items() for x in kv])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_prepare_and_load(tmp_path, name):
    out, lst, rc = prepare(tmp_path, name)
    assert rc == 0
    lines = lst.read_text().split("\n")[:-1]
    assert len(lines) == EXPECTED[name][0]
    bench = get_benchmark(name)
    labels = [read_label(str(out / line.split()[1])) for line in lines]
    for line, label in zip(lines, labels):  # every line pairs a readable image with a same-sized class map
        image = cv2.imread(str(out / line.split()[0]))
        assert image.shape[:2] == label.shape
        assert set(np.unique(label)) <= set(range(bench.num_classes + 1))
    per_class = [sum(c in np.unique(lb) for lb in labels) for c in range(1, bench.num_classes + 1)]
    assert min(per_class) >= 2
    if EXPECTED[name][1]:
        assert per_class == EXPECTED[name][1]
    n = bench.protocol.episodes
    ds = EpisodeDataset(target_cfg(name, out, lst, test_num=n), "test")
    assert len(ds) == n and ds.classes == list(range(1, bench.num_classes + 1))
    if bench.protocol.balanced:  # episode e tests class e mod C
        assert [cls for _, cls, _ in ds.episodes[:2 * bench.num_classes]] == ds.classes * 2
    else:  # queries walk the list (every image once as query per pass)
        assert [q for q, _, _ in ds.episodes] == [e % len(ds.index.items) for e in range(n)]
    for q, cls, sup in ds.episodes[:20]:
        assert q not in sup and all(cls in ds.index.present[s] for s in (q, *sup))
    item = ds[0]
    assert set(item["raw_mask"].unique().tolist()) <= {0, 1} and item["raw_mask"].sum() > 0
    # a rerun writes nothing new and gives the same list
    before = lst.read_text()
    assert prepare_main([name, "--src", str(tmp_path / "download"), "--out", str(out), "--lists", str(lst.parent),
                         "--workers", "1", *(["--classes", str(tmp_path / "download/class_id.csv")]
                                             if name == "isic" else [])]) == 0
    assert lst.read_text() == before


def test_fixed_episodes_do_not_depend_on_workers(tmp_path):
    out, lst, rc = prepare(tmp_path, "isic")
    assert rc == 0
    batches = {}
    for workers in (0, 2):
        cfg = target_cfg("isic", out, lst, test_num=9, num_workers=workers, batch_size_val=2)
        batches[workers] = [(b["query_path"], b["support_paths"], b["class_id"].tolist(), b["query"].sum().item())
                            for b in build_loader(cfg, "test")]
    assert batches[0] == batches[2] and len(batches[0]) == 5


def test_binary_mask_values(tmp_path):
    for name, values in {"a.png": [[0, 255], [255, 0]], "b.png": [[0, 1], [1, 1]], "c.png": [[0, 127], [128, 255]]}.items():
        cv2.imwrite(str(tmp_path / name), np.array(values, np.uint8))
    assert binary_mask(tmp_path / "a.png").tolist() == [[False, True], [True, False]]
    assert binary_mask(tmp_path / "b.png").tolist() == [[False, True], [True, True]]
    assert binary_mask(tmp_path / "c.png", binarise=True).tolist() == [[False, False], [True, True]]
    with pytest.raises(UserError, match="values \\[127, 128\\]"):
        binary_mask(tmp_path / "c.png")


def test_colour_mask_decodes_drifted_colours(tmp_path):
    rgb = np.array([[[0, 0, 0], [240, 250, 10]], [[130, 20, 140], [12, 200, 255]]], np.uint8)  # BW, FV, RI, WR
    cv2.imwrite(str(tmp_path / "m.bmp"), rgb[..., ::-1])
    palette = {(0, 0, 0): 0, (255, 255, 0): 6, (255, 0, 255): 5, (0, 255, 255): 3}
    assert colour_mask(tmp_path / "m.bmp", palette).tolist() == [[0, 6], [5, 3]]


def test_deepglobe_tiles_and_filter():
    assert tile_boxes(2448, 2448)[7] == (408, 816, 408, 816, "11") and len(tile_boxes(2448, 2448)) == 36
    assert tile_boxes(7, 7)[:2] == [(0, 1, 0, 1, "00"), (0, 1, 1, 2, "01")]  # bounds rounded down
    tile = np.zeros((10, 10), np.uint8)
    assert not keep_tile(tile)  # one colour
    tile[0, :5] = 2  # 5 % of the tile: kept (> 4.8 %)
    assert keep_tile(tile)
    tile[0, 4] = 0  # 4 %: dropped
    assert not keep_tile(tile)


@pytest.mark.parametrize("name, damage, words", [
    ("fss1000", lambda src: cv2.imwrite(str(src / "bus/1.png"), np.full((24, 24), 128, np.uint8)),
     ["bus/1.png", "values [128]", "--binarise"]),
    ("fss1000", lambda src: [p.unlink() for p in (src / "oriole").iterdir()] and (src / "oriole").rmdir(),
     ["FSS-1000 test-class folders", "oriole"]),
    ("chestxray", lambda src: cv2.imwrite(str(src / "masks/MCUCXR_0001_0.png"), np.dstack([np.full((9, 9), v, np.uint8)
                                                                                           for v in (0, 255, 0)])),
     ["MCUCXR_0001_0.png", "has colours"]),
    ("isic", lambda src: (src / "class_id.csv").write_text("ID,Class\nISIC_0000000,melanoma\nISIC_0000001,nevus\n"),
     ["fewer than 2 images", "melanoma (1)"]),
    ("suim", lambda src: cv2.imwrite(str(src / "masks/d_r_0_.bmp"), np.zeros((40, 40), np.uint8)),
     ["d_r_0_.bmp", "is grey", "colour codes"]),
    ("deepglobe", lambda src: cv2.imwrite(str(src / "100_mask.png"), np.full((60, 60, 3), (0, 0, 255), np.uint8)),
     ["100_mask.png", "colour (255, 0, 0)", "no class"]),
    ("deepglobe", lambda src: (src / "101_mask.png").unlink(), ["Deepglobe masks missing", "101_mask.png"]),
])
def test_bad_download_one_line_exit_2_no_list(tmp_path, capsys, name, damage, words):
    src, out, lists = tmp_path / "download", tmp_path / "data", tmp_path / "lists"
    extra = MAKERS[name](src)
    damage(src)
    rc = prepare_main([name, "--src", str(src), "--out", str(out), "--lists", str(lists), "--workers", "1", *extra])
    err = capsys.readouterr().err.strip().split("\n")[-1]
    assert rc == 2 and err.startswith("error: ") and all(w in err for w in words), err
    assert not (lists / "test.txt").exists()


SMALL = {"bus": (4, 1), "oriole": (7, 4), "wig": (10, 9)}  # class: (image n, object pixels)


@pytest.fixture(scope="module")
def fss_tree(tmp_path_factory):
    """FSS-1000 in its real layout: 240 test-class folders of 1..10.jpg + .png, objects of 144
    pixels, three of them of 1, 4 and 9 pixels; prepared as `python -m util.prepare` does."""
    root = tmp_path_factory.mktemp("fss")
    src, out, lists = root / "download", root / "data", root / "lists"
    make_fss1000(src, per_class=10)
    for name, (n, pixels) in SMALL.items():
        mask = np.zeros((24, 24), np.uint8)
        mask.reshape(-1)[:pixels] = 255
        cv2.imwrite(str(src / name / f"{n}.png"), mask)
    assert prepare_main(["fss1000", "--src", str(src), "--out", str(out), "--lists", str(lists), "--workers", "1"]) == 0
    return out, lists / "test.txt"


@pytest.mark.parametrize("shot", [1, 5])
def test_fss1000_every_image_once_as_query_whatever_the_source_config(fss_tree, shot):
    """A PASCAL config (2 x 32 x 32 class pixels, 473 px) tested on FSS-1000 takes the target's
    protocol: 2,400 episodes, each image of the list once as query, every other image of its
    class a support candidate, small objects included."""
    out, lst = fss_tree
    cfg = load_config("config/pascal/pascal_split0_resnet50.yaml",
                      ["target", "fss1000", "target_root", str(out), "target_list", str(lst), "shot", str(shot),
                       "seeds", "3", "num_workers", "0"])
    assert cfg.min_class_pixels == 2048 and cfg.val_size == 473  # what the source says, and the target overrides
    t = target_config(cfg)
    assert (t.test_num, t.seeds, t.val_size, t.min_class_pixels) == (2400, 1, 401, 0)
    ds = EpisodeDataset(t, "test")
    lines = lst.read_text().split("\n")[:-1]
    assert len(ds.index.items) == len(lines) == 2400
    assert sorted(q for q, _, _ in ds.episodes) == list(range(2400))  # every image exactly once
    folder = [path.split("/")[-2] for _, path in ds.index.items]
    names = get_benchmark("fss1000").class_names
    for q, cls, sup in ds.episodes:
        assert names[cls - 1] == folder[q]
        assert ds.index.by_class[cls] == [i for i, f in enumerate(folder) if f == folder[q]]  # all 10 images
        assert len(set(sup)) == shot and q not in sup and set(sup) <= set(ds.index.by_class[cls])
    queried = {ds.index.items[q][1] for q, _, _ in ds.episodes}
    assert all(any(p.endswith(f"{name}/{n}.png") for p in queried) for name, (n, _) in SMALL.items())  # 1-9 px
