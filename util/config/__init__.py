"""One config schema: every key declared once with its type, default and meaning.

YAML files hold flat `key: value` pairs; a file may name a `base:` file (relative to
itself) whose values it extends, so fold files hold only what differs. Command-line
overrides are `key value` pairs (PFENet convention), parsed as YAML scalars. PFENet's,
the released NTRENet's and BAM's sectioned files are read as they are (util/config/compat.py).

The package: schema.py (every key), loader.py (files, overrides, recipes, checks),
compat.py (other frameworks' files), recipes.py (published recipes and protocols)."""
from util.config.loader import Config, TEST_TIME_VARIANTS, coerce, dump_config, load_config, parse_overrides, trained_overrides
from util.config.schema import ConfigError, Key, MAX_FLOAT, MAX_INT, MAX_SIDE, SCHEMA, TRAINING_REFERENCES, schema_table, variant_keys

__all__ = ['Config', 'ConfigError', 'Key', 'MAX_FLOAT', 'MAX_INT', 'MAX_SIDE', 'SCHEMA', 'TEST_TIME_VARIANTS', 'TRAINING_REFERENCES', 'coerce', 'dump_config', 'load_config', 'parse_overrides', 'schema_table', 'trained_overrides', 'variant_keys']
