"""`python -m util.report DIR --html OUT`: one self-contained results page (docs/results_page.md).

The page holds every table of the Markdown report (ours beside the published number, the
difference coloured), a table of the runs with their trivial predictors, per-class IoU bars (runs
tested on the same benchmark, fold and shot share a chart), the training curves of the runs found
(runs overlaid per scalar) and the qualitative grid (util/report/grid.py). Every image is embedded
as a data URI, so the single file opens from disk with no server and no network.
"""
from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from util.config import SCHEMA
from util.data.benchmarks import get_benchmark
from util.errors import UserError
from util.report import figures, grid
from util.report.events import Curves, find_curves
from util.report.load import LeftOut, find_results, read_json
from util.report.render import Cell, Table

GENERATOR = "util.report results page"  # in every page written, so a rerun may replace it
STYLE = """body{font-family:sans-serif;margin:24px;color:#222}h2{border-bottom:1px solid #ccc;margin-top:32px}
table{border-collapse:collapse;margin:8px 0 4px}td,th{border:1px solid #ddd;padding:3px 7px;font-size:13px}
th{background:#f3f3f3}td.n{text-align:right;white-space:nowrap}.paper{color:#777}.up{color:#1a7f37}
.down{color:#c62828}.note{font-size:12px;color:#555;margin:2px 0}figure{display:inline-block;margin:4px}
.grid img{width:150px;image-rendering:pixelated}.grid td{text-align:center}"""


@dataclass
class Run:
    """One binary results file as the page shows it."""

    name: str
    setting: tuple[str, int, int]  # (benchmark tested, fold, shot)
    metrics: dict
    baselines: dict
    vis: Path | None
    protocol: str = "as published"  # or the departures from the benchmark's published protocol


def departures(cfg: dict, tested: str, episodes: int | None) -> str:
    """Where a test departs from the tested benchmark's published protocol (episodes per seed as
    counted by the evaluator, seeds, image size; test.py logs the same), '' when it does not or the
    benchmark is not known here."""
    try:
        proto = get_benchmark(tested).protocol
    except UserError:
        return ""
    ours = {k: cfg.get(k, SCHEMA[k].default) for k in ("test_num", "seeds", "val_size")}
    if episodes is not None:
        ours["test_num"] = episodes
    pairs = (("test_num", proto.episodes), ("seeds", proto.seeds), ("val_size", proto.image_size))
    return ", ".join(f"{k} {ours[k]} (protocol {v})" for k, v in pairs if ours[k] != v)


def _run_folder(path: Path, root: Path) -> str:
    """The experiment a results file belongs to: its folder relative to root, without the `model`
    folder test.py writes into."""
    folder = path.parent.parent if path.parent.name == "model" else path.parent
    return str(folder.relative_to(root)) if folder != root else root.resolve().name


def load_runs(root: Path) -> list[Run]:
    """Binary (not FS-CS) results files with their per-class IoU, trivial predictors and panels."""
    paths = find_results(root)
    names = [_run_folder(p, root) for p in paths]
    runs = []
    for path, name in zip(paths, names):
        label = name if names.count(name) == 1 else f"{name} {path.stem.removeprefix('results_')}"
        try:
            run = _load_run(path, label)
        except LeftOut:
            continue  # named in the Sources table, as in the Markdown report
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise UserError(f"{path} is not a test.py results file ({type(e).__name__}: {e}); re-run test.sh "
                            "for that experiment or move the file out of the folder") from None
        if run is not None:
            runs.append(run)
    return runs


def _load_run(path: Path, label: str) -> Run | None:
    data = read_json(path)
    if data.get("task") == "fscs":  # FS-CS: tables only (docs/fscs.md)
        return None
    cfg, metrics = data["config"], data["metrics"]
    for c in metrics.get("per_class") or []:
        c["id"], c["name"], c["episodes"] = int(c["id"]), str(c["name"]), int(c.get("episodes", 1))
        c["iou"] = None if c.get("iou") is None else float(c["iou"])
    tested = str(cfg.get("target") or cfg["dataset"])
    vis = path.with_name(path.stem + "_vis")
    episodes = metrics.get("episodes")
    return Run(label, (tested, int(cfg["split"]), int(cfg["shot"])), metrics, data.get("baselines") or {},
               vis if vis.is_dir() else None,
               departures(cfg, tested, None if episodes is None else int(episodes)) or "as published")


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def cell_html(c: Cell) -> str:
    """Ours (±std, * for a partial mean), the published number in grey, the difference coloured."""
    ours = _num(c.ours) + (f"±{c.std:.1f}" if c.std is not None and c.ours is not None else "")
    out = html.escape(ours + ("*" if c.partial else ""))
    if c.paper is not None:
        out += f' <span class="paper">({c.paper:.1f})</span>'
        if c.ours is not None and not c.partial:
            diff = c.ours - c.paper
            out += f' <span class="{"up" if diff >= 0 else "down"}">{diff:+.1f}</span>'
    return f'<td class="n">{out}</td>'


def table_html(t: Table) -> str:
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(c)}</th>" for c in t.columns) + "</tr>"
    rows = "".join(f"<tr><th>{html.escape(label)}</th>" + "".join(cell_html(c) for c in cells) + "</tr>"
                   for label, cells in t.rows)
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in t.notes)
    return f"<h3>{html.escape(t.title)}</h3><table>{head}{rows}</table>{notes}"


