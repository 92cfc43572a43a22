"""Which doctest directives a `>>>` session may name, and what each does, as doctest and pytest decide it:

- the ones sandrun honours (`+SKIP`, `+ELLIPSIS`, `+NORMALIZE_WHITESPACE`, `+IGNORE_EXCEPTION_DETAIL`,
  `+NUMBER`);
- the ones that change no verdict (how a failure is shown, `+FAIL_FAST`, `+DONT_ACCEPT_TRUE_FOR_1`):
  accepted and ignored;
- the others of doctest's and pytest's (`+DONT_ACCEPT_BLANKLINE`, `+ALLOW_UNICODE`, `+ALLOW_BYTES`): the
  example is found but not run, with the reason, so a document that uses them still runs (and `--strict`
  fails on it);
- any other word, a misspelt flag: an error at its line, with the flag it resembles (doctest's own
  parser refuses it too)."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from sandrun.errors import RecipeError
from sandrun.expect import DOCTEST_FLAGS, IGNORED_FLAGS, UNSUPPORTED_FLAGS, Written, expectation
from sandrun.readers.markdown_doc import parse
from tests.factories import run_json

PYTEST_FLAGS = ("ALLOW_UNICODE", "ALLOW_BYTES", "NUMBER")  # registered by pytest's doctest plugin


def test_every_flag_of_doctest_and_of_pytest_has_a_kind_and_no_other_is_accepted() -> None:
    known = {*DOCTEST_FLAGS, *IGNORED_FLAGS, *UNSUPPORTED_FLAGS}
    assert known == set(doctest.OPTIONFLAGS_BY_NAME) | set(PYTEST_FLAGS)
    assert len(known) == len(DOCTEST_FLAGS) + len(IGNORED_FLAGS) + len(UNSUPPORTED_FLAGS)


def test_a_misspelt_flag_is_an_error_that_names_the_right_one() -> None:
    text = "```pycon\n>>> 1\n1\n>>> print(' x')  # doctest: +NORMALISE_WHITESPACE\nx\n```\n"
    with pytest.raises(RecipeError) as caught:
        parse(text, "doc.md", "0" * 64)
    assert caught.value.line == 4 and "'+NORMALISE_WHITESPACE' is not a doctest directive" in str(
        caught.value
    )
    assert "did you mean '+NORMALIZE_WHITESPACE'?" in str(caught.value)


DOC = """\
.. doctest::

   >>> print("shown")  # doctest: +REPORT_NDIFF, +FAIL_FAST
   shown
   >>> "text"  # doctest: +ALLOW_UNICODE
   u'text'

.. doctest::
   :options: +ALLOW_BYTES, +REPORT_UDIFF

   >>> b"raw"
   'raw'
   >>> "back on"  # doctest: -ALLOW_BYTES
   'back on'

.. testcode::

   print("a")

.. testoutput::
   :options: +DONT_ACCEPT_BLANKLINE

   a
"""
WHY = "changes the comparison in a way sandrun does not"


def test_flags_sandrun_does_not_implement_leave_their_examples_found_but_not_run(tmp_path: Path) -> None:
    doc = tmp_path / "doc.rst"
    doc.write_text(DOC)
    code, transcript, err = run_json(doc)
    assert code == 0, err
    ended = [(c["line"], c["status"], c["unsupported"]) for c in transcript["cells"]]
    assert ended == [
        (3, "passed", None),
        (5, "skipped", f"pytest's doctest directive `+ALLOW_UNICODE` {WHY}"),
        (11, "skipped", f"pytest's doctest directive `+ALLOW_BYTES` {WHY}"),
        (13, "passed", None),
        (18, "skipped", f"doctest's doctest directive `+DONT_ACCEPT_BLANKLINE` {WHY}"),
    ]
    code, _, err = run_json(doc, "--strict")
    assert code == 1 and "found but not run" in err


def test_an_ignored_flag_does_not_make_a_wrong_output_pass(tmp_path: Path) -> None:
    doc = tmp_path / "doc.rst"
    doc.write_text(".. doctest::\n   :options: +REPORT_ONLY_FIRST_FAILURE\n\n   >>> 1 + 1\n   3\n")
    code, transcript, err = run_json(doc)
    assert code == 1, err
    assert transcript["cells"][0]["status"] == "failed"


def test_a_misspelt_flag_stops_the_command_with_exit_2(tmp_path: Path) -> None:
    doc = tmp_path / "doc.rst"
    doc.write_text(".. doctest::\n   :options: +ELIPSIS\n\n   >>> 1\n   1\n")
    code, _, err = run_json(doc)
    assert code == 2, err
    assert "doc.rst:1" in err and "did you mean '+ELLIPSIS'?" in err and "Traceback" not in err


def test_the_shared_validation_drops_ignored_flags_and_refuses_what_it_cannot_honour() -> None:
    stdout = Written("x\n", 4)
    found = expectation("r.md", {"stdout": stdout, "doctest": Written("+NUMBER +REPORT_NDIFF", 5)})
    assert found.stdout is not None and found.stdout.doctest == {"NUMBER"}
    for word in ("+ALLOW_BYTES", "-ELLIPSIS"):
        with pytest.raises(RecipeError, match=r"r\.md:5: sandrun cannot honour"):
            expectation("r.md", {"stdout": stdout, "doctest": Written(word, 5)})
