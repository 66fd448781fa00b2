"""Each method's published training recipe and test protocol per benchmark, in one table.

A recipe fixes the keys in RECIPE_KEYS (optimiser, learning rate, batch, epochs, image sizes,
test episodes and seeds) for one (method, benchmark) as the method's paper or release states
them; every value carries its source. `recipe: published` (the default) is the recipe that
produced the method's published numbers where that can be known; other presets are named
alternatives (NTRENet's release recipe, QGNet's 321 px rows, BAM's stage 1). docs/protocols.md
is generated from this table (`python -m util.config.recipes`) and tests/test_recipes.py holds every
shipped config to it.

Where a recipe applies (util/config/): a recipe key keeps a value set in the same file as,
or a later one than, the keys that choose the recipe (CHOOSERS); values from earlier files
(a base file written for another method) and the schema defaults give way to the recipe. So
`train.sh pascal split0_resnet50 model asnet` trains with ASNet's recipe, while a fold file that
states its own values keeps them.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

RECIPE_KEYS = ("optimizer", "base_lr", "scale_lr", "power", "weight_decay", "batch_size", "epochs",
               "train_h", "train_w", "val_size", "test_num", "seeds", "test_seed")
# Keys that decide which recipe a config takes (see recipe_method).
CHOOSERS = ("model", "dataset", "recipe", "use_scnet", "use_bgem", "use_doem", "use_pcl", "weak")
PUBLISHED = "published"


class Value(NamedTuple):
    value: Any
    source: str


def _v(**items: tuple[Any, str]) -> dict[str, Value]:
    return {k: Value(*v) for k, v in items.items()}


NTR = "NTRENet paper Sec. 4.2"
PFE_RELEASE = "PFENet release config/*.yaml and poly_learning_rate (x10 on every trained group)"
SEED = "PFENet/NTRENet release test.py (manual_seed 321 for the test episodes)"
PFE_SGD = "PFENet release train.py (SGD momentum 0.9, weight decay 1e-4, poly power 0.9), which it builds on"
PFE_TEST = "PFENet's test protocol (Resize of the longer side), which it follows"
SGD = {"scale_lr": (10, PFE_RELEASE), "seeds": (1, "one draw of episodes"), "test_seed": (321, SEED)}


def _sgd(source: str, lr: float, batch: int, epochs: int, crop: int, val: int, episodes: int,
         episodes_source: str, frame: str = PFE_SGD, val_source: str = PFE_TEST,
         **extra: tuple[Any, str]) -> dict[str, Value]:
    """An SGD + poly recipe (every method built on PFENet's training code); `frame` is the source
    of the optimiser, poly power and weight decay."""
    return _v(**{**SGD, "optimizer": ("sgd", frame), "power": (0.9, frame), "weight_decay": (1e-4, frame),
                 "base_lr": (lr, source), "batch_size": (batch, source), "epochs": (epochs, source),
                 "train_h": (crop, source), "train_w": (crop, source), "val_size": (val, val_source),
                 "test_num": (episodes, episodes_source), **extra})


SCN = "SCNet paper Sec. 4.2"
SCN_TEST = "SCNet paper Sec. 4.1"
BAM_CFG = "BAM release config/{dataset}/*.yaml"
BAM_TEST = ("BAM release test.py (test_num 1000; val_num 5 runs seeded from val_manual_seed 123, their mean; "
            "here seeds 123..127)")
QGN = "QGNet paper Sec. V-B (lr 0.0025 as PFENet's base_lr, batch 4, 200 epochs) and V-A (473 x 473 by default)"
IFSL = "iFSL release fs-cs/main.py (--lr 1e-3, --bsz 12, --niter 2000 epochs; Adam, no schedule)"
IFSL_DATA = "iFSL release fs-cs/data/dataset.py (img_size 400) and pascal.py/coco.py (1000 test episodes)"


def _bam(dataset: str, lr: float, batch: int, epochs: int, crop: int) -> dict[str, Value]:
    src = BAM_CFG.format(dataset=dataset)
    return _sgd(src, lr, batch, epochs, crop, crop, 1000, BAM_TEST, frame=src, val_source=src, seeds=(5, BAM_TEST),
                test_seed=(123, BAM_TEST))


def _ifsl(lr: float, lr_source: str) -> dict[str, Value]:
    return _v(optimizer=("adam", IFSL), base_lr=(lr, lr_source), scale_lr=(1, IFSL), power=(0.0, IFSL),
              weight_decay=(0.0, "iFSL release model/asnet.py (torch Adam, no weight decay)"),
              batch_size=(12, IFSL), epochs=(2000, IFSL), train_h=(400, IFSL_DATA), train_w=(400, IFSL_DATA),
              val_size=(400, IFSL_DATA), test_num=(1000, IFSL_DATA), seeds=(1, IFSL_DATA),
              test_seed=(321, "project seed (the release seeds episode i with i)"))


_WEAK = "iFSL release fs-cs/main.py (--weak: learning rate reduced 10 times)"
_BAM_STAGE1 = "BAM release base-learner config (PSPNet, train_base.py)"

# (method, dataset) -> {preset: {key: Value}}
RECIPES: dict[tuple[str, str], dict[str, dict[str, Value]]] = {
    ("ntrenet", "pascal"): {
        PUBLISHED: _sgd(f"{NTR} (0.03 read as PFENet's base_lr before its x10)", 0.03, 32, 200, 473, 473, 1000,
                        NTR, frame=NTR),
        "release": _sgd("NERTNet release config/pascal/*.yaml (base_lr 0.0025 x 10, batch 4, 150 epochs)",
                        0.0025, 4, 150, 473, 473, 1000, NTR, frame=NTR),
    },
    ("ntrenet", "coco"): {
        PUBLISHED: _sgd(f"{NTR} (0.03 read as PFENet's base_lr before its x10)", 0.03, 32, 50, 473, 473, 4000,
                        NTR, frame=NTR),
    },
    ("scnet", "pascal"): {PUBLISHED: _sgd(SCN, 0.0025, 4, 200, 473, 473, 5000, f"{SCN_TEST} (5000 pairs per fold)")},
    ("scnet", "coco"): {PUBLISHED: _sgd(SCN, 0.005, 8, 50, 473, 473, 20000, f"{SCN_TEST} (20,000 pairs)")},
    ("bam", "pascal"): {
        PUBLISHED: _bam("pascal", 0.005, 8, 200, 473),
        "stage1": _sgd(_BAM_STAGE1, 0.00025, 12, 100, 417, 417, 1000, BAM_TEST, frame=_BAM_STAGE1, seeds=(5, BAM_TEST),
                       test_seed=(123, BAM_TEST)),
    },
    ("bam", "coco"): {
        PUBLISHED: _bam("coco", 0.005, 8, 50, 641),
        "stage1": _sgd(_BAM_STAGE1, 0.00025, 12, 20, 417, 417, 1000, BAM_TEST, frame=_BAM_STAGE1, seeds=(5, BAM_TEST),
                       test_seed=(123, BAM_TEST)),
    },
    ("qgnet", "pascal"): {
        PUBLISHED: _sgd(QGN,
                        0.0025, 4, 200, 473, 473, 1000, "not stated by QGNet: NTRENet's protocol"),
        "321px": _sgd("QGNet paper Sec. V-B and Table I (321 x 321 rows)", 0.0025, 4, 200, 321, 321, 1000,
                      "not stated by QGNet: NTRENet's protocol"),
    },
    ("qgnet", "coco"): {
        PUBLISHED: _sgd("QGNet Table III (473 x 473); its COCO schedule is not stated: NTRENet's", 0.03, 32, 50,
                        473, 473, 4000, "not stated by QGNet: NTRENet's protocol"),
        "321px": _sgd("QGNet Table III (321 x 321 rows); its COCO schedule is not stated: NTRENet's", 0.03, 32, 50,
                      321, 321, 4000, "not stated by QGNet: NTRENet's protocol"),
    },
    ("asnet", "pascal"): {PUBLISHED: _ifsl(1e-3, IFSL), "weak": _ifsl(1e-4, _WEAK)},
    ("asnet", "coco"): {PUBLISHED: _ifsl(1e-3, IFSL), "weak": _ifsl(1e-4, _WEAK)},
    ("hsnet", "pascal"): {PUBLISHED: _ifsl(1e-3, IFSL)},
    ("hsnet", "coco"): {PUBLISHED: _ifsl(1e-3, IFSL)},
}


def recipe_method(cfg: Mapping[str, Any]) -> str:
    """The method whose recipe a config takes: SCNet for PFENet + SCNet's branch (its paper's
    setting); NTRENet's own for NTRENet with every other switch (the Table 3 baseline is trained
    with NTRENet's recipe); otherwise the model's name."""
    modules = any(cfg.get(k) for k in ("use_bgem", "use_doem", "use_pcl"))
    if cfg.get("use_scnet") and cfg.get("model") in ("ntrenet", "pfenet") and not modules:
        return "scnet"
    return str(cfg.get("model"))


def preset_of(cfg: Mapping[str, Any]) -> str:
    """`recipe`, with ASNet's class-tag training taking its own learning rate by default."""
    name = str(cfg.get("recipe", PUBLISHED))
    return "weak" if name == PUBLISHED and cfg.get("weak") and cfg.get("model") == "asnet" else name


