"""The paper's tables from test results: loading (load.py), tables (tables.py), rendering
(render.py), published numbers (paper.py), the `python -m util.report` command (cli.py) and its
HTML results page (page.py: charts in figures.py, event files in events.py, panels in grid.py)."""
from util.report.cli import main, make_report

__all__ = ["main", "make_report"]
