"""Property-based: the notebook reader is a total function. Whatever the JSON (notebook-shaped with random
values anywhere, or broken text), it returns a `Recipe` or raises `RecipeError` with a line and one line
of message, quickly."""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from sandrun.readers import ipynb
from tests.fuzz.totality import read_within_bound

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=12),
    st.sampled_from(["code", "markdown", "raw", "stdout", "stream", "execute_result", "%time x", "!ls",
                     "%matplotlib inline", "raises-exception", "skip", "text/plain", "\0", "x = 1\n"]),
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from([
            "cell_type", "source", "metadata", "tags", "outputs", "execution_count", "sandrun", "timeout",
            "env", "packages", "files", "name", "text", "data", "output_type", "check_outputs", "match",
            "execution", "text/plain"]), inner, max_size=5)),
    max_leaves=20,
)  # fmt: skip
CELLS = st.lists(
    st.fixed_dictionaries(
        {"cell_type": st.sampled_from(["code", "markdown", "raw"]), "source": st.one_of(st.text(), JSON)},
        optional={"metadata": JSON, "outputs": JSON, "execution_count": JSON},
    )
    | JSON,
    max_size=5,
)
NOTEBOOKS = st.fixed_dictionaries(
    {"cells": CELLS, "nbformat": st.sampled_from([4, 4, 3, "4"])}, optional={"metadata": JSON}
)


@given(nb=NOTEBOOKS, indent=st.sampled_from([None, 1, 2]), cut=st.integers(0, 400))
@example(nb={"cells": [{"cell_type": "code", "source": "x = 1 %\0"}], "nbformat": 4}, indent=1, cut=0)
def test_notebook_reader_is_total_and_fast(nb: dict[str, object], indent: int | None, cut: int) -> None:
    text = json.dumps(nb, indent=indent)
    read_within_bound(text.encode(), ipynb.parse, "n.ipynb")
    read_within_bound(text[:cut].encode(), ipynb.parse, "n.ipynb")  # a notebook cut short
