"""Rendering the tables: Markdown (ours beside the paper's number) and long-format CSV."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence


class Cell(NamedTuple):
    ours: float | None
    paper: float | None = None
    std: float | None = None
    partial: bool = False
    other_protocol: bool = False  # tested under another protocol than the paper's: no difference


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[tuple[str, list[Cell]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)



def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def format_cell(c: Cell) -> str:
    """'63.1 (65.4, -2.3)': ours (paper, ours - paper); '-' when we have no number;
    '*' marks a mean over fewer than four folds, '†' a run tested under another protocol than
    the paper's (no difference is given for either)."""
    ours = _num(c.ours) + (f"±{c.std:.1f}" if c.std is not None and c.ours is not None else "")
    ours += "*" if c.partial else ""
    if c.paper is None:
        return ours
    if c.other_protocol:
        return f"{ours}† ({c.paper:.1f})"
    if c.ours is None or c.partial:
        return f"{ours} ({c.paper:.1f})"
    return f"{ours} ({c.paper:.1f}, {c.ours - c.paper:+.1f})"


def render_markdown(tables: Sequence[Table]) -> str:
    """All tables as Markdown, with a legend."""
    out = ["Cells: ours (paper, ours - paper), class mIoU / FB-IoU / precision in %. "
           "'-': no result; '*': mean over fewer than 4 folds; '±': std over seeds; "
           "'†': tested under another protocol than the paper's (see the protocol notes); "
           "[bf16] / [fp16] in a row name: computed in that reduced precision, not fp32.", ""]
    for t in tables:
        out += [f"### {t.title}", ""]
        if t.columns:
            out += ["| | " + " | ".join(t.columns) + " |", "|---|" + "---|" * len(t.columns)]
        out += ["| " + label + " | " + " | ".join(format_cell(c) for c in cells) + " |" for label, cells in t.rows]
        out += [""] + [f"_{n}_" for n in t.notes] + ([""] if t.notes else [])
    return "\n".join(out).rstrip() + "\n"


def render_csv(tables: Sequence[Table]) -> str:
    """Long format: one line per cell (table, row, column, ours, std, paper, diff, partial)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "row", "column", "ours", "ours_std", "paper", "diff", "partial"])
    for t in tables:
        for label, cells in t.rows:
            for col, c in zip(t.columns, cells):
                diff = c.ours - c.paper if None not in (c.ours, c.paper) and not (c.partial or c.other_protocol) \
                    else None
                w.writerow([t.title, label, col, _csv_num(c.ours), _csv_num(c.std), _csv_num(c.paper),
                            _csv_num(diff), int(c.partial)])
    return buf.getvalue()


def _csv_num(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"
