"""docs/design.md §1 shows the tree as it is: every folder and file it lists exists, and every
package of model/ and util/ is listed (a newcomer can find any file's folder and paper there)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tree_block() -> list[str]:
    page = (ROOT / "docs" / "design.md").read_text()
    section = page.split("## 1. Layout and layering", 1)[1].split("\n## ", 1)[0]
    return section.split("```\n", 2)[1].splitlines()


def listed_paths(lines: list[str]) -> set[str]:
    """Folders (`name/` first on a line, nested by two-space indent) and the `.py` files named
    on the lines under them, as paths from the repository root."""
    stack: list[tuple[int, str]] = []  # (indent, folder path)
    out = set()
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else ""
        first = line.split()[0] if line.strip() else ""
        if first.endswith("/"):
            path = parent + first
            out.add(path)
            stack.append((indent, path))
            continue
        if first.endswith(".py"):  # file names, then (after a wide gap) what they are
            names = re.split(r"\s{2,}", line.strip())[0].split()
            out |= {parent + n for n in names}
    return out


def test_parser_reads_nesting():
    lines = ["a/   x", "  b/   y", "    c.py d.py   what", "  e.py   z", "f.py g.py"]
    assert listed_paths(lines) == {"a/", "a/b/", "a/b/c.py", "a/b/d.py", "a/e.py", "f.py", "g.py"}


def test_every_listed_path_exists():
    missing = sorted(p for p in listed_paths(_tree_block()) if not (ROOT / p).exists())
    assert not missing, f"docs/design.md §1 lists what the tree does not have: {missing}"


def test_every_package_is_listed():
    listed = listed_paths(_tree_block())
    packages = {str(p.parent.relative_to(ROOT)) + "/" for top in ("model", "util")
                for p in (ROOT / top).rglob("__init__.py")}
    assert packages and not sorted(packages - listed), f"packages missing from docs/design.md §1: {sorted(packages - listed)}"
