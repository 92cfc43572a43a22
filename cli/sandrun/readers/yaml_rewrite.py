"""Writing a new expected text into a YAML recipe, for `--update`: in place of the old scalar, a literal
block where a block was or for several lines, else the old plain or quoted style, else double quotes; the
first of these that PyYAML reads back as the new text. An anchor, a tag, a block's header comment and the
blank lines after it stay where they were.
"""

from __future__ import annotations

import re

import yaml

from sandrun.errors import RecipeError
from sandrun.model import ExpectedText
from sandrun.readers import Replacement
from sandrun.readers.lines import newline_of, split_lines
from sandrun.readers.yaml_nodes import compose, construct

_LINE_END = re.compile(r"\r\n|\r|\n")
_PROPERTIES = re.compile(r"(?:[&!]\S*\s+)*")  # a node's anchor and tag, before its value


def rewrite(text: str, expected: ExpectedText, what: str, new: str, path: str) -> Replacement:
    """`new` in place of the scalar `expected` (`sandrun.readers.Rewriter`)."""
    start, end = expected.span  # type: ignore[misc]
    return Replacement(start, end, _scalar(path, text, start, end, new, newline_of(text)))


def _scalar(path: str, text: str, start: int, end: int, new: str, nl: str) -> str:
    """A scalar for `new` in place of the one at `text[start:end]`: the first fit that PyYAML reads back."""
    found = _yaml_node(text, start)
    assert found is not None, f"no YAML scalar starts at offset {start}"
    node, key_column, in_flow = found
    props = _PROPERTIES.match(text, start, end).group()  # type: ignore[union-attr]  # an anchor, a tag: kept
    was_block = node.style in ("|", ">")
    old = text[start + len(props) : end]
    chomp, comment, indent, rest = _block_parts(old, key_column) if was_block else ("", "", 0, "")
    if new.lstrip("\n").startswith(" ") or not was_block:  # an indentation indicator is needed, or no block
        indent = indent if 0 < indent - key_column < 10 else key_column + 2
    digit = str(indent - key_column) if new.lstrip("\n").startswith(" ") else ""
    lines = nl.join(" " * indent + line if line else "" for line in new.split("\n"))
    candidates = ["''" if node.style == "'" else '""'] if not new else []
    if new and not in_flow and (was_block or "\n" in new):
        candidates.append(f"|{digit}{chomp}{comment}{nl}{lines}{rest}")
    if "\n" not in new and node.style in (None, "|", ">"):
        candidates.append(new + comment + rest)
    if "\n" not in new and node.style == "'":
        candidates.append("'" + new.replace("'", "''") + "'")
    quoted = yaml.dump(new, default_style='"', allow_unicode=True, width=float("inf")).strip()
    for candidate in [*candidates, quoted + comment + rest]:
        try:
            found = _yaml_node(text[:start] + props + candidate + text[end:], start)
            value = construct(found[0]) if found else None
        except (yaml.YAMLError, ValueError):
            continue
        if isinstance(value, (str, int, float)) and str(value).rstrip("\n") == new:
            return props + candidate
    raise RecipeError(path, len(split_lines(text[:start])), f"cannot write {new!r} as a YAML scalar")


def _yaml_node(text: str, start: int) -> tuple[yaml.ScalarNode, int, bool] | None:
    """The scalar value starting at offset `start`, its key's column, and whether it is in flow style."""
    stack: list[tuple[yaml.Node | None, int, bool]] = [(compose(text), 0, False)]
    seen: set[int] = set()  # an alias makes a node appear twice, or inside itself
    while stack:
        node, column, in_flow = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode) and node.start_mark.index == start:
            return node, column, in_flow
        in_flow = in_flow or bool(getattr(node, "flow_style", False))
        if isinstance(node, yaml.MappingNode):
            stack.extend((value, key.start_mark.column, in_flow) for key, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, column, in_flow) for item in node.value)
    return None


def _block_parts(old: str, key_column: int) -> tuple[str, str, int, str]:
    """An old block scalar's chomping indicator, header comment and content indentation, and what follows
    its content: the line break and the blank lines before the next key (all kept in its place)."""
    header = re.match(r"[|>]([0-9+-]*)([^\r\n]*)", old)
    assert header is not None
    body = [line for line in split_lines(old[header.end() :]) if line.strip()]
    digits = re.sub("[^0-9]", "", header.group(1))
    indent = key_column + int(digits) if digits else key_column + 2
    indent = len(body[0]) - len(body[0].lstrip(" ")) if body and not digits else indent
    content_end = len(old.rstrip(" \t\r\n")) if body else header.end()
    after = _LINE_END.search(old[content_end:])
    rest = old[content_end + after.start() :] if after else ""
    return re.sub("[0-9]", "", header.group(1)), header.group(2), indent, rest
