"""test_recall.py end to end on the tiny toy tree: a tiny pre-trained prior extractor and a randomly
initialised QGNet checkpoint; the written recall equals a recomputation from the model's maps and
the raw labels, and a model without the prior region map is refused in one line."""
import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pretrain_prior
import test_recall
from model import build_model
from tests.conftest import toy_overrides
from util.config import load_config
from util.data.loader import build_loader
from util.engine.checkpoint import FORMAT
from util.engine.precision import Precision
from util.errors import UserError

CFG = "config/toy/toy_split0_vgg_qgnet.yaml"
PRIOR = ["prior_epochs", "1", "prior_max_iters_per_epoch", "1", "prior_batch_size", "2", "prior_crop", "33",
         "prior_queue", "16", "prior_dim", "8", "prior_segments", "6", "prior_patches_per_image", "3"]


@pytest.fixture(scope="module")
def qgnet_run(tmp_path_factory, toy_tree):
    """(overrides, experiment folder) of a QGNet whose best.pth is a random init over a 1-step prior extractor."""
    out = tmp_path_factory.mktemp("recall")
    prior_dir = out / "prior"
    assert pretrain_prior.main(["--config", "config/toy/toy_prior_vgg.yaml", *toy_overrides(toy_tree), *PRIOR,
                                "save_path", str(prior_dir)]) == 0
    run = out / "qgnet"
    args = [*toy_overrides(toy_tree), *PRIOR, "qgnet_prior_weight", str(prior_dir / "model" / "prior.pth"),
            "save_path", str(run), "batch_size_val", "2"]
    cfg = load_config(CFG, args)
    torch.manual_seed(0)
    net = build_model(cfg)
    (run / "model").mkdir(parents=True)
    torch.save({"format": FORMAT, "model": net.state_dict(), "config": dict(cfg)}, run / "model" / "best.pth")
    return args, run


def _recompute(args, run) -> dict:
    """Hits and foreground pixels of both maps, episode by episode, from the checkpoint's own maps
    resized onto the padded raw label as test.py scores logits. The recount runs at the command's
    precision (fp32: no `amp` key) and memory format, so no threshold pixel flips with the host's
    kernels (another ISA or layout rounds the last bit of a map differently)."""
    cfg = load_config(CFG, args)
    prec = Precision.from_config(cfg, torch.device("cpu"))
    assert prec.dtype is None
    net = build_model(cfg.replace(pretrained=False))
    net.load_state_dict(torch.load(run / "model" / "best.pth", weights_only=True)["model"])
    net.to(memory_format=prec.memory_format).eval()
    hits = {"guided": np.zeros(9, np.int64), "prior": np.zeros(9, np.int64)}
    gt = 0
    with torch.no_grad():
        for batch in build_loader(cfg, "test"):
            b = prec.to_device(batch)
            maps = net.predict_maps(b["query"], b["supports"], b["support_masks"])
            for j, raw in enumerate(batch["raw_mask"]):
                raw = raw.numpy()
                side = max(raw.shape)
                fg = np.zeros((side, side), bool)
                fg[:raw.shape[0], :raw.shape[1]] = raw == 1
                gt += int(fg.sum())
                for key, name in (("prior", "guided"), ("region", "prior")):
                    up = F.interpolate(maps[key][j:j + 1].float(), size=(side, side), mode="bilinear",
                                       align_corners=True)[0, 0].numpy()
                    hits[name] += [int(((up > t) & fg).sum()) for t in np.arange(1, 10, dtype=np.float32) / 10]
    return {"hits": hits, "gt": gt}


