"""Property-based tests: every reader is a total function. Whatever the bytes (well-formed recipes, the same
broken by random edits, snippets repeated thousands of times, soups of the characters that mean something to
YAML, Markdown, jupytext or Python's line count), a reader returns a `Recipe` or raises `RecipeError` with a
line of the file and a one-line message, within a second of CPU time. Also: libyaml and the pure-Python
loader give the same nodes, marks and messages.

Example counts come from the Hypothesis profile (`tests/conftest.py`): HYPOTHESIS_PROFILE=long for 10,000.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sandrun.readers import Parser, markdown_doc, percent, rst, yaml_nodes, yaml_recipe
from tests.fuzz.strategies import (
    Case,
    cases,
    markdown_cases,
    percent_cases,
    recipe_texts,
    rst_cases,
    special_soup,
    yaml_cases,
)
from tests.fuzz.totality import read_within_bound

READERS: dict[str, tuple[Parser, st.SearchStrategy[str]]] = {
    "yaml": (yaml_recipe.parse, recipe_texts(yaml_cases())),
    "percent": (percent.parse, recipe_texts(percent_cases())),
    "markdown": (markdown_doc.parse, recipe_texts(markdown_cases())),
    "rst": (rst.parse, recipe_texts(rst_cases())),
}


def _inputs(own: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """Texts for one reader: mostly its own format broken, some other formats, some soup; as UTF-8 bytes
    (with lone surrogates now and then, which the CLI refuses as invalid UTF-8)."""
    texts = st.one_of(own, own, recipe_texts(cases()), special_soup(), st.text(max_size=200))
    return texts.map(lambda text: text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("reader", sorted(READERS))
def test_reader_is_total_and_fast(reader: str) -> None:
    parser, own = READERS[reader]

    @given(data=_inputs(own))
    def check(data: bytes) -> None:
        read_within_bound(data, parser, f"recipe.{reader}")

    check()


@given(case=yaml_cases())
def test_libyaml_reads_well_formed_recipes_exactly_as_pure_python(case: Case) -> None:
    if yaml_nodes._FAST is None:
        pytest.skip("PyYAML was built without libyaml")
    text = case.text.removeprefix("\ufeff")  # as the reader gets it
    fast, pure = _outcome(yaml_nodes._FAST, text), _outcome(yaml.SafeLoader, text)
    assert not isinstance(pure, str), pure
    assert fast == pure == _outcome(None, text)


@given(text=recipe_texts(yaml_cases()))
def test_compose_says_what_pure_python_says_when_libyaml_refuses(text: str) -> None:
    if yaml_nodes._FAST is None:
        pytest.skip("PyYAML was built without libyaml")
    fast, pure, used = _outcome(yaml_nodes._FAST, text), _outcome(yaml.SafeLoader, text), _outcome(None, text)
    if isinstance(fast, str) or "\ufeff" in text:  # (libyaml leaves a BOM out of its offsets: not used)
        assert used == pure
    else:
        assert used == fast
        if fast != pure:  # libyaml is more lenient with some malformed documents (see yaml_nodes)
            event("libyaml and PyYAML read this malformed document differently")


def _outcome(loader: type[yaml.SafeLoader] | None, text: str) -> object:
    """The node tree as plain data (kinds, tags, values, styles, marks), or the error's text."""
    try:
        root = yaml_nodes.compose(text) if loader is None else yaml_nodes.compose_with(loader, text)
    except yaml.YAMLError as exc:
        return f"{type(exc).__name__}: {exc}"
    seen: dict[int, int] = {}

    def plain(node: yaml.Node) -> object:  # recursion is fine: the depth is capped at MAX_DEPTH
        if id(node) in seen:
            return ("alias", seen[id(node)])
        seen[id(node)] = len(seen)
        marks = (node.start_mark.index, node.start_mark.line, node.start_mark.column, node.end_mark.index)
        if isinstance(node, yaml.ScalarNode):
            return (node.tag, node.value, node.style, marks)
        if isinstance(node, yaml.SequenceNode):
            return (node.tag, node.flow_style, marks, [plain(item) for item in node.value])
        return (node.tag, node.flow_style, marks, [(plain(k), plain(v)) for k, v in node.value])

    return None if root is None else plain(root)


@settings(max_examples=20)
@given(depth=st.integers(1, 3000), opener=st.sampled_from(["[", "{a: ", "- ", "[{x: "]))
def test_deep_nesting_is_refused_or_read(depth: int, opener: str) -> None:
    text = "cells: " + opener * depth + "\n"
    read_within_bound(text.encode(), yaml_recipe.parse, "deep.yaml")
