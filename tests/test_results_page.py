"""The HTML results page (`python -m util.report DIR --html PAGE`) rendered from a small fixture:
two runs' results files, event files written by the project's EventWriter, and vis panels drawn
by util/evaluation/vis.py; checked as a page (tables, figures, embedded images) and piece by piece."""
import base64
import json
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest
import torch

from util import report
from util.engine.tb import EventWriter
from util.errors import UserError
from util.evaluation.vis import panel
from util.report import grid
from util.report.events import find_curves, read_records, read_scalars

CLASSES = [(1, "aeroplane"), (2, "bicycle"), (3, "bird"), (4, "boat"), (5, "bottle")]
FULL = {"use_bgem": True, "use_doem": True, "use_pcl": True, "pcl_negatives": "do", "bg_dim": 256}
BASE = {"use_bgem": False, "use_doem": False, "use_pcl": False}


class Page(HTMLParser):
    """Tables, headings, and the decoded PNGs of a page."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.headings, self.pngs, self.figures, self._tag = 0, [], [], 0, None
        self.grid_rows = 0
        self._in_grid = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tables += tag == "table"
        self.figures += tag == "figure"
        self._in_grid = self._in_grid or a.get("class") == "grid"
        self.grid_rows += tag == "tr" and self._in_grid
        if tag == "img":
            assert a["src"].startswith("data:image/png;base64,")  # embedded: opens from disk
            self.pngs.append(cv2.imdecode(np.frombuffer(base64.b64decode(a["src"].split(",", 1)[1]), np.uint8),
                                          cv2.IMREAD_COLOR))
        self._tag = tag

    def handle_endtag(self, tag):
        self._in_grid = self._in_grid and tag != "table"

    def handle_data(self, data):
        if self._tag in ("h2", "h3") and data.strip():
            self.headings.append(data.strip())


def write_run(root, name, flags, miou, ious, seed):
    """A run folder as train.py/test.py leave it: model/results_shot1.json, its _vis panels, tb/ events."""
    folder = root / name / "model"
    folder.mkdir(parents=True)
    per_class = [{"id": i, "name": n, "iou": v, "episodes": 4} for (i, n), v in zip(CLASSES, ious)]
    metrics = {"miou": miou, "fbiou": 60.0, "precision": 50.0, "per_class": per_class}
    base = {"prior_only": {"miou": 12.5, "fbiou": 40.0, "per_class": []}}
    cfg = {"dataset": "pascal", "backbone": "resnet50", "split": 0, "shot": 1, **flags}
    (folder / "results_shot1.json").write_text(json.dumps({"config": cfg, "metrics": metrics, "baselines": base}))
    write_panels(folder / "results_shot1_vis", seed)
    writer = EventWriter(str(root / name / "tb"))
    for it in range(1, 6):
        writer.add_scalar("loss/main", 1.0 / it, it)
        writer.add_scalar("lr", 0.01 * (1 - it / 6), it)
    writer.add_scalar("val/miou", miou, 5)
    writer.close()


def write_panels(folder, pred_seed, episodes=3, size=24):
    """Panels of the same three episodes (query/support from a fixed seed), predictions from pred_seed."""
    folder.mkdir()
    g, p = torch.Generator().manual_seed(0), torch.Generator().manual_seed(pred_seed)
    for e in range(episodes):
        q, s = torch.randn(1, 3, size, size, generator=g), torch.randn(1, 1, 3, size, size, generator=g)
        sm, qm = (torch.rand(1, 1, size, size, generator=g) > 0.5).long(), (torch.rand(1, size, size, generator=g) > 0.5).long()
        maps = {"bg": torch.rand(1, 1, size, size), "do": torch.rand(1, 1, size, size),
                "ini": torch.randn(1, 2, size, size), "logits": torch.randn(1, 2, size, size, generator=p)}
        cv2.imwrite(str(folder / f"episode{e:04d}.png"), panel(q, s, sm, qm, maps)[..., ::-1])


@pytest.fixture
def results(tmp_path):
    write_run(tmp_path, "split0_resnet50", FULL, 66.0, [70.0, 40.0, 80.0, 55.0, 60.0], seed=1)
    write_run(tmp_path, "split0_resnet50_base", BASE, 61.0, [65.0, 30.0, 75.0, 50.0, 58.0], seed=2)
    return tmp_path


def test_page_structure(results, tmp_path):
    out = tmp_path / "page" / "results.html"
    assert report.main([str(results), "--html", str(out)]) == 0
    page = Page(out.read_text())
    assert page.headings == ["Runs", "Tables", "Table 1 (PASCAL-5i): class mIoU per fold, mean, FB-IoU",
                             "Table 3 (module ablation): pascal, ResNet-50, 1-shot",
                             "Sources: the folder and protocol of every result above", "Per-class IoU",
                             "Training curves", "Qualitative results", "pascal fold 0, 1-shot"]
    assert page.tables == 5  # runs, Tables 1 and 3 and the sources (as the Markdown report), grid
    # one bar chart (both runs share pascal fold 0 1-shot) + curves loss/main, lr, val/miou
    assert page.figures == 4
    # 4 charts + grid: 3 episodes x (support, query, 2 runs)
    assert len(page.pngs) == 4 + 3 * 4 and all(img is not None and img.size for img in page.pngs)
    assert page.grid_rows == 1 + 3  # header + one row per episode shared by both runs
    text = out.read_text()
    assert '66.0 <span class="paper">(65.4)</span> <span class="up">+0.6</span>' in text  # NTRENet fold 0
    assert '61.0 <span class="paper">' in text and 'class="down"' in text  # baseline below PFENet
    assert "prior_only mIoU (trivial)" in text and "12.5" in text
    assert text.count("as published") == 2  # PASCAL's 1,000 episodes at 473 (the schema defaults)


def test_runs_tested_off_protocol_are_marked(tmp_path):
    write_run(tmp_path, "short", FULL, 66.0, [70.0] * 5, seed=1)
    path = tmp_path / "short/model/results_shot1.json"
    data = json.loads(path.read_text())
    data["config"]["val_size"] = 97
    data["metrics"]["episodes"] = 40  # as the evaluator counts them
    path.write_text(json.dumps(data))
    out = tmp_path / "p.html"
    assert report.main([str(tmp_path), "--html", str(out)]) == 0
    assert '<td class="down">test_num 40 (protocol 1000), val_size 97 (protocol 473)</td>' in out.read_text()


def test_malformed_per_class_is_one_error(results, tmp_path, capsys):
    path = results / "split0_resnet50/model/results_shot1.json"
    data = json.loads(path.read_text())
    data["metrics"]["per_class"] = [{"iou": 50.0}]
    path.write_text(json.dumps(data))
    assert report.main([str(results), "--html", str(tmp_path / "p.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err and not (tmp_path / "p.html").exists()


def test_grid_cuts_tiles_and_aligns_episodes(results):
    rows = grid.build_grid({"a": results / "split0_resnet50/model/results_shot1_vis",
                            "b": results / "split0_resnet50_base/model/results_shot1_vis"})
    assert len(rows) == 3 and all(set(r.predictions) == {"a", "b"} for r in rows)
    assert rows[0].support.shape == (24, 24, 3) and not np.array_equal(rows[0].predictions["a"], rows[0].predictions["b"])
    other = results / "other_vis"
    write_panels(other, 3, episodes=2, size=16)  # other episodes (another image size): rows of their own
    assert len(grid.build_grid({"a": results / "split0_resnet50/model/results_shot1_vis", "c": other})) == 5


def test_events_resume_purges_and_tolerates_a_cut_tail(tmp_path):
    writer = EventWriter(str(tmp_path / "tb"))
    for it in range(1, 9):
        writer.add_scalar("loss/main", float(it), it)
    writer.close()
    first = next((tmp_path / "tb").iterdir())  # an earlier start (the name begins with the creation time)
    first.rename(first.with_name("events.out.tfevents.1000000000.host.1"))
    resumed = EventWriter(str(tmp_path / "tb"), purge_step=5)  # resumed from iteration 4
    resumed.add_scalar("loss/main", 50.0, 5)
    resumed.close()
    files = sorted((tmp_path / "tb").iterdir())
    assert read_scalars(files)["loss/main"] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 50.0)]
    whole = files[-1].read_bytes()
    files[-1].write_bytes(whole[:-3])  # killed while writing the last record
    assert len(read_records(files[-1])) == len(read_records(files[0])) - 8 + 1
    # the purge record survives, the cut-off value at step 5 does not
    assert find_curves(tmp_path) == {tmp_path.name: {"loss/main": [(s, float(s)) for s in range(1, 5)]}}


def test_corrupt_event_file_is_one_error(results, tmp_path, capsys):
    f = next((results / "split0_resnet50" / "tb").iterdir())
    data = bytearray(f.read_bytes())
    data[20] ^= 0xFF
    f.write_bytes(bytes(data))
    assert report.main([str(results), "--html", str(tmp_path / "p.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(f) in err and err.count("\n") == 1
    with pytest.raises(UserError, match="corrupt|not a readable"):
        read_records(f)


def test_page_never_replaces_a_users_file(results, tmp_path, capsys):
    mine = tmp_path / "notes.html"
    mine.write_text("<html>my notes</html>")
    assert report.main([str(results), "--html", str(mine)]) == 2
    assert "not a results page" in capsys.readouterr().err and mine.read_text() == "<html>my notes</html>"
    assert report.main([str(results), "--html", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    page = tmp_path / "page.html"
    assert report.main([str(results), "--html", str(page)]) == 0
    assert report.main([str(results), "--html", str(page)]) == 0  # its own page is regenerated


def test_results_alone_give_a_page_that_says_what_is_missing(tmp_path):
    (tmp_path / "r").mkdir()
    cfg = {"dataset": "toy", "backbone": "vgg", "split": 0, "shot": 1}
    (tmp_path / "r" / "results_shot1.json").write_text(json.dumps({"config": cfg, "metrics": {"miou": 30.0}}))
    out = tmp_path / "p.html"
    assert report.main([str(tmp_path), "--html", str(out)]) == 0
    page = Page(out.read_text())
    assert page.figures == 0 and not page.pngs and page.tables == 3  # runs + the toy's table + sources
    assert "train.py writes them to &lt;run&gt;/tb" in out.read_text() and "test with `vis N`" in out.read_text()


def test_cross_domain_results_get_their_table_and_chart(tmp_path):
    per_class = [{"id": 1, "name": "toy01", "iou": 40.0, "episodes": 3}]
    for name, target in (("in", None), ("shift", "toyshift")):
        cfg = {"dataset": "toy", "backbone": "vgg", "split": 0, "shot": 1, "val_size": 97, "target": target}
        folder = tmp_path / name / "model"
        folder.mkdir(parents=True)
        metrics = {"miou": 40.0, "episodes": 300, "per_class": per_class}
        (folder / "results_shot1.json").write_text(json.dumps({"config": cfg, "metrics": metrics}))
    out = tmp_path / "p.html"
    assert report.main([str(tmp_path), "--html", str(out)]) == 0
    page = Page(out.read_text())
    assert "toy -> toy (second domain), 1-shot, class mIoU (no published numbers)" in page.headings
    assert page.figures == 2 and out.read_text().count("as published") == 2  # one chart per benchmark tested
    assert out.read_text().count('alt="toyshift fold 0, 1-shot: class IoU"') == 1
