"""Other frameworks' config forms: PFENet / released NTRENet / BAM sectioned YAML files load as they
are (each mapped or dropped key reported once), their names get hints elsewhere, and
mmsegmentation-/HSNet-style command-line options are read or answered with our form."""
import pytest

from util.config.compat import normalise_overrides
from util.config import ConfigError, load_config
from util.engine.runtime import config_args, setup_logging
from util.errors import UserError

# Written for these tests in the layout of each release: same sections and key names, own values.
PFENET = """\
DATA:
  data_root: data/voc
  train_list: lists/pascal/train.txt
  val_list: lists/pascal/val.txt
  classes: 2
TRAIN:
  layers: 101
  sync_bn: False
  train_h: 201
  train_w: 201
  val_size: 201
  zoom_factor: 8
  aux_weight: 1.0
  train_gpu: [0]
  workers: 3
  batch_size: 6
  base_lr: 0.0025
  epochs: 50
  save_path: exp/pascal/split2_resnet101/model
  weight:
  resume:
  evaluate: True
  split: 2
  shot: 1
  vgg: False
  ppm_scales: [60, 30, 15, 8]
  use_coco: False
  use_split_coco: False
Distributed:
  dist_url: tcp://127.0.0.1:6789
  multiprocessing_distributed: False
  world_size: 1
  use_apex: False
  opt_level: 'O0'
  keep_batchnorm_fp32:
"""

NTRENET_RELEASE = """\
DATA:
  data_root: data/coco
  train_list: lists/coco/train.txt
  val_list: lists/coco/val.txt
  classes: 2
TRAIN:
  layers: 50
  vgg: True
  workers: 2
  batch_size: 4
  split: 1
  shot: 5
  use_coco: True
  use_split_coco: True
  save_path: ./results/coco/vgg_5shot
  bgpro_num: 2
Distributed:
  dist_backend: 'nccl'
  rank: 0
"""

BAM = """\
Data:
  data_root: data/voc
  base_data_root: data/base_annotation/pascal/
  train_list: lists/pascal/train.txt
  val_list: lists/pascal/val.txt
  classes: 2
Train:
  split: 3
  shot: 1
  data_set: 'pascal'
  use_split_coco: False
  batch_size: 8
  index_split: -1
  stop_interval: 75
  seed_deterministic: False
  fix_bn: True
  SubEpoch_val: True
Method:
  layers: 50
  vgg: False
  aux_weight1: 1.0
  aux_weight2: 1.0
  low_fea: 'layer2'
  kshot_trans_dim: 2
  merge: 'final'
  merge_tau: 0.9
Test_Finetune:
  weight:
  ann_type: 'mask'
"""


def _load(tmp_path, text, *overrides):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return load_config(str(path), list(overrides)), str(path)


def test_pfenet_file_loads_as_it_is(tmp_path):
    cfg, path = _load(tmp_path, PFENET)
    assert (cfg.backbone, cfg.num_workers, cfg.split, cfg.dataset) == ("resnet101", 3, 2, "pascal")
    assert (cfg.train_h, cfg.batch_size, cfg.epochs, cfg.base_lr) == (201, 6, 50, 0.0025)
    assert cfg.save_path == "exp/pascal/split2_resnet101"  # PFENet's save_path is the model/ folder
    assert cfg.coco_fold_style == "contiguous"
    notes = "\n".join(cfg._notes)
    for key in ("TRAIN.layers", "TRAIN.workers", "TRAIN.aux_weight", "DATA.classes", "Distributed.use_apex",
                "TRAIN.save_path", "Distributed.keep_batchnorm_fp32"):
        assert notes.count(key) == 1, key
    assert "TRAIN.batch_size" not in notes  # our own names pass without a note
    assert all(n.startswith(path) for n in cfg._notes)


def test_released_ntrenet_file_loads(tmp_path):
    cfg, _ = _load(tmp_path, NTRENET_RELEASE)
    assert (cfg.backbone, cfg.dataset, cfg.coco_fold_style, cfg.shot) == ("vgg", "coco", "interleaved", 5)
    assert cfg.save_path == "./results/coco/vgg_5shot"
    assert any("bgpro_num ignored" in n and "bg_dim" in n for n in cfg._notes)


def test_bam_file_loads(tmp_path):
    cfg, _ = _load(tmp_path, BAM, "shot", "5")
    assert (cfg.backbone, cfg.dataset, cfg.split, cfg.shot, cfg.batch_size) == ("resnet50", "pascal", 3, 5, 8)
    assert cfg.deterministic is False and cfg.weight == ""
    dropped = [n.split(": ")[1].split(" ")[0] for n in cfg._notes if " ignored: " in n]
    assert sorted(dropped) == sorted(
        ["Data.classes", "Data.base_data_root", "Train.index_split", "Train.stop_interval", "Train.fix_bn",
         "Train.SubEpoch_val", "Method.aux_weight2", "Method.merge", "Test_Finetune.ann_type"])
    assert (cfg.model, cfg.low_layer, cfg.loss_meta, cfg.kshot_hidden) == ("bam", "layer2", 1.0, 2)


def test_key_in_two_sections_is_refused(tmp_path):
    with pytest.raises(UserError, match="'shot' is set in both section TRAIN and TEST"):
        _load(tmp_path, "TRAIN:\n  shot: 1\nTEST:\n  shot: 5\n")


def test_unknown_key_in_sectioned_file_still_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'bse_lr'.*did you mean 'base_lr'"):
        _load(tmp_path, "TRAIN:\n  bse_lr: 0.1\n")


@pytest.mark.parametrize("name, hint", [
    ("aux_weight", "loss_ini and loss_fem"), ("use_split_coco", "coco_fold_style"), ("layers", "backbone resnet50"),
    ("workers", "num_workers"),
])
def test_old_names_in_flat_form_get_our_name(tmp_path, name, hint):
    with pytest.raises(ConfigError, match=f"unknown config key '{name}'.*{hint}"):
        load_config(None, [name, "1"])
    with pytest.raises(ConfigError, match=hint):
        _load(tmp_path, f"{name}: 1\n")


def test_cfg_options_and_equals_form():
    assert normalise_overrides(["--cfg-options", "shot=5", "base_lr=0.01"]) == ["shot", "5", "base_lr", "0.01"]
    assert normalise_overrides(["weight", "a=b.pth", "shot=5"]) == ["weight", "a=b.pth", "shot", "5"]
    cfg = load_config(None, ["--cfg-options", "shot=5", "split=2"])
    assert (cfg.shot, cfg.split) == (5, 2)


@pytest.mark.parametrize("option, form", [("--fold", "split 1"), ("--nshot", "shot 1"), ("--load", "weight 1"),
                                          ("--base-lr", "base_lr 1")])
def test_other_options_answered_with_our_form(option, form):
    with pytest.raises(UserError, match=f"option '{option}' is not taken here.*`{form}`"):
        load_config(None, [option, "1"])


def test_cli_keeps_overrides_in_order():
    args = config_args(["shot", "5", "--config", "x.yaml", "--fold", "1"], "doc")
    assert args.config == "x.yaml" and args.opts == ["shot", "5", "--fold", "1"]
    assert config_args(["--config=y.yaml", "a=1"], "doc").opts == ["a=1"]


def test_notes_logged_once(tmp_path, capsys):
    cfg, _ = _load(tmp_path, PFENET)
    setup_logging(None, notes=cfg._notes)
    out = capsys.readouterr().out
    assert out.count("TRAIN.layers") == 1 and out.count("INFO config: ") == len(cfg._notes)
