"""The documentation's examples: each file under `docs/examples/` is shown on a page of `docs/` exactly as
it is (the page marks it with `<!-- example: examples/NAME -->` before the block), and every example file
is shown somewhere. CI runs the files and the pages themselves (`sandrun run README.md docs/`)."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt

DOCS = Path(__file__).resolve().parent.parent / "docs"
MARK = re.compile(r"<!--\s*example:\s*(\S+)\s*-->")


def shown() -> dict[str, list[str]]:
    """Example path (relative to docs/) -> the content of each block that shows it."""
    found: dict[str, list[str]] = {}
    for page in sorted(DOCS.glob("*.md")):
        waiting = None
        for token in MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8")):
            mark = MARK.fullmatch(token.content.strip()) if token.type == "html_block" else None
            if mark:
                waiting = mark[1]
            elif token.type == "fence" and waiting:
                found.setdefault(waiting, []).append(token.content)
                waiting = None
            elif token.type != "html_block":  # a sandrun comment may stand between the mark and the block
                waiting = None
    return found


def test_every_example_shown_is_the_file_as_it_is() -> None:
    examples = shown()
    assert examples, "no page marks an example"
    for name, blocks in examples.items():
        text = (DOCS / name).read_text(encoding="utf-8")
        for block in blocks:
            assert block == text, f"docs: the block showing {name} differs from the file"


def test_every_example_file_is_shown_on_a_page() -> None:
    files = {str(p.relative_to(DOCS)) for p in (DOCS / "examples").iterdir() if p.is_file()}
    assert files == set(shown())


def test_each_format_has_its_page_linked_from_the_index() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for page in ("yaml.md", "percent.md", "markdown.md", "rst.md", "notebooks.md"):
        assert (DOCS / page).is_file() and f"]({page})" in index
