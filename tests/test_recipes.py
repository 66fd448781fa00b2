"""Each method's recipe and protocol (util/config/recipes.py, docs/protocols.md): every shipped config
holds them, switching `model` or `recipe` switches them, and the report marks runs tested
under another protocol."""
import json
import re
from pathlib import Path

import pytest
import torch

from util.config import ConfigError, load_config
from util.config.recipes import RECIPE_KEYS, RECIPES, find_recipe, recipe_table
from util.report import cli as report
from util.report.protocol import departures

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted([*ROOT.glob("config/pascal/*.yaml"), *ROOT.glob("config/coco/*.yaml")])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_holds_its_methods_recipe(path):
    cfg = load_config(str(path))
    recipe = find_recipe(cfg)
    assert recipe is not None, f"{path.name}: no recipe tabled for {cfg.model} on {cfg.dataset}"
    drift = {k: (cfg[k], recipe[k].value) for k in RECIPE_KEYS if cfg[k] != recipe[k].value}
    assert not drift, f"{path.name} differs from docs/protocols.md: {drift}"


def test_recipe_lines_of_shipped_files_name_their_source():
    """A recipe value written in a shipped file carries a comment saying where it comes from."""
    bare = []
    for path in SHIPPED:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            key = line.split(":", 1)[0].strip()
            if key in RECIPE_KEYS and "#" not in line:
                bare.append(f"{path.name}:{n}: {line}")
    assert not bare, "recipe values without a source comment:\n" + "\n".join(bare)


def test_protocols_page_holds_the_generated_table():
    assert recipe_table() in (ROOT / "docs" / "protocols.md").read_text()


def test_asnet_on_the_pascal_config_trains_with_asnets_recipe():
    """`sh train.sh pascal split0_resnet50 model asnet`: the file's NTRENet values give way."""
    cfg = load_config("config/pascal/pascal_split0_resnet50.yaml", ["model", "asnet"])
    assert (cfg.optimizer, cfg.base_lr, cfg.scale_lr, cfg.power, cfg.weight_decay) == ("adam", 1e-3, 1, 0.0, 0.0)
    assert (cfg.batch_size, cfg.train_h, cfg.train_w, cfg.val_size, cfg.test_num) == (12, 400, 400, 400, 1000)
    assert any("base_lr 0.03 -> 0.001" in n for n in cfg._notes)
    weak = load_config("config/pascal/pascal_split0_resnet50.yaml", ["model", "asnet", "weak", "true"])
    assert weak.base_lr == 1e-4
    mine = load_config("config/pascal/pascal_split0_resnet50.yaml", ["model", "asnet", "batch_size", "2"])
    assert mine.batch_size == 2 and mine.base_lr == 1e-3  # the command line still wins
    coco = load_config("config/coco/coco_split0_resnet50.yaml", ["model", "hsnet"])
    assert (coco.test_num, coco.optimizer) == (1000, "adam")


