"""`python -m util.prepare SOURCE ...` (see util/prepare/cli.py)."""
import sys

from util.prepare.cli import main

sys.exit(main())
