"""A name -> object registry, shared by the method registry (model/) and the benchmark
registry (util/data/benchmarks/): built-in entries are modules of one package, found by name,
so registering costs no import-time side effect; tests and extensions add entries explicitly."""
from __future__ import annotations

import importlib
import pkgutil

from model.errors import UserError


class Registry:
    """Name -> object, filled on demand from `<package>.<name>` modules (attribute `attr`) and
    by explicit `register()`; explicit entries win, so a test can add or shadow one."""

    def __init__(self, kind: str, package: str, attr: str, key: str):
        self.kind, self.package, self.attr, self.key = kind, package, attr, key
        self._extra: dict[str, object] = {}

    def register(self, name: str, item: object) -> None:
        self._extra[name] = item

    def unregister(self, name: str) -> None:
        self._extra.pop(name, None)

    def names(self) -> list[str]:
        """Every available name (built-in modules of the package and registered ones)."""
        pkg = importlib.import_module(self.package)
        found = {m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")}
        return sorted(found | set(self._extra))

    def get(self, name: str):
        if name in self._extra:
            return self._extra[name]
        if name.isidentifier():
            try:
                module = importlib.import_module(f"{self.package}.{name}")
            except ModuleNotFoundError as e:
                if e.name != f"{self.package}.{name}":
                    raise
            else:
                if hasattr(module, self.attr):
                    return getattr(module, self.attr)
        raise UserError(f"unknown {self.kind} '{name}': set `{self.key}` to one of {', '.join(self.names())}")
