"""Reading a config: YAML files (with `base:` chains and other frameworks' sectioned forms,
util/config/compat.py), `key value` overrides, recipes, and the whole-config checks."""
from __future__ import annotations

import difflib
import math
import os
from typing import Any, Iterable, Sequence
import yaml
from util.config.compat import flatten, foreign_hint, is_sectioned, normalise_overrides
from util.config.recipes import CHOOSERS, RECIPE_KEYS, find_recipe, recipe_method
from util.engine.guard import write_atomic
from util.io.textfile import read_utf8
from util.config.schema import ConfigError, MAX_FLOAT, MAX_INT, SCHEMA, TRAINING_REFERENCES, _odd8, _type_name, variant_keys


class Config(dict):
    """A validated config with attribute access (`cfg.shot`). Change it only through
    `replace()` (or attribute assignment, which validates one key): never with dict writes."""

    def replace(self, **changes: Any) -> "Config":
        """A validated copy with `changes` applied, checked as a whole (as load_config does)."""
        out = Config(self)
        for k, v in changes.items():
            dict.__setitem__(out, k, coerce(k, v, "replace()"))
        _finish(out, {k: "replace()" for k in changes})
        return out

    @property
    def num_train_classes(self) -> int:
        """Training classes of this benchmark and fold (sizes per-class model state)."""
        from util.data.benchmarks import get_benchmark
        return len(get_benchmark(self["dataset"]).base_classes(self["split"], self["coco_fold_style"]))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}'{_suggest(name)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = coerce(name, value)


