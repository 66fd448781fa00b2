"""Config schema: defaults, YAML bases, overrides and the errors users see."""
import glob

import pytest

from util.config import SCHEMA, ConfigError, dump_config, load_config, schema_table


def test_defaults_match_schema():
    cfg = load_config(None)
    assert cfg.shot == 1 and cfg.split == 0 and cfg.ppm_scales == [60, 30, 15, 8]
    assert set(cfg) == set(SCHEMA)


def test_fold_file_extends_base():
    cfg = load_config("config/pascal/pascal_split2_vgg.yaml")
    assert (cfg.split, cfg.backbone, cfg.dataset, cfg.base_lr) == (2, "vgg", "pascal", 0.03)
    coco = load_config("config/coco/coco_split3_resnet101.yaml")
    assert coco.ppm_scales == [1.0, 0.5, 0.25, 0.125] and coco.test_num == 4000


@pytest.mark.parametrize("path", sorted(glob.glob("config/*/*_split*.yaml")))
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.dataset in path and f"split{cfg.split}" in path and cfg.backbone in path


def test_overrides_are_typed():
    cfg = load_config("config/pascal/pascal_split0_resnet50.yaml",
                      ["shot", "5", "base_lr", "0.0025", "use_pcl", "false", "ppm_scales", "[1.0,0.5]"])
    assert cfg.shot == 5 and cfg.base_lr == 0.0025 and cfg.use_pcl is False
    assert cfg.ppm_scales == [1.0, 0.5]


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError, match="unknown config key 'bas_lr'.*did you mean 'base_lr'"):
        load_config(None, ["bas_lr", "0.1"])


def test_typo_in_yaml_names_file(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("shoot: 1\n")
    with pytest.raises(ConfigError, match=r"'shoot' in .*x.yaml.*'shot'"):
        load_config(str(p))


@pytest.mark.parametrize("pairs, needle", [
    (["train_h", "470"], "size - 1"),
    (["split", "4"], "fold"),
    (["shot", "0"], ">= 1"),
    (["shot", "one"], "expected int"),
    (["use_bgem", "maybe"], "expected bool"),
    (["backbone", "resnet18"], "not one of"),
    (["scale_min", "2.0"], "swap"),
    (["shot"], "no value"),
])
def test_bad_values_are_named(pairs, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config(None, pairs)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("shot: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))


def test_dump_round_trip(tmp_path):
    cfg = load_config("config/toy/toy_split1_resnet50.yaml", ["shot", "5"])
    dump_config(cfg, str(tmp_path / "config.yaml"))
    again = load_config(str(tmp_path / "config.yaml"))
    assert {k: again[k] for k in SCHEMA} == {k: cfg[k] for k in SCHEMA}


def test_schema_table_lists_every_key():
    table = schema_table()
    assert all(f"`{k}`" in table for k in SCHEMA)


def test_configuration_page_documents_every_key():
    page = open("docs/configuration.md").read()
    missing = [k for k in SCHEMA if f"`{k}`" not in page]
    assert not missing, f"keys missing from docs/configuration.md: {missing}"
    assert schema_table() in page, "docs/configuration.md's key table is stale: paste `python -m util.config`"


def test_replace_is_validated_and_copies():
    cfg = load_config(None, [])
    new = cfg.replace(shot=5, test_seed=7)
    assert (new.shot, new.test_seed, cfg.shot, cfg.test_seed) == (5, 7, 1, 321)
    with pytest.raises(ConfigError, match="shot.*must be >= 1"):
        cfg.replace(shot=0)
    with pytest.raises(ConfigError, match="unknown config key 'shots'.*did you mean 'shot'"):
        cfg.replace(shots=5)
    with pytest.raises(ConfigError, match="scale_min.*swap"):
        cfg.replace(scale_min=2.0)
    assert cfg.replace(model="pfenet").use_pcl is False  # the method's fixed values apply