def find_recipe(cfg: Mapping[str, Any]) -> dict[str, Value] | None:
    """The recipe of this config, None where no method/benchmark pair is tabled (toy data,
    cross-domain-only benchmarks). `recipe` is a preset of the config's method, or another
    method's name: that method's published recipe (SCNet's n = 0 baseline trains on SCNet's).
    A preset the pair does not have raises KeyError with the presets it has."""
    name, dataset = preset_of(cfg), str(cfg.get("dataset"))
    if (name, dataset) in RECIPES:
        return RECIPES[(name, dataset)][PUBLISHED]
    presets = RECIPES.get((recipe_method(cfg), dataset))
    if presets is None:
        if cfg.get("recipe", PUBLISHED) == PUBLISHED:
            return None
        raise KeyError(f"no recipes are tabled for {recipe_method(cfg)} on {cfg.get('dataset')}")
    if name not in presets:
        methods = sorted({m for m, d in RECIPES if d == dataset})
        raise KeyError(f"{recipe_method(cfg)} on {dataset} has the presets {', '.join(presets)} "
                       f"(or name a method for its published recipe: {', '.join(methods)})")
    return presets[name]


def protocol_of(cfg: Mapping[str, Any]) -> dict[str, Any] | None:
    """Test protocol (episodes, seeds, first seed, test size) of the published numbers of this
    config's method and benchmark; None where none is tabled."""
    try:
        recipe = find_recipe(cfg)
    except KeyError:
        return None
    if recipe is None:
        return None
    return {k: recipe[k].value for k in ("test_num", "seeds", "test_seed", "val_size")}


def _cell(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def recipe_table() -> str:
    """Markdown: one row per (method, benchmark, preset), then every value's source."""
    head = ["method", "benchmark", "preset", *RECIPE_KEYS]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for (method, dataset), presets in RECIPES.items():
        for name, recipe in presets.items():
            rows.append("| " + " | ".join([method, dataset, name, *(_cell(recipe[k].value) for k in RECIPE_KEYS)])
                        + " |")
            by_source: dict[str, list[str]] = {}
            for k in RECIPE_KEYS:
                by_source.setdefault(recipe[k].source, []).append(k)
            notes.append(f"- {method} / {dataset} / {name}: " +
                         "; ".join(f"{', '.join(keys)}: {src}" for src, keys in by_source.items()))
    return "\n".join(rows + ["", "Where each value comes from:", ""] + notes)


if __name__ == "__main__":  # `python -m util.config.recipes`: the table of docs/protocols.md
    import sys
    sys.stdout.write(recipe_table() + "\n")