def runs_html(runs: Sequence[Run]) -> str:
    """Every run's headline numbers, where its test departs from the published protocol (in red: its
    numbers are not comparable with the papers'), and its trivial predictors' mIoU (`baselines true`)."""
    trivial = sorted({name for r in runs for name in r.baselines})
    cols = ["run", "tested on", "fold", "shot", "protocol", "mIoU", "FB-IoU", *[f"{n} mIoU (trivial)" for n in trivial]]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in cols)
    return f"<table><tr>{head}</tr>{''.join(_run_row(r, trivial) for r in runs)}</table>"


def _run_row(r: Run, trivial: Sequence[str]) -> str:
    vals = [r.metrics.get("miou"), r.metrics.get("fbiou")] + [r.baselines.get(n, {}).get("miou") for n in trivial]
    mark = "" if r.protocol == "as published" else ' class="down"'
    cells = [f"<td>{html.escape(str(v))}</td>" for v in r.setting] + [f"<td{mark}>{html.escape(r.protocol)}</td>"]
    return (f"<tr><th>{html.escape(r.name)}</th>" + "".join(cells)
            + "".join(f'<td class="n">{_num(v)}</td>' for v in vals) + "</tr>")


def bars_html(runs: Sequence[Run]) -> list[str]:
    """One chart per (benchmark, fold, shot): the class IoU of every run tested there."""
    out = []
    for setting in sorted({r.setting for r in runs}):
        group = [r for r in runs if r.setting == setting and r.metrics.get("per_class")]
        if not group:
            continue
        classes = {c["id"]: c["name"] for r in group for c in r.metrics["per_class"]}
        order = sorted(classes)
        series = {}
        for r in group:
            by_id = {c["id"]: c for c in r.metrics["per_class"]}
            series[r.name] = [by_id[i]["iou"] if i in by_id and by_id[i]["episodes"] else None for i in order]
        title = f"{setting[0]} fold {setting[1]}, {setting[2]}-shot: class IoU"
        out.append(f"<figure>{_img(figures.class_bars(title, [classes[i] for i in order], series), title)}</figure>")
    return out


def _tag_order(tag: str) -> tuple:
    return ({"loss": 0, "base": 0, "lr": 1, "val": 2}.get(tag.split("/")[0], 3), tag)


def curves_html(curves: dict[str, Curves]) -> list[str]:
    """One chart per scalar tag with every run that logged it."""
    tags = sorted({t for c in curves.values() for t in c}, key=_tag_order)
    return [f"<figure>{_img(figures.curve(t, {n: c[t] for n, c in curves.items() if t in c}), t)}</figure>"
            for t in tags]


def grid_html(runs: Sequence[Run]) -> str:
    """Per (benchmark, fold, shot): rows = episodes, columns = support, query + GT, each run."""
    parts = []
    for setting in sorted({r.setting for r in runs if r.vis}):
        names = [r.name for r in runs if r.setting == setting and r.vis]
        rows = grid.build_grid({r.name: r.vis for r in runs if r.setting == setting and r.vis})
        if not rows:
            continue
        head = "<tr><th>support</th><th>query + GT</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names)
        body = ""
        for i, ep in enumerate(rows):
            preds = "".join(f"<td>{_img(grid.png(ep.predictions[n]), n)}</td>" if n in ep.predictions
                            else "<td>not tested</td>" for n in names)
            body += (f"<tr><td>{_img(grid.png(ep.support), f'support {i}')}</td>"
                     f"<td>{_img(grid.png(ep.query), f'query {i}')}</td>{preds}</tr>")
        parts.append(f"<h3>{html.escape(setting[0])} fold {setting[1]}, {setting[2]}-shot</h3>"
                     f'<table class="grid">{head}</tr>{body}</table>')
    return "".join(parts)


def _section(title: str, body: str | list[str], empty: str) -> str:
    text = "".join(body) if isinstance(body, list) else body
    return f"<h2>{title}</h2>" + (text or f'<p class="note">{html.escape(empty)}</p>')


def render_page(root: str | Path, tables: Sequence[Table]) -> str:
    """The whole page for the results under root (`tables`: what the Markdown report prints)."""
    root = Path(root)
    runs = load_runs(root)
    legend = ("Cells: ours (paper) difference; class mIoU / FB-IoU / precision in %. '-': no result; "
              "'*': mean over fewer than 4 folds; '±': std over seeds.")
    sections = [
        _section("Runs", runs_html(runs), "No binary results."),
        _section("Tables", [f'<p class="note">{legend}</p>'] * bool(tables) + [table_html(t) for t in tables],
                 "No table."),
        _section("Per-class IoU", bars_html(runs), "No per-class IoU in the results files."),
        _section("Training curves", curves_html(find_curves(root)),
                 "No event files (train.py writes them to <run>/tb)."),
        _section("Qualitative results", grid_html(runs), "No saved panels: test with `vis N` (e.g. vis 4)."),
    ]
    title = f"Results: {html.escape(root.resolve().name)}"
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="generator" content="{GENERATOR}">'
            f"<title>{title}</title><style>{STYLE}</style></head><body><h1>{title}</h1>"
            f'<p class="note">From {html.escape(str(root))}</p>{"".join(sections)}</body></html>\n')


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(400)
    except OSError:
        return b""


def check_target(out: Path) -> None:
    """Refuse to replace anything but a page this command wrote (a user's file is never lost)."""
    if out.is_dir():
        raise UserError(f"--html {out} is a folder; pass a file name, e.g. {out / 'results.html'}")
    if out.exists() and GENERATOR.encode() not in _head(out):
        raise UserError(f"--html {out} exists and is not a results page written by util.report; "
                        "pass another file name or move that file away")
