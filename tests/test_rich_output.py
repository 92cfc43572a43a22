"""Rich output inside the sandbox: `display()`, `_repr_*_` bundles, rich values, figures, limits."""

from __future__ import annotations

import base64
import importlib.util

import pytest

from sandrun.events import ProtocolViolation, display_fields
from sandrun.model import OutputChunk
from sandrun.reports.rich import placeholder, png_size
from sandrun.session import DISPLAY_LIMIT, OutputCollector
from tests.conftest import RunCell
from tests.factories import PNG_1X1, needs_matplotlib

needs_pandas = pytest.mark.skipif(
    importlib.util.find_spec("pandas") is None, reason="pandas is not installed in sandrun's venv"
)

RICH_CLASS = f"""
class Rich:
    def _repr_html_(self):
        return "<b>rich</b>"
    def _repr_png_(self):
        return {PNG_1X1!r}
    def __repr__(self):
        return "Rich()"
"""


def rich(outcome) -> list[OutputChunk]:
    return [chunk for chunk in outcome.outputs if chunk.rich]


def test_display_sends_a_mime_bundle_in_order_with_prints(run_cell: RunCell) -> None:
    outcome = run_cell(RICH_CLASS + "print('before')\ndisplay(Rich(), 42)\nprint('after')\n")
    assert outcome.status == "ok", outcome.error
    kinds = [(c.stream, c.text) for c in outcome.outputs]
    assert kinds == [("stdout", "before\n"), ("display", "Rich()"), ("display", "42"), ("stdout", "after\n")]
    bundle = outcome.outputs[1].data
    assert bundle is not None
    assert bundle["text/html"] == "<b>rich</b>"
    assert base64.b64decode(bundle["image/png"]) == PNG_1X1
    assert outcome.outputs[2].data == {"text/plain": "42"}


def test_mimebundle_and_metadata_and_a_broken_repr(run_cell: RunCell) -> None:
    outcome = run_cell(
        """
        class Bundle:
            def _repr_mimebundle_(self, include=None, exclude=None):
                return {"text/markdown": "**md**", "application/json": {"a": [1]}}, {"x": {"y": 1}}
            def _repr_latex_(self):
                raise RuntimeError("no latex today")
        display(Bundle())
        """
    )
    assert outcome.status == "ok", outcome.error
    (chunk,) = rich(outcome)
    assert chunk.data is not None and chunk.data["text/markdown"] == "**md**"
    assert chunk.data["application/json"] == '{"a": [1]}'
    assert chunk.data["text/plain"].startswith("<__main__.Bundle object")
    assert chunk.metadata == {"x": {"y": 1}}
    stderr = "".join(c.text for c in outcome.outputs if c.stream == "stderr")
    assert "Bundle._repr_latex_ raised RuntimeError: no latex today" in stderr


def test_a_rich_trailing_value_is_a_result_and_a_plain_one_is_not(run_cell: RunCell) -> None:
    outcome = run_cell(RICH_CLASS + "Rich()\n")
    assert outcome.value == "Rich()"
    assert [(c.stream, c.text) for c in rich(outcome)] == [("result", "Rich()")]
    plain = run_cell("[1, 2]")
    assert plain.value == "[1, 2]" and rich(plain) == []


@needs_pandas
def test_a_pandas_dataframe_is_an_html_table_and_its_text(run_cell: RunCell) -> None:
    outcome = run_cell("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})")
    assert outcome.status == "ok", outcome.error
    [result] = rich(outcome)
    assert result.stream == "result" and result.data is not None
    html = str(result.data["text/html"])
    assert "<table" in html and "<td>x</td>" in html
    assert result.data["text/plain"].split() == ["a", "b", "0", "1", "x", "1", "2", "y"]


def test_a_value_whose_class_breaks_attribute_lookup_is_plain_text(run_cell: RunCell) -> None:
    outcome = run_cell(
        """
        class Meta(type):
            def __getattr__(cls, name):
                raise ValueError(name)
        class Odd(metaclass=Meta):
            def __repr__(self):
                return "Odd()"
        Odd()
        """
    )
    assert outcome.status == "ok", outcome.error
    assert outcome.value == "Odd()" and rich(outcome) == []


def test_rich_output_past_the_cell_limit_becomes_a_marker(run_cell: RunCell) -> None:
    outcome = run_cell("big = 'x' * (6 << 20)\nhtml = type('H', (), {'_repr_html_': lambda s: big})\n"
                       "display(html(), html())\nprint('still here')")  # fmt: skip
    assert outcome.status == "ok", outcome.error
    first, second = rich(outcome)
    assert first.data is not None and len(first.data["text/html"]) == 6 << 20
    assert second.data is not None and set(second.data) == {"text/plain"}
    assert f"the limit is {10 << 20} bytes per cell" in second.text
    assert outcome.outputs[-1].text == "still here\n"
    fresh = run_cell("display(html())")  # the budget is per cell
    assert rich(fresh)[0].data is not None and "text/html" in rich(fresh)[0].data


