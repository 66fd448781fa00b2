"""`python -m util.config`: the key table of docs/configuration.md."""
import sys

from util.config.schema import schema_table

sys.stdout.write(schema_table() + "\n")