def test_recall_command_writes_table_vii_numbers(qgnet_run):
    args, run = qgnet_run
    assert test_recall.main(["--config", CFG, *args]) == 0
    res = json.loads((run / "model" / "recall_shot1.json").read_text())
    assert res["precision"] == "fp32"
    assert (run / "model" / "recall_shot1.log").read_text().splitlines()[0].endswith(
        "evaluation precision fp32 because amp off (the default: mixed precision only when asked); "
        "memory format channels_last (NHWC)")
    assert "Recall_p,gt" in (run / "model" / "recall_shot1.md").read_text()
    assert res["prior"]["episodes"] == res["guided"]["episodes"] == 6
    assert res["prior"]["thresholds"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    for name in ("guided", "prior"):
        vals = res[name]["recall"]
        assert all(0 <= v <= 100 for v in vals)
        assert all(a >= b for a, b in zip(vals, vals[1:]))                 # monotone in the threshold
    assert 0 < res["prior"]["recall"][0] and res["prior"]["recall"][-1] < 100   # a spread map, not a constant
    again = _recompute(args, run)
    assert res["prior"]["gt_pixels"] == res["guided"]["gt_pixels"] == again["gt"] > 0
    assert res["prior"]["hits"] == again["hits"]["prior"].tolist()
    assert res["guided"]["hits"] == again["hits"]["guided"].tolist()
    assert res["prior"]["recall"][4] == pytest.approx(100 * again["hits"]["prior"][4] / again["gt"])


def test_recall_under_another_protocol_never_replaces_a_result_unseen(qgnet_run, tmp_path):
    args, run = qgnet_run
    weight = tmp_path / "best.pth"
    shutil.copy(run / "model" / "best.pth", weight)
    common = ["--config", CFG, *args, "weight", str(weight)]
    assert test_recall.main([*common, "test_num", "2"]) == 0
    first = json.loads((tmp_path / "recall_shot1.json").read_text())
    assert first["protocol"]["episodes"] == 2 and first["provenance"]["commit"] != ""
    with pytest.raises(UserError, match=r"recall_shot1.json holds results under another protocol \(episodes 2 -> 4\)"):
        test_recall.main([*common, "test_num", "4"])
    assert json.loads((tmp_path / "recall_shot1.json").read_text()) == first
    assert test_recall.main([*common, "test_num", "4", "overwrite", "true"]) == 0
    assert json.loads((tmp_path / "recall_shot1.json").read_text())["prior"]["episodes"] == 4


def test_model_without_prior_region_map_is_refused(toy_tree, tmp_path):
    with pytest.raises(UserError, match="has no prior region map.*add `qgnet_prior true`"):
        test_recall.main(["--config", "config/toy/toy_split0_vgg.yaml", *toy_overrides(toy_tree),
                          "save_path", str(tmp_path)])
    assert not any(tmp_path.iterdir())                                      # refused before anything is written


class _FixedMaps(torch.nn.Module):
    """predict_maps of a model whose guided map is 0.5 everywhere and prior region map 1 - x / W."""

    def predict_maps(self, query, supports, support_masks):
        b, _, h, w = query.shape
        region = (1 - torch.arange(w) / w).expand(b, 1, h, w)
        return {"prior": torch.full((b, 1, h, w), 0.5), "region": region}


def test_seeds_pool_and_network_size_scoring(monkeypatch):
    """`seeds 2`: both seeds' episodes in one sum; without ori_resize the maps meet the transformed labels."""
    seeds = []
    mask = torch.tensor([[[1, 1, 0, 255]]])                                 # [B=1, 1, 4]: foreground at x = 0, 1

    def loader(cfg, mode, test_seed):
        seeds.append(test_seed)
        return [{"query": torch.zeros(1, 3, 1, 4), "supports": None, "support_masks": None, "query_mask": mask}]
    monkeypatch.setattr(test_recall, "build_loader", loader)
    cfg = load_config(None, ["seeds", "2", "ori_resize", "false"])
    rec = test_recall.run_recall(cfg, _FixedMaps(), test_recall.Precision(torch.device("cpu")))
    assert seeds == [cfg.test_seed, cfg.test_seed + 1]
    assert rec["prior"].episodes == 2 and rec["prior"].gt_pixels == 4
    # prior region map 1.0 and 0.75 on the foreground: above 0.1-0.7 both, above 0.8 and 0.9 only 1.0
    assert rec["prior"].hits.tolist() == [4] * 7 + [2] * 2
    assert rec["guided"].hits.tolist() == [4] * 4 + [0] * 5                 # 0.5 is not above 0.5
