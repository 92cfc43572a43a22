"""Hypothesis strategies for recipes: well-formed ones in every format and surface (CRLF, no final newline,
BOM, YAML block scalars with indentation indicators, flow YAML, aliases, nested fences), the same broken by
random edits, and inputs built to be slow (one snippet repeated thousands of times)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import strategies as st

# Characters and snippets that mean something to one of the readers, or to Python's or YAML's idea of a line.
SPECIAL = [
    "\n", "\r", "\r\n", "\t", " ", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x01",
    "\x7f", "\ufeff", "\x00", "#", "%", "`", "~", "-", ":", "[", "]", "{", "}", "&", "*", "!", "|", ">", "'",
    '"', "=", "\\", ",", "?", "é", "😀", "cells:", "code:", "expect:", "stdout:", "error:", "match: regex",
    "# %%", "# %% [markdown]", " tags=[\"skip\"]", "x=", "```", "```python", "```output", "~~~", ">>> ",
    "... ", "<!-- sandrun: skip -->", "<!--", "-->", "# expect stdout:", "# expect value: ", "# ---",
    "  - ", "&a ", "*a", "|2", ">-", "Traceback (most recent call last):", "ValueError: x", "<BLANKLINE>",
    ".. testcode::", ".. doctest::", ".. testoutput::", "::", "   ", ".. sandrun: ", ".. sandrun-settings:",
]  # fmt: skip

# What the cells of generated recipes print: plain words and the characters each format must escape.
OUTPUT_PIECES = [
    "hello", "world", "42", "a b", "  indented", "#", "# not a comment", ":", "key: value", "- item", "'",
    '"', "`", "```", "~~~~", "%%", "|", ">", "{x}", "[1]", "*", "&", "!", "é", "✓", "\\", "null", "1.5",
]  # fmt: skip


def printed_texts() -> st.SearchStrategy[str]:
    """Output a cell prints: one to three lines, none blank (a blank line ends a console's output)."""
    line = st.lists(st.sampled_from(OUTPUT_PIECES), min_size=1, max_size=3).map(" ".join)
    return st.lists(line, min_size=1, max_size=3).map(lambda lines: "\n".join(lines) + "\n")


@dataclass(frozen=True)
class Case:
    """A recipe made of pieces, in order: fixed text, or expected output that `--update` may rewrite."""

    suffix: str
    pieces: tuple[tuple[str, bool], ...]  # (text, may change)
    outputs: tuple[str, ...]  # what the cells print

    @property
    def text(self) -> str:
        """The whole recipe."""
        return "".join(text for text, _ in self.pieces)


@dataclass(frozen=True)
class Surface:
    """How the file is written: line endings, a final newline, a byte-order mark."""

    crlf: bool
    final_newline: bool
    bom: bool

    def apply(self, pieces: list[tuple[str, bool]]) -> tuple[tuple[str, bool], ...]:
        """The pieces written this way."""
        out = [(text.replace("\n", "\r\n") if self.crlf else text, var) for text, var in pieces]
        if not self.final_newline:
            text, var = out[-1]
            out[-1] = (text.rstrip("\r\n"), var)
        if self.bom:
            out[0] = ("\ufeff" + out[0][0], out[0][1])
        return tuple(out)


surfaces = st.builds(Surface, st.booleans(), st.booleans(), st.booleans())


def _code(text: str) -> str:
    return f"import sys; sys.stdout.write({text!r})"


@st.composite
def yaml_cases(draw: st.DrawFn) -> Case:
    """A YAML recipe whose cells print `outputs` but expect something else, in many scalar styles."""
    outputs = draw(st.lists(printed_texts(), min_size=1, max_size=3))
    surface = draw(surfaces)
    if draw(st.booleans()):  # flow style throughout
        pieces: list[tuple[str, bool]] = [("{cells: [", False)]
        for i, out in enumerate(outputs):
            pieces += [(f"{', ' if i else ''}{{code: {json.dumps(_code(out))}, expect: {{stdout: ", False)]
            pieces += [(draw(st.sampled_from(["wrong", "'wrong'", '"wrong"'])), True), ("}}", False)]
        pieces.append(("]}\n", False))
        return Case(".yaml", surface.apply(pieces), tuple(outputs))
    pieces = [(draw(st.sampled_from(["", "name: fuzz\n", "# a comment\n"])) + "cells:\n", False)]
    anchored = False
    for i in range(len(outputs)):
        if anchored and draw(st.booleans()):  # the expectation of the cell before, through an alias
            outputs[i] = outputs[i - 1]
            alias = f"  - code: |\n      {_code(outputs[i])}\n    expect:\n      stdout: *out{i - 1}\n"
            pieces.append((alias, False))
            anchored = False
            continue
        anchored = draw(st.booleans())
        anchor = f"&out{i} " if anchored else ""
        pieces.append((f"  - code: |\n      {_code(outputs[i])}\n    expect:\n      stdout: {anchor}", False))
        style = draw(st.sampled_from(["plain", "single", "double", "|", "|-", "|+", "|2", "|4-", ">", ">-"]))
        if style in ("plain", "single", "double"):
            scalar = {"plain": "wrong", "single": "'wrong'", "double": '"wrong"'}[style]
            pieces += [(scalar, True), ("\n", False)]
        else:
            extra = " " * (int(style[1]) - 2) if style[1:2].isdigit() else ""
            pieces += [(f"{style}\n        {extra}wrong", True), ("\n", False)]
    return Case(".yaml", surface.apply(pieces), tuple(outputs))


@st.composite
def percent_cases(draw: st.DrawFn) -> Case:
    """A percent recipe whose cells print `outputs` but expect something else."""
    outputs = draw(st.lists(printed_texts(), min_size=1, max_size=3))
    surface = draw(surfaces)
    preamble = draw(st.sampled_from(["", "#!/usr/bin/env python\n", '"""Doc."""\n']))
    pieces: list[tuple[str, bool]] = [(preamble, False)]
    for i, out in enumerate(outputs):
        header = draw(st.sampled_from(["# %%", f"# %% cell {i}", f'# %% c{i} tags=["x"]']))
        if draw(st.booleans()):
            prose = draw(st.sampled_from(["# Some *prose*", "# ```python\n# # %% not a marker\n# ```"]))
            pieces.append((f"# %% [markdown]\n{prose}\n\n", False))
        pieces.append((f"{header}\n{_code(out)}\n# expect stdout:\n", False))
        pieces.append(("\n".join(draw(st.sampled_from([["# wrong"], ["# wrong", "#", "# again"]]))), True))
        pieces.append(("\n\n" if i + 1 < len(outputs) else "\n", False))
    return Case(".py", surface.apply(pieces), tuple(outputs))


@st.composite
def markdown_cases(draw: st.DrawFn) -> Case:
    """A Markdown document whose examples print `outputs` but show something else after them."""
    outputs = draw(st.lists(printed_texts(), min_size=1, max_size=3))
    surface = draw(surfaces)
    pieces: list[tuple[str, bool]] = [("# Fuzz\n\n", False)]
    for out in outputs:
        fence = draw(st.sampled_from(["```", "````", "~~~"]))
        inner = "\n# ```\n" if fence != "```" else "\n"  # a fence inside a longer fence is code
        pieces.append((f"Text.\n\n{fence}python\n{_code(out)}{inner}{fence}\n\n", False))
        out_fence = draw(st.sampled_from(["```", "````", "~~~"]))
        pieces += [(f"{out_fence}output\nwrong\n{out_fence}", True), ("\n\n", False)]
    return Case(".md", surface.apply(pieces), tuple(outputs))


@st.composite
def rst_cases(draw: st.DrawFn) -> Case:
    """A reST document whose testcode blocks print `outputs` but show something else after them."""
    outputs = draw(st.lists(printed_texts(), min_size=1, max_size=3))
    surface = draw(surfaces)
    pieces: list[tuple[str, bool]] = [("Fuzz\n====\n\n", False)]
    for out in outputs:
        indent = draw(st.sampled_from(["", "   "]))
        code = "".join(f"{indent}   {line}\n" for line in _code(out).splitlines())
        lead = ".. note::\n\n" if indent else ""
        pieces.append(
            (f"{lead}{indent}.. testcode::\n\n{code}\n{indent}.. testoutput::\n\n{indent}   ", False)
        )
        pieces += [("wrong", True), ("\n\n>>> 1 + 1\n2\n\n", False)]
    return Case(".rst", surface.apply(pieces), tuple(outputs))


def cases() -> st.SearchStrategy[Case]:
    """A well-formed recipe in any format."""
    return st.one_of(yaml_cases(), percent_cases(), markdown_cases(), rst_cases())


def mutated(base: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`base` texts with a few random insertions, deletions and repetitions of special characters."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        text = draw(base)
        for _ in range(draw(st.integers(0, 6))):
            at = draw(st.integers(0, len(text)))
            kind = draw(st.sampled_from(["insert", "delete", "repeat", "text"]))
            if kind == "insert":
                text = text[:at] + draw(st.sampled_from(SPECIAL)) + text[at:]
            elif kind == "delete":
                text = text[:at] + text[at + draw(st.integers(1, 20)) :]
            elif kind == "repeat":  # an input built to be slow: one snippet thousands of times
                snippet = draw(st.sampled_from(SPECIAL)) + draw(st.sampled_from([*SPECIAL, "x", "a "]))
                text = text[:at] + snippet * draw(st.integers(1, 5000)) + text[at:]
            else:
                text = text[:at] + draw(st.text(max_size=10)) + text[at:]
        return text

    return build()


def recipe_texts(strategy: st.SearchStrategy[Case]) -> st.SearchStrategy[str]:
    """Texts of well-formed recipes, broken or not."""
    return mutated(strategy.map(lambda case: case.text))


def special_soup() -> st.SearchStrategy[str]:
    """Texts made only of the special snippets, for readers to choke on."""
    return st.lists(st.sampled_from(SPECIAL), max_size=60).map("".join)