def _suggest(name: str) -> str:
    if hint := foreign_hint(name):
        return hint
    close = difflib.get_close_matches(name, SCHEMA.keys(), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def coerce(name: str, value: Any, origin: str = "") -> Any:
    """Check one value against the schema and return it in the declared type."""
    where = f" in {origin}" if origin else ""
    if name not in SCHEMA:
        raise ConfigError(f"unknown config key '{name}'{where}{_suggest(name)}; "
                          "see the key table in docs/configuration.md")
    key = SCHEMA[name]
    bad = ConfigError(f"config key '{name}'{where}: expected {_type_name(key.type)}, got {value!r}")
    if isinstance(key.type, tuple):
        items = value if isinstance(value, (list, tuple)) else [value]
        try:
            out = [_scalar(v, key.type[1], bad) for v in items]
        except ConfigError:
            raise bad from None
    else:
        if key.choices and "off" in key.choices and isinstance(value, bool):
            value = "on" if value else "off"  # YAML reads a bare `off` as false
        out = _scalar(value, key.type, bad)
    if msg := _out_of_bounds(out):
        raise ConfigError(f"config key '{name}'{where} = {value!r}: {msg}")
    if key.choices and out not in key.choices:
        raise ConfigError(f"config key '{name}'{where}: {out!r} is not one of {', '.join(map(str, key.choices))}")
    if key.check and (msg := key.check(out)):
        raise ConfigError(f"config key '{name}'{where} = {out!r}: {msg}")
    return out


def _out_of_bounds(out: Any) -> str | None:
    """Every number of every key, lists included: finite and of a size the code can use. A NaN
    passes comparisons like `v <= 0` unnoticed, so this runs before the per-key checks."""
    for v in out if isinstance(out, list) else [out]:
        if isinstance(v, float) and not math.isfinite(v):
            return "must be a finite number"
        if isinstance(v, float) and abs(v) > MAX_FLOAT:
            return f"must be at most {MAX_FLOAT:g} in size"
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
            return f"must be at most {MAX_INT} in size (32 bits)"
    return None


def _scalar(v: Any, t: type, bad: ConfigError) -> Any:
    if t is bool:
        if isinstance(v, bool):
            return v
        raise bad
    if t is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad
        return v
    if t is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad
        return int(v) if isinstance(v, int) else float(v)
    if t is str:
        if v is None:
            return ""
        if isinstance(v, (dict, list)):
            raise bad
        return str(v)
    raise bad


class _StrictLoader(yaml.SafeLoader):
    """yaml's safe loader with three limits for config files: an alias may only repeat a plain
    value (aliases of lists or mappings nest into exponential documents, the 'billion laughs'),
    every mapping key is a string, and a key given twice in one mapping is refused instead of the
    last one silently winning."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None and not isinstance(node, yaml.ScalarNode):
                raise yaml.MarkedYAMLError(problem=f"alias *{event.anchor} repeats a list or mapping; "
                                           "write the values out", problem_mark=event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise yaml.MarkedYAMLError(problem=f"key {key!r} is not a name", problem_mark=key_node.start_mark)
            if key in seen:
                raise yaml.MarkedYAMLError(problem=f"key '{key}' is set twice; keep one",
                                           problem_mark=key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _parse_yaml(path: str) -> Any:
    """The YAML document of one file; undecodable bytes and syntax errors name file:line."""
    text = read_utf8(path, "save the config as UTF-8", ConfigError)
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader with extra limits
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or str(e).split("\n")[0]
        raise ConfigError(f"config {path}{where}: not valid YAML ({what}): "
                          "fix that line (flat 'key: value' pairs)") from None


def _read_yaml(path: str, chain: tuple[str, ...] = (), notes: list[str] | None = None,
               order: list[str] | None = None) -> dict:
    """`key -> (value, file)` of one file over its `base:` files; `chain` holds the real
    paths of the files that named this one, so a loop is reported instead of recursing.
    A sectioned (PFENet/BAM) file is flattened; what that maps or drops is added to `notes`;
    `order` receives the files base first (a later file overrides an earlier one)."""
    real = os.path.realpath(path)
    if real in chain:
        loop = " -> ".join(os.path.basename(p) for p in chain[chain.index(real):] + (real,))
        raise ConfigError(f"config {path}: 'base' files form a loop ({loop}): "
                          "remove the 'base:' line that closes it")
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}; pick one under config/<dataset>/")
    data = _parse_yaml(path)
    if data is None:
        raise ConfigError(f"config {path} is empty (no 'key: value' lines): fill it, or start it "
                          "with 'base: <file>' to reuse another config")
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} holds a YAML {type(data).__name__}, not a mapping: "
                          "write one 'key: value' pair per line")
    base = data.pop("base", None)
    if is_sectioned(data, SCHEMA):
        data, mapped = flatten(data, path, SCHEMA)
        if notes is not None:
            notes += mapped
    merged: dict = {}
    if base is not None:
        if not isinstance(base, str) or not base:
            raise ConfigError(f"config {path}: 'base' must name one YAML file, got {base!r}")
        base_path = os.path.join(os.path.dirname(path), base)
        if not os.path.isfile(base_path):
            raise ConfigError(f"config {path}: base file '{base}' not found (looked for {base_path}; "
                              "a base path is relative to the file that names it)")
        merged = _read_yaml(base_path, chain + (real,), notes, order)
    for k, v in data.items():
        merged[k] = (v, path)
    if order is not None:
        order.append(path)
    return merged


def parse_overrides(pairs: Sequence[str]) -> list[tuple[str, Any]]:
    """`['shot', '5', 'base_lr', '0.01']` -> [('shot', 5), ('base_lr', 0.01)]; `k=v` tokens and
    `--cfg-options` are read as pairs too."""
    pairs = normalise_overrides(pairs)
    if len(pairs) % 2:
        raise ConfigError(f"overrides come in 'key value' pairs; '{pairs[-1]}' has no value")
    out = []
    for k, v in zip(pairs[::2], pairs[1::2]):
        try:
            out.append((k, yaml.safe_load(v) if v != "" else ""))
        except yaml.YAMLError:
            out.append((k, v))
    return out


def load_config(path: str | None, overrides: Iterable[str] | None = None) -> Config:
    """Schema defaults <- YAML file (and its bases) <- `key value` overrides. `cfg._notes`
    (files only) lists what was read from another framework's form (to be logged once the log is set up)."""
    cfg = Config({k: key.default for k, key in SCHEMA.items()})
    explicit: dict[str, str] = {}
    notes: list[str] = []
    order: list[str] = []
    if path:
        for k, (v, origin) in _read_yaml(path, notes=notes, order=order).items():
            dict.__setitem__(cfg, k, coerce(k, v, origin))
            explicit[k] = origin
        dict.__setitem__(cfg, "_config_path", path)
        dict.__setitem__(cfg, "_notes", notes)
    changed: dict[str, Any] = {}
    for k, v in parse_overrides(list(overrides or [])):
        value = coerce(k, v, "command line")  # an unknown key is an error here, naming the closest
        if value != cfg[k]:
            changed[k] = value
        dict.__setitem__(cfg, k, value)
        explicit[k] = "command line"
    for k, v in TRAINING_REFERENCES[cfg.training_reference].items():
        if k not in explicit:
            dict.__setitem__(cfg, k, v)
    _finish(cfg, explicit)
    layer = {k: order.index(o) if o in order else len(order) for k, o in explicit.items()}
    if (replaced := _apply_recipe(cfg, layer)) and path:
        notes.append(f"recipe {cfg.recipe!r} of {recipe_method(cfg)} on {cfg.dataset} (docs/protocols.md) "
                     f"replaces the values of earlier files: {replaced}")
    if trained := trained_overrides(cfg, changed):  # names the run's folder (util/engine/runtime.py)
        dict.__setitem__(cfg, "_trained_overrides", trained)
    return cfg


def _apply_recipe(cfg: Config, layer: dict[str, int]) -> str:
    """Set the recipe keys of cfg's method and benchmark (util/config/recipes.py) that were not set at
    the level of the keys choosing the recipe or later; `layer`: key -> index of the file that set
    it (the command line last). Returns the file values it replaced, as text."""
    try:
        recipe = find_recipe(cfg)
    except KeyError as e:
        raise ConfigError(f"config key 'recipe' = {cfg.recipe!r}: {e.args[0]}; see docs/protocols.md") from None
    if recipe is None:
        return ""
    chosen_at = max((layer.get(k, -1) for k in CHOOSERS), default=-1)
    replaced = []
    for k in RECIPE_KEYS:
        if layer.get(k, -1) < chosen_at or k not in layer:
            if k in layer and cfg[k] != recipe[k].value:
                replaced.append(f"{k} {cfg[k]!r} -> {recipe[k].value!r}")
            dict.__setitem__(cfg, k, recipe[k].value)
    _check_sizes(cfg)
    return ", ".join(replaced)


# variant keys that change only how a trained model is tested, not what is trained
TEST_TIME_VARIANTS = ("mmt_enhance_test", "bam_output")


def trained_overrides(cfg: Config, changed: dict[str, Any]) -> list[tuple[str, Any]]:
    """The command-line overrides that change what is trained (variant keys that matter for
    `cfg`, set to another value than the file's), sorted by key: they name the run's own
    experiment folder (docs/training.md, 'Where a run writes')."""
    keys = set(variant_keys(cfg)) - set(TEST_TIME_VARIANTS)
    return sorted((k, v) for k, v in changed.items() if k in keys)


def _finish(cfg: Config, explicit: dict[str, str]) -> None:
    """Whole-config rules: the values the method fixes (an explicit other value is an error),
    then cross-key consistency. `explicit`: key -> where it was set."""
    from model.method import get_method
    method = get_method(cfg.model)
    for k, v in method.fixed.items():
        if cfg[k] != v and k in explicit:
            raise ConfigError(f"config key '{k}' = {cfg[k]!r} in {explicit[k]}: model '{method.name}' fixes it "
                              f"to {v!r}; remove it, or use another `model`")
        dict.__setitem__(cfg, k, v)
    _check_consistency(cfg)


def _check_sizes(cfg: Config) -> None:
    """PFENet's sizes satisfy (size - 1) % 8 == 0 (its x8 upsampling lands on the input size);
    FS-CS learners take any size (the iFSL release's 400 px)."""
    if cfg.ifsl:
        return
    for k in ("train_h", "train_w", "val_size"):
        if (msg := _odd8(cfg[k])) is not None:
            raise ConfigError(f"config key '{k}' = {cfg[k]!r}: {msg}")


def _check_consistency(cfg: Config) -> None:
    _check_sizes(cfg)
    if cfg.scale_min > cfg.scale_max:
        raise ConfigError(f"scale_min {cfg.scale_min} > scale_max {cfg.scale_max}: swap them")
    if cfg.rotate_min > cfg.rotate_max:
        raise ConfigError(f"rotate_min {cfg.rotate_min} > rotate_max {cfg.rotate_max}: swap them")
    if cfg.weak:
        _check_weak(cfg)
    if cfg.ifsl and cfg.target and cfg.target != cfg.dataset:
        raise ConfigError(f"ifsl true with target {cfg.target}: FS-CS is tested in-domain only (iFSL's protocol; "
                          f"its scores on {cfg.target} would be in-domain {cfg.dataset} figures): remove `target`, "
                          f"or set ifsl false for the cross-domain test (docs/cross_domain.md)")
    if cfg.ifsl:
        _check_way(cfg)


def _check_way(cfg: Config) -> None:
    """An N-way FS-CS episode draws N distinct test classes (iFSL's protocol): a fold or a
    benchmark with fewer (a one-class benchmark such as Chest X-ray) is refused at load."""
    from util.data.benchmarks import get_benchmark
    bench = get_benchmark(cfg.dataset)
    classes = bench.fold_classes(cfg, "test")
    if cfg.way > len(classes):
        raise ConfigError(f"way {cfg.way}: {cfg.way}-way episodes need {cfg.way} classes, but {bench.name} fold "
                          f"{cfg.split} tests {len(classes)} ({', '.join(bench.class_name(c) for c in classes)}): "
                          f"set way to at most {len(classes)}")


def _check_weak(cfg: Config) -> None:
    """Class-tag training: FS-CS only, ASNet only, and only where labels tag every class."""
    from util.data.benchmarks import BINARY_MASKS, get_benchmark
    if not cfg.ifsl:
        raise ConfigError("weak true (training on class tags) needs ifsl true (FS-CS episodes): set ifsl true, "
                          "or use model asnet")
    if cfg.model != "asnet":
        raise ConfigError(f"weak true trains on class tags alone, which model asnet supports; model "
                          f"'{cfg.model}' learns from masks: set weak false, or model asnet")
    if get_benchmark(cfg.dataset).label_format == BINARY_MASKS:
        raise ConfigError(f"weak true needs class tags, but {cfg.dataset} labels one class per image (binary "
                          "masks): whether its other classes appear is unknown; set weak false")


def dump_config(cfg: Config, path: str) -> None:
    """Write the effective config (every key) so a run can be reproduced from it alone."""
    data = {k: v for k, v in cfg.items() if k in SCHEMA}
    write_atomic(path, yaml.safe_dump(data, sort_keys=False))
