"""Layering: model/ imports nothing from util/, and no project module imports itself back
through a chain of imports (function-level imports included). Read from the source with ast."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("model", "util")
SCRIPTS = ("train", "test", "predict")


def _modules() -> dict[str, Path]:
    out = {name: ROOT / f"{name}.py" for name in SCRIPTS}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules a file imports: `import a.b`, `from a.b import c` (a.b.c when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            names = [s for s in subs if s in modules]  # `from pkg import submodule`
            names += [node.module] if len(names) < len(subs) else []
        else:
            continue
        found |= {n for n in names if n in modules}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_graph_sees_the_known_edges():
    graph = _graph()
    assert "util.data.benchmarks" in graph["util.data.dataset"]
    assert "model.ntrenet.ntrenet" in graph["model.ntrenet.pfenet"]
    assert "util.prepare.common" in graph["util.prepare.pascal"]


def test_model_imports_nothing_from_util():
    bad = {m: sorted(d for d in deps if d.split(".")[0] == "util")
           for m, deps in _graph().items() if m.split(".")[0] == "model"}
    assert not {m: d for m, d in bad.items() if d}


def test_no_import_cycle():
    assert _cycle(_graph()) is None


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


SHARED = {"backbones", "layers", "losses", "checkpoints"}
# a family that builds on another family's network (docs/design.md §1's table)
CROSS_FAMILY = {("ntrenet", "scnet"), ("ntrenet", "mmt"), ("ntrenet", "qgnet"), ("qgnet", "ntrenet"),
                ("bam", "ntrenet")}


def _model_folder_edges() -> set[tuple[str, str]]:
    """(folder, folder) for every import between two folders of model/."""
    edges = set()
    for m, deps in _graph().items():
        src = m.split(".")
        if src[0] != "model" or len(src) < 3:
            continue
        for d in deps:
            dst = d.split(".")
            if dst[0] == "model" and len(dst) >= 3 and dst[1] != src[1]:
                edges.add((src[1], dst[1]))
    return edges


def _families() -> set[str]:
    return {p.name for p in (ROOT / "model").iterdir() if (p / "__init__.py").is_file()} - SHARED


def test_shared_parts_import_no_method_family():
    assert not {(a, b) for a, b in _model_folder_edges() if a in SHARED and b not in SHARED}


def test_families_import_no_other_family_but_the_documented_ones():
    families = _families()
    assert {"ntrenet", "bam", "fscs", "qgnet", "scnet", "mmt"} <= families
    edges = {(a, b) for a, b in _model_folder_edges() if a in families and b in families}
    assert edges == CROSS_FAMILY  # a new cross-family import is added to the table, a stale one removed


def test_the_documented_exceptions_are_the_design_table():
    page = (ROOT / "docs" / "design.md").read_text()
    rows = page.split("| family | imports | why |\n|---|---|---|\n", 1)[1].split("\n\n", 1)[0].splitlines()
    table = set()
    for row in rows:
        family, imports = (c.strip() for c in row.strip("|").split("|")[:2])
        table |= {(family, re.sub(r"\(.*?\)", "", b).strip()) for b in imports.split(",")}
    assert table == CROSS_FAMILY


def test_util_top_level_holds_only_packages_and_the_error_type():
    loose = sorted(p.name for p in (ROOT / "util").glob("*.py") if p.name not in ("__init__.py", "errors.py"))
    assert not loose
