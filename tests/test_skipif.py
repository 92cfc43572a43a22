"""Sphinx's `:skipif:` is Python from the document: it is evaluated inside the sandbox, in the document's
interpreter just before its block, never on the host. When it is true the block is skipped with the
expression as the reason; when it raises, the block is an error at the expression's line."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sandrun.model import Condition
from sandrun.readers.rst import parse
from tests.factories import run_json

DOC = """\
.. testsetup::

   import sys
   legacy = sys.version_info < (3, 0)

.. testcode::
   :skipif: not legacy

   print("only on Python 2")

.. testoutput::
   :skipif: not legacy

   only on Python 2

.. testcode::
   :skipif: legacy

   print("on Python 3")

.. testoutput::

   on Python 3

.. doctest::
   :skipif: "sys" in globals()

   >>> 1 / 0
   >>> also_skipped

.. testcode::
   :skipif: undefined_name

   print("never")
"""


def test_the_reader_keeps_the_condition_and_its_line() -> None:
    cells = parse(DOC, "doc.rst", "0" * 64).cells
    assert [c.skip_if for c in cells] == [
        None,
        Condition("not legacy", 7),
        Condition("legacy", 17),
        Condition('"sys" in globals()', 26),
        Condition('"sys" in globals()', 26),
        Condition("undefined_name", 32),
    ]
    assert not any(c.skip for c in cells)  # nothing is decided on the host


def test_conditions_are_evaluated_in_the_documents_interpreter(tmp_path: Path) -> None:
    doc = tmp_path / "doc.rst"
    doc.write_text(DOC)
    code, transcript, err = run_json(doc, "--keep-going")
    assert code == 1, err
    ended = [(c["line"], c["status"], c["reason"]) for c in transcript["cells"]]
    assert ended[:5] == [
        (3, "passed", None),
        (9, "skipped", "`:skipif: not legacy` (line 7) is true in the sandbox"),
        (19, "passed", None),
        (28, "skipped", '`:skipif: "sys" in globals()` (line 26) is true in the sandbox'),
        (29, "skipped", '`:skipif: "sys" in globals()` (line 26) is true in the sandbox'),
    ]
    broken = transcript["cells"][5]
    assert broken["status"] == "failed" and broken["error"]["type"] == "NameError"
    assert broken["error"]["line"] == 32 and "undefined_name" in broken["error"]["traceback"]
    assert transcript["cells"][1]["skip_if"] == {"text": "not legacy", "line": 7}


def test_a_false_condition_runs_the_block_and_checks_its_output(tmp_path: Path) -> None:
    doc = tmp_path / "doc.rst"
    doc.write_text(
        ".. testcode::\n   :skipif: 1 + 1 == 3\n\n   print('ran')\n\n.. testoutput::\n\n   not this\n"
    )
    code, transcript, err = run_json(doc)
    assert code == 1, err
    assert transcript["cells"][0]["status"] == "failed" and transcript["cells"][0]["stdout"] == "ran\n"


# --- the condition is code from the document: an attack on the host, and its control ------------------

ATTACK = (
    "__import__('pathlib').Path(r'{marker}').parent.mkdir(parents=True, exist_ok=True)"
    " or __import__('pathlib').Path(r'{marker}').write_text('pwned') == 5"
)


def test_control_the_condition_writes_the_host_file_where_it_is_evaluated_unsandboxed(tmp_path: Path) -> None:
    marker = tmp_path / "host" / "marker"
    assert eval(ATTACK.format(marker=marker)) is True  # what a host-side evaluation would do
    assert marker.read_text() == "pwned"


def test_attack_a_condition_cannot_touch_the_host(tmp_path: Path) -> None:
    marker = tmp_path / "host" / "marker"
    doc = tmp_path / "doc.rst"
    doc.write_text(
        textwrap.dedent(f"""\
            .. testcode::
               :skipif: {ATTACK.format(marker=marker)}

               print("not run when the write worked")

            .. testcode::

               import pathlib
               print(pathlib.Path(r"{marker}").read_text())
        """)
    )
    parse(doc.read_text(), str(doc), "0" * 64)  # reading the document evaluates nothing
    assert not marker.exists()
    code, transcript, err = run_json(doc)
    assert not marker.exists() and not marker.parent.exists(), "the condition reached the host"
    # it was evaluated, inside: the write landed in the sandbox's own filesystem, where the next block
    # reads it back
    assert code == 0, err
    first, second = transcript["cells"]
    assert first["status"] == "skipped" and "is true in the sandbox" in first["reason"]
    assert second["stdout"] == "pwned\n"


def test_a_testoutput_condition_of_its_own_skips_the_pair_and_says_so() -> None:
    text = ".. testcode::\n   :skipif: a\n\n   x = 1\n\n.. testoutput::\n   :skipif: b\n\n   1\n"
    recipe = parse(text, "doc.rst", "0" * 64)
    assert recipe.cells[0].skip_if == Condition("(a) or (b)", 2)
    assert recipe.warnings == (
        "doc.rst:7: this `:skipif:` skips the testcode too (sandrun runs the pair as one cell)",
    )


def test_the_json_transcript_carries_the_readers_warnings(tmp_path: Path) -> None:
    doc = tmp_path / "doc.rst"
    doc.write_text(".. testcode::\n\n   print(1)\n\n.. testoutput::\n   :skipif: False\n\n   1\n")
    (tmp_path / "doc.md").write_text("```python slip\nprint(1)\n```\n")
    code, transcript, err = run_json(doc)
    assert code == 0, err
    assert transcript["recipe"]["warnings"] == [], "a testoutput's condition alone is no warning"
    code, transcript, err = run_json(tmp_path / "doc.md")
    assert code == 0, err
    assert transcript["recipe"]["warnings"] == [
        f"{tmp_path / 'doc.md'}:1: option 'slip' is not sandrun's and is ignored; did you mean 'skip'?"
    ]


def test_a_condition_that_is_not_an_expression_is_an_error_at_its_line(tmp_path: Path) -> None:
    doc = tmp_path / "doc.rst"
    doc.write_text(
        ".. testcode::\n   :skipif: 1 +\n\n   print('a')\n\n"
        ".. testcode::\n   :skipif: flag = True\n\n   print('b')\n"
    )
    code, transcript, err = run_json(doc, "--keep-going")
    assert code == 1, err
    errors = [(c["status"], c["error"]["type"], c["error"]["line"]) for c in transcript["cells"]]
    assert errors == [("failed", "SyntaxError", 2), ("failed", "SyntaxError", 7)]
    assert transcript["cells"][0]["stdout"] == transcript["cells"][1]["stdout"] == ""
