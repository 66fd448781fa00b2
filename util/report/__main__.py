"""`python -m util.report DIR ...` (see util/report/tables.py)."""
import sys

from util.report import main

sys.exit(main())
