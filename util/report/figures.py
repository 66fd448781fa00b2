"""The results page's charts as PNG bytes: per-class IoU bars (several runs on one chart) and
training curves (several runs overlaid).

matplotlib draws them: it is the field's default for paper figures, renders without a display or
a browser, and its PNGs embed in a page that opens from disk. Each figure is drawn on its own
`Figure` with the Agg canvas set here, so no global backend or pyplot state is touched.
"""
from __future__ import annotations

import io
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # matplotlib loads when a page is drawn: the report's tables and --help do without it
    from matplotlib.figure import Figure

DPI = 100


def _png(fig: Figure) -> bytes:
    """The figure rendered by the Agg canvas (no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def class_bars(title: str, classes: Sequence[str], runs: dict[str, Sequence[float | None]]) -> bytes:
    """Grouped bars: per class (x) one bar per run, IoU in %; a class a run never met is left out."""
    from matplotlib.figure import Figure

    width = max(6.0, 0.35 * len(classes) * max(1, len(runs)) + 2)
    fig = Figure(figsize=(min(width, 18.0), 3.6))
    ax = fig.add_subplot()
    step = 0.8 / max(1, len(runs))
    for i, (name, ious) in enumerate(runs.items()):
        xs = [c + (i - (len(runs) - 1) / 2) * step for c, v in enumerate(ious) if v is not None]
        ax.bar(xs, [v for v in ious if v is not None], width=step, label=name)
    ax.set_xticks(range(len(classes)), classes, rotation=45 if len(classes) > 6 else 0, ha="right")
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return _png(fig)


def curve(tag: str, runs: dict[str, Sequence[tuple[int, float]]]) -> bytes:
    """One scalar tag over iterations, one line per run (markers when a run has few points,
    as validation curves do)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 3.0))
    ax = fig.add_subplot()
    for name, points in runs.items():
        steps, values = zip(*points)
        ax.plot(steps, values, label=name, marker="o" if len(points) <= 20 else None, markersize=3, linewidth=1.2)
    ax.set_xlabel("iteration")
    ax.set_title(tag, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig)
