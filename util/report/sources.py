"""The report's last table: every results file it read, with the folder and the protocol each
figure came from, and every file it skipped with why (docs/evaluation.md, 'Report')."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from util.report.load import Result
from util.report.render import Cell, Table


def describe_protocol(protocol: dict | None) -> str:
    """'300 episodes x 1 seed(s), size 97' (what was recorded; '?' for a missing value)."""
    p = protocol or {}
    return f"{p.get('episodes', '?')} episodes x {p.get('seeds', '?')} seed(s), size {p.get('size', '?')}"


def _where(path: Path, root: Path) -> str:
    """The run's folder relative to the report's root (the results file sits in its model/)."""
    folder = path.parent.parent if path.parent.name == "model" else path.parent
    rel = os.path.relpath(folder, root)
    return root.name if rel == "." else rel


def sources_table(root: str | os.PathLike, results: Sequence[Result], skipped: Sequence[tuple[Path, str]]) -> Table:
    """One row per results file used (folder, what it tested, protocol; its mIoU), one note per
    file skipped."""
    root = Path(root)
    table = Table("Sources: the folder and protocol of every result above", ["mIoU"])
    for r in sorted(results, key=lambda r: str(r.path)):
        tested = f"{r.dataset} -> {r.target}" if r.target else r.dataset
        label = (f"`{_where(r.path, root)}` {r.path.name}: {tested} {r.backbone} {r.shot}-shot fold {r.split} "
                 f"{r.variant.label()}; {describe_protocol(r.protocol)}")
        table.rows.append((label, [Cell(r.miou)]))
    table.notes += [f"skipped {os.path.relpath(p, root)}: {why}" for p, why in skipped]
    return table
