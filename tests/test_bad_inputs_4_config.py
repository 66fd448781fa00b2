"""Third bad-input catalogue, class "config values": every number is finite and in range at
load, and YAML files are read with limits (no alias bombs, string keys, no key set twice). Each
case is one `error:` line naming the key or file:line (docs/reliability.md)."""
import re

import pytest

from util.config import ConfigError, load_config


@pytest.mark.parametrize("key, value, says", [
    ("rotate_min", "-.inf", "must be a finite number"),
    ("scale_min", ".nan", "must be a finite number"),
    ("ppm_scales", "[60, .inf]", "must be a finite number"),
    ("loss_pcl", ".nan", "must be a finite number"),  # NaN passed `v >= 0` checks before
    ("prior_lr", "1.0e+300", "must be at most 1e+06"),
    ("test_seed", str(2**64), "must be at most 2147483647"),
    ("manual_seed", "-3", "must be >= 0"),
    ("train_h", "65537", "must be at most 4097"),
    ("scale_max", "40.0", "must be in [0.1, 10]"),
    ("scale_min", "0.001", "must be in [0.1, 10]"),
    ("rotate_max", "720.0", "must be in [-360, 360]"),
    ("ignore_label", "-1", "must be in 0..255"),
    ("test_num", str(10**12), "must be at most 2147483647"),
])
def test_numbers_out_of_range_are_refused_naming_the_key(key, value, says):
    with pytest.raises(ConfigError, match=rf"config key '{key}' in command line = .*: {re.escape(says)}"):
        load_config(None, [key, value])


@pytest.mark.parametrize("text, line, says", [
    ("shot: 1\nsplit: 0\nshot: 5\n", 3, "key 'shot' is set twice"),
    ("x: &n 1\ny: &l [*n, *n]\nppm_scales: [*l, *l]\n", 3, "alias *l repeats a list or mapping"),
    ("base_lr: 0.01\n3: 4\n", 2, "key 3 is not a name"),
    ("TRAIN:\n  base_lr: 0.01\n  base_lr: 0.02\n", 3, "key 'base_lr' is set twice"),
    ("true: 1\n", 1, "key True is not a name"),
])
def test_yaml_limits_name_file_and_line(tmp_path, text, line, says):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"c.yaml:{line}: not valid YAML \({re.escape(says)}"):
        load_config(str(path))


def test_an_alias_of_a_plain_value_is_still_read(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train_h: &side 97\ntrain_w: *side\n")
    cfg = load_config(str(path))
    assert (cfg.train_h, cfg.train_w) == (97, 97)


@pytest.mark.parametrize("layers", [18, 152, "'50'"])
def test_pfenet_layers_without_a_backbone_here_is_refused(tmp_path, layers):
    path = tmp_path / "pfenet.yaml"
    path.write_text(f"DATA:\n  data_root: d\nTRAIN:\n  layers: {layers}\n  vgg: False\n")
    with pytest.raises(Exception, match=r"TRAIN.layers = .*ResNet-50 and ResNet-101 only"):
        load_config(str(path))


def test_pfenet_layers_is_ignored_under_vgg(tmp_path):
    path = tmp_path / "pfenet.yaml"
    path.write_text("TRAIN:\n  layers: 152\n  vgg: True\n")
    assert load_config(str(path)).backbone == "vgg"
