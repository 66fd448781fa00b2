"""Which runs were tested under the published protocol of their method and benchmark.

The published numbers were taken with a fixed test protocol (util/config/recipes.py, docs/protocols.md):
episodes per seed, seeds averaged, test size, and full precision. A run tested otherwise is not
comparable with them: its cells carry the paper's number with a mark and no difference, and a
note says how the run departed.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from util.config import SCHEMA
from util.report.render import Table
from util.config.recipes import protocol_of

CHECKED = (("test_num", "episodes"), ("seeds", "seeds"), ("val_size", "test size"))
FULL_PRECISION = ("fp32", None)  # results files without a `precision` field were fp32 runs


def departures(cfg: Mapping[str, Any], precision: Any = None) -> tuple[str, ...]:
    """How a run's recorded test departs from its published protocol ('episodes 500 (published
    1000)', 'bf16 (published fp32)'); empty when it follows it or none is tabled. Cross-domain
    runs are left to their target's protocol."""
    if cfg.get("target") not in (None, "", cfg.get("dataset")):
        return ()
    full = {k: cfg.get(k, key.default) for k, key in SCHEMA.items()}  # older files lack newer keys
    out = []
    if (proto := protocol_of(full)) is not None:
        out += [f"{name} {full[k]} (published {proto[k]})" for k, name in CHECKED if full[k] != proto[k]]
    if precision not in FULL_PRECISION:
        out.append(f"{precision} (published fp32)")
    return tuple(out)


def protocol_notes(results: Sequence[Any]) -> list[str]:
    """One line per run tested under another protocol, for the report's notes."""
    return [f"{r.path}: {', '.join(r.departures)}" for r in results if getattr(r, "departures", ())]


def protocol_table(results: Sequence[Any]) -> list[Table]:
    """A notes-only table listing the runs marked '†', or nothing when every run follows its protocol."""
    notes = protocol_notes(results)
    if not notes:
        return []
    return [Table("Runs tested under another protocol than the published numbers' (marked †)", [], notes=notes)]
