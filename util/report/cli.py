"""`python -m util.report DIR [--format md|csv|both] [--out FILE] [--html PAGE]`: every results file under
DIR (test.py writes `results_shot{K}.json`) laid out as the paper's tables."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from util.engine.guard import write_atomic
from util.errors import UserError
from util.report.cross_domain import cross_domain_tables
from util.report.bam import bam_tables, gfss_tables, is_bam
from util.report.fscs import fscs_tables, is_fscs, load_fscs
from util.report.load import dangling_links, dedupe, find_results, load_results
from util.report.protocol import protocol_table
from util.report.recall import recall_tables
from util.report.page import check_target, render_page
from util.report.render import Table, render_csv, render_markdown
from util.report.sources import sources_table
from util.report.tables import build_tables

log = logging.getLogger(__name__)


def collect_tables(root: str | os.PathLike) -> list[Table]:
    """Every table the results files under root support (the Markdown, CSV and HTML reports' tables)."""
    paths = find_results(root)
    fscs = [p for p in paths if is_fscs(p)]  # FS-CS results have their own tables (docs/fscs.md)
    loaded, left_out = load_results([p for p in paths if p not in fscs])
    results, superseded = dedupe(loaded)
    # BAM runs have their own tables (util/report/bam.py), target results theirs (cross_domain.py)
    own = [r for r in results if not r.target]
    tables = (build_tables([r for r in own if not is_bam(r)]) + bam_tables(own) + gfss_tables(root)
              + cross_domain_tables([r for r in results if r.target]) + fscs_tables([load_fscs(p) for p in fscs])
              + recall_tables(root) + protocol_table(results))
    skipped = dangling_links(root) + left_out + [(r.path, why) for r, why in superseded]
    tables.append(sources_table(root, results, skipped))
    return tables


def make_report(root: str | os.PathLike, fmt: str = "md") -> dict[str, str]:
    """{'md': text} / {'csv': text} / both, from every results file under root."""
    tables = collect_tables(root)
    out = {}
    if fmt in ("md", "both"):
        out["md"] = render_markdown(tables)
    if fmt in ("csv", "both"):
        out["csv"] = render_csv(tables)
    return out


def _write(texts: dict[str, str], out: str | None) -> None:
    """To stdout, or to FILE (with --format both: FILE's stem + .md and .csv)."""
    if not out:
        sys.stdout.write("\n".join(texts.values()))
        return
    for fmt, text in texts.items():
        path = Path(out).with_suffix(f".{fmt}") if len(texts) > 1 else Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        log.info("wrote %s", path)


def write_page(root: str | os.PathLike, out: Path) -> None:
    """The HTML results page of root's results, written atomically to out (util/report/page.py)."""
    check_target(out)
    write_atomic(str(out), render_page(root, collect_tables(root)))
    log.info("wrote %s (open it in a browser)", out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m util.report", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("dir", help="folder searched recursively for results*.json (e.g. exp/pascal)")
    parser.add_argument("--format", choices=("md", "csv", "both"), default="md")
    parser.add_argument("--out", help="write here instead of stdout (both: FILE.md and FILE.csv)")
    parser.add_argument("--html", metavar="PAGE", help="instead: write one self-contained results page (tables, "
                        "per-class bars, training curves, qualitative grid) to PAGE, e.g. results.html")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        if args.html:
            write_page(args.dir, Path(args.html))
        else:
            _write(make_report(args.dir, args.format), args.out)
    except UserError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    return 0
