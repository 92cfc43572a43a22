"""Markdown fence rules (`sandrun.fences`), with CommonMark as markdown-it-py reads it as the oracle: which
lines are fences, which line closes a block, and the fence that holds a text whole. The percent reader
follows jupytext's variant instead (`tests/test_reader_percent.py`)."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import example, given
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from sandrun.fences import fence_for, fence_line
from sandrun.model import CellKind
from sandrun.reports.markdown import render_markdown
from tests.factories import with_cells

TEXT = st.lists(st.text(alphabet="`~ \ta\xa0", max_size=8), max_size=6).map("\n".join)
FENCE_LIKE = st.builds(
    lambda indent, char, count, rest: " " * indent + char * count + rest,
    st.integers(0, 4),
    st.sampled_from("`~"),
    st.integers(2, 5),
    st.text(alphabet="`~ \ta\xa0", max_size=3),
)


def parsed(page: str) -> list[Token]:
    return MarkdownIt("commonmark").parse(page)


@given(text=TEXT, char=st.sampled_from("`~"))
def test_the_fence_for_a_text_holds_it_whole(text: str, char: str) -> None:
    ticks = fence_for(text, char)
    tokens = parsed(f"{ticks}\n{text}\n{ticks}\n\nafter\n")
    assert tokens[0].type == "fence" and tokens[0].content == text + "\n"
    assert [t.content for t in tokens if t.type == "inline"] == ["after"]


def test_the_fence_for_a_text_is_as_short_as_its_line_starts_allow() -> None:
    assert fence_for("plain") == "```"
    assert fence_for("a ````` b") == "```"  # a run inside a line closes nothing
    assert fence_for("  ````` b") == "``````"
    assert fence_for("```", "~") == "~~~"
    assert fence_for("~~~~\r~~~~~~", "~") == "~~~~~~~"  # a lone CR ends a line too
    assert fence_for("x", "`", 5) == "`````"


@given(opening=FENCE_LIKE, line=FENCE_LIKE)
@example(opening="``` a`", line="```")  # a backtick in a backtick fence's info string: no fence
@example(opening="~~~ a`", line="~~~")  # in a tilde fence's: a fence
@example(opening="```", line="```\xa0")  # only spaces and tabs may follow a closing fence
def test_fence_lines_open_and_close_blocks_as_commonmark_says(opening: str, line: str) -> None:
    tokens = parsed(f"{opening}\n{line}\nafter\n")
    first = fence_line(opening)
    if first is None or not first.opens:
        assert not (tokens[0].type == "fence" and tokens[0].map == [0, tokens[0].map[1]])
        return
    assert tokens[0].type == "fence"
    closing = fence_line(line)
    assert (closing is not None and closing.closes(first)) == (tokens[0].content == "")


def test_a_markdown_cell_that_leaves_a_fence_open_is_closed_in_the_report() -> None:
    # "```" followed by a no-break space closes nothing in CommonMark; Python's str.strip() says it is blank
    prose = "```\nx\n```\xa0"
    t = with_cells(({"kind": CellKind.MARKDOWN, "source": prose}, {}), ({"name": "next"}, {}))
    tokens = parsed(render_markdown(t))
    headings = [inline.content for opening, inline in pairwise(tokens) if opening.type == "heading_open"]
    assert headings[-1] == "2. next: passed"
