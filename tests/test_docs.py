"""Documentation holds together: the README links every docs/ page and stays short, every
relative link and anchor resolves, and code cites only files the repository has."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces -> hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # no headings inside code blocks
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_slug():
    assert _slug("The demo (`make demo`)") == "the-demo-make-demo"
    assert _slug("Rebuilding the paper's tables") == "rebuilding-the-papers-tables"


def test_readme_is_short_and_links_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert PAGES and all(f"](docs/{p.name}" in readme for p in PAGES)
    assert "](CHANGELOG.md)" in readme


@pytest.mark.parametrize("doc", [ROOT / "README.md", ROOT / "CHANGELOG.md", *PAGES], ids=lambda p: p.name)
def test_relative_links_resolve(doc):
    for target in LINK.findall(doc.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        assert path.exists(), f"{doc.name}: link to missing {target}"
        if anchor:
            assert anchor in _anchors(path), f"{doc.name}: no heading for #{anchor} in {path.name}"


def test_code_cites_only_files_the_repository_has():
    for path in [*ROOT.glob("*.py"), *(ROOT / "model").rglob("*.py"), *(ROOT / "util").rglob("*.py")]:
        text = path.read_text()
        assert not re.search(r"DESIGN \d|\.\./shared|papers/\d", text), path
        for cited in re.findall(r"\b(docs/[\w-]+\.md)", text):
            assert (ROOT / cited).is_file(), f"{path.relative_to(ROOT)} cites missing {cited}"
