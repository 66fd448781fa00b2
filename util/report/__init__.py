"""The paper's tables from test results: `python -m util.report DIR [--format md|csv|both] [--out FILE]`."""
from util.report.tables import main, make_report

__all__ = ["main", "make_report"]
