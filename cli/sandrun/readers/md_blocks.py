"""Finding the blocks of a Markdown document as CommonMark finds them (with markdown-it-py).

Fenced code blocks are found wherever CommonMark puts them: at the top level, in list items, in
blockquotes, in containers nested in containers, each with its true lines in the file. An indented code
block whose first line is a `>>> ` prompt is a session (doctest finds it in a README), read as a fence with
no language. The parser is imported only when a Markdown document is read (it costs start-up time every
other run would pay).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

_COMMENT = re.compile(r"\s*<!--\s*sandrun\s*:(.*?)-->\s*")
_SANDRUN_COMMENT = re.compile(r"\s*<!--\s*sandrun\s*:")
_QUARTO = ("python", "py", "python3")
_SESSION = re.compile(r" *>>> ")
_CONTAINERS = ("bullet_list", "ordered_list", "list_item", "blockquote")


@dataclass(frozen=True)
class Fence:
    """A fenced code block: where it stands in the file and what it holds."""

    lang: str
    """The language, lowercased: the info string's first word (`python` in `{.python .numberLines}`)."""
    info: str
    """The rest of the info string (options)."""
    opening: int
    """0-based index of the opening fence's line."""
    first: int
    """0-based index of the first content line."""
    end: int
    """0-based index of the closing fence's line (or of the line after the block, if it is not closed)."""
    lines: tuple[str, ...]
    """The content lines, with the containers' prefixes and the fence's indentation removed."""
    directive: bool = False
    """Whether the info string was a MyST directive, `{name}`, rather than a language or Pandoc class."""
    indented: bool = False
    """Whether it is an indented code block (then it starts with a `>>>` prompt), not a fence."""


@dataclass(frozen=True)
class Comment:
    """A `<!-- sandrun: ... -->` comment on one line: its 0-based line index and its options."""

    line: int
    text: str


@dataclass(frozen=True)
class Text:
    """Any other block with text (a paragraph, a heading, a table, ...): its 0-based first line."""

    line: int
    heading: str | None = None
    """The text of a level-1 heading."""


Item = Fence | Comment | Text


@cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt  # lazily: only documents need it

    return MarkdownIt("commonmark").disable("inline")  # block structure is all that matters here


class BadComment(ValueError):
    """A `<!-- sandrun: ... -->` comment that is not alone on one line; `args[0]` is its line index."""


def scan(text: str) -> list[Item]:
    """The document's fenced blocks, sandrun comments and other text blocks, in order."""
    tokens: list[Any] = _parser().parse(text)
    items: list[Item] = []
    for i, token in enumerate(tokens):
        if token.map is None or token.type.endswith("_close"):
            continue
        start, stop = token.map
        if token.type == "fence":
            items.append(_fence(token, start, stop))
        elif token.type == "code_block" and _SESSION.match(token.content.lstrip("\n")):
            lines = tuple(token.content.split("\n")[:-1])  # a session, as doctest reads a README
            items.append(Fence("", "", start, start, start + len(lines), lines, indented=True))
        elif token.type == "html_block":
            content = token.content.rstrip("\n")
            comment = _COMMENT.fullmatch(content)
            if comment and "\n" not in content:
                items.append(Comment(start, comment[1]))
            elif _SANDRUN_COMMENT.match(content):
                raise BadComment(start)
            elif not content.lstrip().startswith("<!--"):
                items.append(Text(start))
        elif token.type != "inline" and token.type.removesuffix("_open") not in _CONTAINERS:
            h1 = token.type == "heading_open" and token.tag == "h1"
            items.append(Text(start, tokens[i + 1].content.strip() if h1 else None))
    return items


def _fence(token: Any, start: int, stop: int) -> Fence:
    lines = token.content.split("\n")[:-1]  # every content line ends with "\n"
    closed = stop - start - 1 - len(lines) == 1
    info = token.info.strip().replace("\t", " ")
    word, _, rest = info.partition(" ")
    directive = False
    if info.startswith("{."):  # Pandoc: {.python .numberLines startFrom="3"}
        inside = info[2:].partition("}")[0]
        word, _, rest = inside.partition(" ")
    elif info.startswith("{"):  # Quarto's {python}, or a MyST directive: {code-cell} python
        inside, _, rest = info[1:].partition("}")
        word = inside.strip()
        directive = word.lower() not in _QUARTO
        word = "{" + word + "}" if directive else word
    end = stop - 1 if closed else stop
    return Fence(word.lower(), rest.strip(), start, start + 1, end, tuple(lines), directive)