def test_values_set_with_the_method_are_kept(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("dataset: pascal\nbase_lr: 0.5\nbatch_size: 3\n")
    (tmp_path / "later.yaml").write_text("base: base.yaml\nmodel: asnet\n")
    (tmp_path / "same.yaml").write_text("base: base.yaml\nmodel: asnet\nbase_lr: 0.25\n")
    later = load_config(str(tmp_path / "later.yaml"))
    assert (later.base_lr, later.batch_size) == (1e-3, 12)
    same = load_config(str(tmp_path / "same.yaml"))
    assert (same.base_lr, same.batch_size) == (0.25, 12)
    together = load_config(str(base))  # the file that chooses the method states its own values
    assert (together.base_lr, together.batch_size, together.test_num) == (0.5, 3, 1000)


def test_named_presets_and_other_methods():
    release = load_config("config/pascal/pascal_split0_resnet50.yaml", ["recipe", "release"])
    assert (release.base_lr, release.scale_lr, release.batch_size, release.epochs) == (0.0025, 10, 4, 150)
    on_scnet = load_config("config/pascal/pascal_split0_resnet50.yaml", ["recipe", "scnet"])
    assert (on_scnet.test_num, on_scnet.base_lr, on_scnet.use_bgem) == (5000, 0.0025, True)
    qg = load_config("config/pascal/pascal_split1_vgg_qgnet321.yaml")
    assert (qg.train_h, qg.val_size, qg.backbone) == (321, 321, "vgg")
    with pytest.raises(ConfigError, match=r"ntrenet on coco has the presets published.*docs/protocols.md"):
        load_config("config/coco/coco_split0_resnet50.yaml", ["recipe", "release"])
    with pytest.raises(ConfigError, match="no recipes are tabled for ntrenet on toy"):
        load_config("config/toy/toy_split0_vgg.yaml", ["recipe", "release"])
    toy = load_config("config/toy/toy_split0_resnet50.yaml", ["model", "asnet", "weak", "true"])
    assert toy.base_lr == load_config("config/toy/toy_split0_resnet50.yaml").base_lr  # no tabled recipe: the file's


def test_published_test_protocols():
    bam = load_config("config/coco/coco_split2_resnet50_bam.yaml")
    assert (bam.test_num, bam.seeds, bam.test_seed) == (1000, 5, 123)
    scnet = [load_config(f"config/{d}/{d}_split0_resnet50_scnet.yaml").test_num for d in ("pascal", "coco")]
    assert scnet == [5000, 20000]
    assert RECIPES[("ntrenet", "coco")]["published"]["test_num"].value == 4000


def test_fscs_sizes_are_free_and_pfenet_sizes_are_checked():
    cfg = load_config("config/toy/toy_split0_resnet50.yaml", ["model", "asnet", "train_h", "96", "val_size", "96"])
    assert (cfg.train_h, cfg.val_size) == (96, 96)
    with pytest.raises(ConfigError, match=r"'train_h' = 96: must satisfy \(size - 1\) % 8 == 0"):
        load_config("config/toy/toy_split0_vgg.yaml", ["train_h", "96"])


def test_adam_takes_a_step_at_the_configured_rate():
    from train import build_optimizer
    cfg = load_config("config/toy/toy_split0_vgg.yaml", ["optimizer", "adam", "base_lr", "0.01", "weight_decay", "0"])
    net = torch.nn.Linear(3, 1)
    opt = build_optimizer(net, cfg)
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == 0.01
    before = net.weight.detach().clone()
    net(torch.ones(2, 3)).sum().backward()
    opt.step()
    # Adam's first step moves every weight with a nonzero gradient by lr (bias-corrected m / sqrt(v) = sign)
    assert torch.allclose((before - net.weight).abs(), torch.full_like(before, 0.01), atol=1e-6)


def _result(root: Path, name: str, split: int, miou: float, **cfg) -> None:
    config = {"dataset": "pascal", "backbone": "resnet50", "split": split, "shot": 1, **cfg}
    metrics = {"miou": miou, "fbiou": 70.0, "precision": 60.0, "per_class": []}
    record = {"config": config, "metrics": metrics, "seeds": [metrics]}
    if "precision" in cfg:
        record["precision"] = config.pop("precision")
    (root / name).mkdir()
    (root / name / "results_shot1.json").write_text(json.dumps(record))


def test_departures_name_what_differs():
    assert departures({"dataset": "pascal", "test_num": 1000}) == ()
    assert departures({"dataset": "pascal", "test_num": 5000, "val_size": 417}) == (
        "episodes 5000 (published 1000)", "test size 417 (published 473)")
    assert departures({"dataset": "coco", "model": "bam", "test_num": 1000, "seeds": 5, "val_size": 641}) == ()
    assert departures({"dataset": "coco", "model": "bam", "test_num": 4000, "val_size": 641}) == (
        "episodes 4000 (published 1000)", "seeds 1 (published 5)")
    assert departures({"dataset": "pascal"}, "bf16") == ("bf16 (published fp32)",)
    assert departures({"dataset": "pascal", "target": "suim", "test_num": 7}) == ()


def test_report_marks_runs_under_another_protocol(tmp_path):
    _result(tmp_path, "a", 0, 63.1)
    _result(tmp_path, "b", 1, 70.0, test_num=500)
    _result(tmp_path, "c", 2, 60.0, precision="bf16")
    md = report.make_report(tmp_path, "md")["md"]
    assert "63.1 (65.4, -2.3)" in md                     # the published protocol: compared
    assert "70.0† (72.3)" in md and "60.0† (59.4)" in md  # the others: marked, no difference
    assert re.search(r"b/results_shot1.json: episodes 500 \(published 1000\)", md)
    assert re.search(r"c/results_shot1.json: bf16 \(published fp32\)", md)
    csv = report.make_report(tmp_path, "csv")["csv"]
    row = next(line for line in csv.splitlines() if "Fold-1,70.00" in line)
    assert ",72.30,," in row  # paper kept, difference left empty
