"""A name -> object registry, shared by the method registry (model/method.py) and the benchmark
registry (util/data/benchmarks/): built-in entries are modules found by name, so registering
costs no import-time side effect; tests and extensions add entries explicitly.

Benchmarks are modules of one package (`util.data.benchmarks.<name>`); methods live in the
folder of their family (`model.<family>.<name>`, docs/design.md §2.2), so the method registry
looks one level deeper (`nested`)."""
from __future__ import annotations

import importlib
import pkgutil

from model.errors import UserError


class Registry:
    """Name -> object, filled on demand from `<package>.<name>` modules (with `nested`:
    `<package>.<subpackage>.<name>`) holding attribute `attr`, and by explicit `register()`;
    explicit entries win, so a test can add or shadow one."""

    def __init__(self, kind: str, package: str, attr: str, key: str, nested: bool = False):
        self.kind, self.package, self.attr, self.key, self.nested = kind, package, attr, key, nested
        self._extra: dict[str, object] = {}

    def register(self, name: str, item: object) -> None:
        self._extra[name] = item

    def unregister(self, name: str) -> None:
        self._extra.pop(name, None)

    def _packages(self) -> list[str]:
        """The packages whose modules are entries."""
        if not self.nested:
            return [self.package]
        pkg = importlib.import_module(self.package)
        return [f"{self.package}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__) if m.ispkg]

    def _load(self, package: str, name: str):
        """`package.name`'s entry; None when there is no such module or it holds none."""
        try:
            module = importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{package}.{name}":
                raise
            return None
        return getattr(module, self.attr, None)

    def names(self) -> list[str]:
        """Every available name (built-in modules and registered ones). A nested registry imports
        each candidate module to see whether it holds an entry."""
        found = set()
        for package in self._packages():
            mods = [m.name for m in pkgutil.iter_modules(importlib.import_module(package).__path__)
                    if not m.name.startswith("_")]
            found |= {m for m in mods if not self.nested or self._load(package, m) is not None}
        return sorted(found | set(self._extra))

    def find(self, name: str):
        """The entry called `name`; None when there is none."""
        if name in self._extra:
            return self._extra[name]
        if not name.isidentifier():
            return None
        for package in self._packages():
            if (item := self._load(package, name)) is not None:
                return item
        return None

    def get(self, name: str):
        """The entry called `name`; a UserError listing the known names otherwise."""
        if (item := self.find(name)) is not None:
            return item
        raise UserError(f"unknown {self.kind} '{name}': set `{self.key}` to one of {', '.join(self.names())}")