def test_rich_output_is_measured_as_sent_so_escapes_cannot_break_the_channel(run_cell: RunCell) -> None:
    # 9 MiB of quotes is 18 MiB once escaped in JSON: counted as characters, it would pass the 10 MiB limit
    # and make a protocol line longer than the host accepts, ending the session
    outcome = run_cell(
        "quotes = type('Q', (), {'_repr_html_': lambda s: '\"' * (9 << 20)})\ndisplay(quotes())"
    )
    assert outcome.status == "ok", outcome.error
    (marker,) = rich(outcome)
    assert marker.data is not None and set(marker.data) == {"text/plain"}
    assert "bytes not shown; the limit is" in marker.text
    assert run_cell("1 + 1").value == "2"  # the session lives on


def test_the_driver_imports_no_matplotlib_of_its_own(run_cell: RunCell) -> None:
    outcome = run_cell(
        "display(1)\nimport sys\nsorted(m for m in sys.modules if m.startswith(('matplotlib', 'IPython')))"
    )
    assert outcome.value == "[]"


@needs_matplotlib
def test_open_figures_are_captured_as_png_and_closed(run_cell: RunCell) -> None:
    outcome = run_cell(
        """
        import matplotlib.pyplot as plt
        plt.figure(figsize=(4, 3), dpi=50)
        plt.plot([1, 3, 2])
        print("plotted")
        """
    )
    assert outcome.status == "ok", outcome.error
    assert [c.text for c in outcome.outputs if c.stream == "stderr"] == []  # fontconfig found its settings
    (figure,) = rich(outcome)
    assert figure.text.startswith("<Figure size 200x150")
    assert figure.data is not None
    size = png_size(base64.b64decode(figure.data["image/png"]))
    assert size is not None and 100 < size[0] <= 200
    after = run_cell("plt.get_fignums()")
    assert after.value == "[]" and rich(after) == []


@needs_matplotlib
def test_plt_show_captures_in_order_and_children_get_agg(run_cell: RunCell) -> None:
    outcome = run_cell(
        """
        import os, subprocess, sys, warnings
        warnings.simplefilter("error")  # the Agg backend's 'cannot be shown' warning would fail the cell
        import matplotlib.pyplot as plt
        plt.plot([1, 2])
        plt.show()
        print("between")
        plt.plot([2, 1])
        plt.show()
        print(subprocess.run([sys.executable, "-c", "import os; print(os.environ['MPLBACKEND'])"],
                             capture_output=True, text=True).stdout.strip())
        """
    )
    assert outcome.status == "ok", outcome.error
    order = [c.stream if c.rich else c.text for c in outcome.outputs if c.stream != "stderr"]
    assert order == ["display", "between\n", "display", "Agg\n"]


@pytest.mark.skipif(importlib.util.find_spec("IPython") is None, reason="IPython is not installed")
def test_ipython_display_lands_in_the_same_place(run_cell: RunCell) -> None:
    outcome = run_cell("from IPython.display import display as d, HTML\nd(HTML('<i>x</i>'))")
    assert outcome.status == "ok", outcome.error
    assert [c.data.get("text/html") for c in rich(outcome) if c.data] == ["<i>x</i>"]


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"kind": "sneaky", "data": {}}, "unknown kind"),
        ({"data": {"text/plain": 3}}, "data is dict"),
        ({"data": "x"}, "data is str"),
        ({"data": {"text plain": "x"}}, "invalid MIME type"),
        ({"data": {"text/\x1b[2J": "x"}}, "invalid MIME type"),
        ({"data": {}, "metadata": []}, "metadata is list"),
    ],
)
def test_a_malformed_display_event_is_a_protocol_violation(event: dict, problem: str) -> None:
    with pytest.raises(ProtocolViolation, match=problem):
        display_fields({"ev": "display", "id": 1, **event})


def test_display_event_fields_are_made_writable() -> None:
    chunk = display_fields({"ev": "display", "data": {"text/html": "\ud800"}, "metadata": {"k": ["\udc00"]}})
    assert chunk.stream == "display" and chunk.text == ""
    assert chunk.data == {"text/html": "\\ud800", "text/plain": ""}
    assert chunk.metadata == {"k": ["\\udc00"]}


def test_the_host_keeps_at_most_the_display_limit_per_cell() -> None:
    kept: list[OutputChunk] = []
    collector = OutputCollector(100, kept, None)
    half = "x" * (DISPLAY_LIMIT // 2 + 1)
    for _ in range(2):
        collector.add_display(OutputChunk("display", "H", {"text/plain": "H", "text/html": half}, {}))
    collector.finish()
    assert [c.data and set(c.data) for c in kept[:2]] == [{"text/plain", "text/html"}, {"text/plain"}]
    assert kept[2].text.startswith(f"[sandrun: {len(half)} bytes of rich output not shown")


def test_placeholders_name_the_type_and_size() -> None:
    png = base64.b64encode(PNG_1X1).decode()
    assert (
        placeholder(OutputChunk("display", "F", {"text/plain": "F", "image/png": png})) == "[image/png 1x1]"
    )
    html = OutputChunk("display", "H", {"text/plain": "H", "text/html": "<p>x</p>"})
    assert placeholder(html) == "[text/html, 8 bytes]"
    assert placeholder(OutputChunk("display", "42", {"text/plain": "42"})) == "42"
