"""The Markdown reader: which fenced blocks become cells (CommonMark's fence rules), which output blocks and
`>>>` transcripts become expectations (doctest's rules), where every cell and expected text sits in the file,
the options, and a `RecipeError` at `path:LINE` for every mistake. Then the same documents end to end,
through the command line, with the process backend."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sandrun.errors import RecipeError
from sandrun.model import ANY_EXCEPTION, ExpectedText, MatchMode, Recipe
from sandrun.readers import SUPPORTED_SUFFIXES, load_recipe
from sandrun.readers.doc_cells import OPTIONS
from sandrun.readers.markdown_doc import parse

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def read(text: str, path: str = "doc.md") -> Recipe:
    """Parse dedented `text` with a dummy digest."""
    return parse(textwrap.dedent(text), path, "0" * 64)


def sources(text: str) -> list[tuple[int, str]]:
    """(line, source) of every cell."""
    return [(c.line, c.source) for c in read(text).cells]


def error(text: str) -> RecipeError:
    """The RecipeError that parsing `text` raises."""
    with pytest.raises(RecipeError) as info:
        read(text)
    return info.value


def spanned(text: str, expected: ExpectedText | None) -> str:
    """The part of the file an expected text's span covers, checking that it starts on `expected.line`."""
    assert expected is not None and expected.span is not None
    start, end = expected.span
    assert text[:start].count("\n") + 1 == expected.line
    return text[start:end]


# --- which blocks are cells ---------------------------------------------------------------------------


def test_python_blocks_in_order_with_their_lines() -> None:
    text = """\
        # Title

        ```python
        x = 1
        ```

        Some prose.

        ```py
        y = x + 1

        print(y)
        ```
        """
    assert sources(text) == [(4, "x = 1\n"), (10, "y = x + 1\n\nprint(y)\n")]
    recipe = read(text)
    assert recipe.format == "markdown" and recipe.name == "Title"
    assert [c.index for c in recipe.cells] == [0, 1]


def test_tildes_longer_fences_and_info_words() -> None:
    text = """\
        ~~~python
        a = "```"
        ```
        ~~~
        ````Python extra words? no: only options
        ````
        `````py
        b = 2
        ````
        `````
        """
    assert read(text).warnings == ()  # words that are not sandrun's belong to a renderer: ignored
    assert sources(text) == [(2, 'a = "```"\n```\n'), (6, ""), (8, "b = 2\n````\n")]


def test_closing_fence_rules() -> None:
    text = """\
        ```python
        a = 1
        ~~~
        `` `
        ``` not a closing fence
           ```
        b = 2
        ```python
        c = 3
        """
    # ~~~, a shorter fence, one with text after it: no close; indented 3 spaces: closes; unclosed: to the end
    assert sources(text) == [(2, "a = 1\n~~~\n`` `\n``` not a closing fence\n"), (9, "c = 3\n")]


def test_indented_fence_strips_its_indentation_from_the_content() -> None:
    text = "- a list item\n\n  ```python\n  if True:\n      x = 1\n  y = 2\n  ```\n"
    assert sources(text) == [(4, "if True:\n    x = 1\ny = 2\n")]
    # a line indented less than the list item's content ends the item, and with it the fence (CommonMark)
    text = "- a list item\n\n  ```python\n  if True:\n      x = 1\n y = 2\n  ```\n"
    assert sources(text) == [(4, "if True:\n    x = 1\n")]


def test_other_blocks_are_ignored() -> None:
    text = """\
        ```bash
        echo hi
        ```

        ```
        no language
        ```

            ```python
            indented code block, not a fence
            ```

        ```python` is inline code, not a fence```

        ````markdown
        ```python
        inside another fence
        ```
        ````

        <!--
        ```python
        commented out
        ```
        -->

        ```rust
        not python
        ```

        ```pycon
        ```

        ```python
        only = "this"
        ```
        """
    assert sources(text) == [(35, 'only = "this"\n')]


def test_no_python_block_is_an_error_at_line_1() -> None:
    problem = error("# Title\n\n```bash\nls\n```\n")
    assert str(problem).startswith("doc.md:1: no Python code blocks")
    assert problem.hint and "```python" in problem.hint


def test_crlf_line_endings() -> None:
    text = "```python\r\nprint(1)\r\n```\r\n\r\n```output\r\n1\r\n```\r\n"
    cell = parse(text, "doc.md", "0" * 64).cells[0]
    assert (cell.line, cell.source) == (2, "print(1)\n")
    assert cell.expect.stdout is not None and cell.expect.stdout.text == "1\n"
    assert cell.expect.stdout.line == 6
    assert text[slice(*cell.expect.stdout.span or (0, 0))] == "1\r\n"


def test_load_recipe_reads_markdown(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text("```python\nprint('hi')\n```\n", encoding="utf-8")
    assert ".md" in SUPPORTED_SUFFIXES
    recipe = load_recipe(path)
    assert recipe.format == "markdown" and recipe.cells[0].path == str(path)


# --- output blocks -------------------------------------------------------------------------------------

OUTPUT_DOC = """\
```python
print("a")
print("b")
```


```output
a
b
```

```python
print("c")
```

Prose in between: the next block is not this cell's output.

```output
c
```

```python
pass
```
```text
```
```output
second output block: not attached
```
"""


def test_output_block_right_after_is_the_expected_stdout() -> None:
    first, second, third = parse(OUTPUT_DOC, "doc.md", "x").cells
    assert first.expect.stdout == ExpectedText("a\nb\n", MatchMode.ELLIPSIS, line=8, span=(48, 52))
    assert spanned(OUTPUT_DOC, first.expect.stdout) == "a\nb\n"
    assert second.expect.stdout is None
    assert third.expect.stdout is not None and third.expect.stdout.text == ""
    start, end = third.expect.stdout.span or (0, 1)
    assert start == end and OUTPUT_DOC[start:].startswith("```\n```output")
    assert all(c.expect.repl is None and c.expect.error is None for c in (first, second, third))


def test_replacing_a_span_rewrites_just_the_output() -> None:
    cell = parse(OUTPUT_DOC, "doc.md", "x").cells[0]
    start, end = cell.expect.stdout.span  # type: ignore[union-attr,misc]
    updated = OUTPUT_DOC[:start] + "x\ny" + "\n" + OUTPUT_DOC[end:]
    again = parse(updated, "doc.md", "x").cells[0]
    assert again.expect.stdout is not None and again.expect.stdout.text == "x\ny\n"
    assert updated.replace("x\ny\n", "a\nb\n", 1) == OUTPUT_DOC


def test_output_block_after_a_non_python_block_is_ignored() -> None:
    text = "```python\nx = 1\n```\n```bash\nls\n```\n```output\nfile\n```\n"
    assert read(text).cells[0].expect.stdout is None


# --- >>> sessions ----------------------------------------------------------------------------------------

SESSION = """\
Intro.

```pycon
>>> x = 6
>>> def double(n):
...     return 2 * n
...
>>> for i in range(2):
...     print(i)
0
1
>>> double(x)
12

>>> print("a\\n\\nb")
a
<BLANKLINE>
b
>>> x = 7
```
"""


def test_session_is_cut_like_doctest() -> None:
    cells = parse(SESSION, "doc.md", "x").cells
    assert [(c.line, c.source) for c in cells] == [
        (4, "x = 6\n"),
        (5, "def double(n):\n    return 2 * n\n\n"),
        (8, "for i in range(2):\n    print(i)\n"),
        (12, "double(x)\n"),
        (15, 'print("a\\n\\nb")\n'),
        (19, "x = 7\n"),
    ]
    wants = [c.expect.repl for c in cells]
    assert [w.text if w else None for w in wants] == ["", "", "0\n1\n", "12\n", "a\n\nb\n", ""]
    assert [w.line if w else None for w in wants] == [5, 8, 10, 13, 16, 20]
    assert spanned(SESSION, wants[2]) == "0\n1\n"
    assert spanned(SESSION, wants[4]) == "a\n<BLANKLINE>\nb\n"
    assert spanned(SESSION, wants[0]) == ""
    assert all(c.expect.stdout is None and c.expect.error is None for c in cells)


def test_python_block_starting_with_a_prompt_is_a_session() -> None:
    text = "```python\n\n  >>> 1 + 1\n  2\n  >>>\n```\n"
    cells = read(text).cells
    assert [(c.line, c.source) for c in cells] == [(3, "1 + 1\n"), (5, "\n")]
    assert cells[0].expect.repl is not None and cells[0].expect.repl.text == "2\n"


def test_session_sources_keep_their_lines() -> None:
    """Every source line is the file line it came from, so tracebacks point into the document."""
    lines = SESSION.splitlines()
    for cell in parse(SESSION, "doc.md", "x").cells:
        for offset, code in enumerate(cell.source.splitlines()):
            assert lines[cell.line - 1 + offset][4:] == code


def test_traceback_is_an_expected_error() -> None:
    text = """\
        ```pycon
        >>> int("x")
        Traceback (most recent call last):
          File "<stdin>", line 1, in <module>
        ValueError: invalid literal for int() with base 10: 'x'
        >>> import json; json.loads("{")
        Traceback (most recent call last):
        ...
        json.decoder.JSONDecodeError: Expecting property name ...: line 1 column 2 (char 1)
        >>> raise KeyError
        Traceback (most recent call last):
        KeyError
        >>> {}["a"]
        Traceback (most recent call last):
        ...
        KeyError: 'a'
        <BLANKLINE>
        During handling of the above exception, another exception occurred:
        <BLANKLINE>
        Traceback (most recent call last):
        ...
        RuntimeError: two
        lines
        ```
        """
    cells = read(text).cells
    expects = [(c.expect.error, c.expect.error_message, c.expect.repl) for c in cells]
    assert expects == [
        ("ValueError", re.escape("invalid literal for int() with base 10: 'x'"), None),
        (
            "json.decoder.JSONDecodeError",
            "(?s)Expecting\\ property\\ name\\ .*:\\ line\\ 1\\ column\\ 2\\ \\(char\\ 1\\)",
            None,
        ),
        ("KeyError", None, None),
        ("RuntimeError", "two\\\nlines", None),
    ]
    assert re.search(
        cells[1].expect.error_message or "",
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    )


def test_session_mistakes() -> None:
    problem = error("```pycon\n>>> x = 1\n1\n\nstray output\n```\n")
    assert str(problem).startswith("doc.md:5: this line of a >>> session is neither a prompt nor output")
    assert "<BLANKLINE>" in (problem.hint or "")
    assert error("```pycon\n>>>x\n```\n").line == 2
    assert error("```pycon\n  >>> x\n 1\n```\n").line == 3
    problem = error("```pycon\n>>> 1/0\nTraceback (most recent call last):\n  ...\n```\n")
    assert str(problem).startswith("doc.md:3: this traceback does not end with the exception's line")


def test_output_block_after_a_session_is_not_attached() -> None:
    cells = read("```pycon\n>>> 1\n1\n```\n```output\n1\n```\n").cells
    assert len(cells) == 1 and cells[0].expect.stdout is None


# --- options ----------------------------------------------------------------------------------------------


def test_options_in_the_info_string() -> None:
    text = """\
        ```python skip name="load the data" timeout=2.5
        x = 1
        ```
        ```py raises
        1 / 0
        ```
        ```python raises=json.JSONDecodeError match=exact
        import json; print("x"); json.loads("")
        ```
        ```output
        x...
        ```
        """
    first, second, third = read(text).cells
    assert (first.skip, first.name, first.timeout, first.expect.error) == (True, "load the data", 2.5, None)
    assert (second.skip, second.name, second.expect.error) == (False, None, ANY_EXCEPTION)
    assert third.expect.error == "json.JSONDecodeError"
    assert third.expect.stdout is not None and third.expect.stdout.mode is MatchMode.EXACT


def test_options_in_html_comments() -> None:
    text = """\
        <!-- sandrun: skip -->
        ```python
        a = 1
        ```

        <!-- sandrun: name=setup timeout=5 -->
        <!-- a comment of someone else's -->

        <!--sandrun:raises=ZeroDivisionError-->
        ```python match=regex
        print(1); 1 / 0
        ```
        <!-- sandrun: match=whitespace -->
        ```output
        1
        ```
        <!-- sandrun: skip -->
        ```pycon
        >>> 1
        2
        ```
        """
    a, b, c = read(text).cells
    assert (a.skip, a.name) == (True, None)
    assert (b.name, b.timeout, b.expect.error, b.skip) == ("setup", 5.0, "ZeroDivisionError", False)
    assert b.expect.stdout is not None and b.expect.stdout.mode is MatchMode.WHITESPACE
    assert (c.skip, c.line) == (True, 19)


def test_session_options_apply_to_every_statement() -> None:
    cells = read("```pycon name=demo timeout=3 match=exact\n>>> 1\n1\n>>> 2\n2\n```\n").cells
    assert [c.name for c in cells] == ["demo", "demo (2)"]
    assert [c.timeout for c in cells] == [3.0, 3.0]
    assert all(c.expect.repl and c.expect.repl.mode is MatchMode.EXACT for c in cells)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("<!-- sandrun: nmae=x -->\n```python\n1\n```\n", 1, "option 'nmae' is unknown"),
        ("```python skip\n1\n```\n\n<!-- sandrun: timeout=0 -->\n```python\n2\n```\n", 5, "timeout must be"),
        ("```python timeout=soon\n1\n```\n", 1, "timeout must be more than 0"),
        ("```python timeout\n1\n```\n", 1, "option 'timeout' needs a value"),
        ("```python skip=yes\n1\n```\n", 1, "option 'skip' takes no value"),
        ("```python skip skip\n1\n```\n", 1, "option 'skip' is given twice"),
        ("<!-- sandrun: skip -->\n```python skip\n1\n```\n", 2, "option 'skip' is given twice"),
        ("```python match=fuzzy\n1\n```\n", 1, "unknown match mode 'fuzzy'"),
        ("```python raises=not-a-name\n1\n```\n", 1, "'not-a-name' is not an exception name"),
        ('```python name="unclosed\n1\n```\n', 1, "cannot read the options"),
        ("```pycon raises=ValueError\n>>> 1\n```\n", 1, "option 'raises' does not apply to a >>> session"),
        ("```python\n1\n```\n```output skip\n1\n```\n", 4, "option 'skip' does not apply to an output block"),
        ("```python\n1\n```\n<!-- sandrun: name=x -->\n```output\n```\n", 4, "does not apply to an output"),
        ("```python match=regex\nprint(1)\n```\n```output\n(1\n```\n", 5, "not a valid regular expression"),
        ("<!-- sandrun: skip -->\n\nProse.\n\n```python\n1\n```\n", 1, "is not followed by a Python code"),
        ("```python\n1\n```\n<!-- sandrun: skip -->\n", 4, "is not followed by a Python code block"),
        ("<!-- sandrun: skip -->\n```bash\nls\n```\n```python\n1\n```\n", 1, "not followed by a Python"),
        ("<!--\nsandrun: skip\n-->\n```python\n1\n```\n", 1, "must be alone on one line"),
    ],
)
def test_option_mistakes_point_at_their_line(text: str, line: int, message: str) -> None:
    problem = error(text)
    assert problem.line == line, str(problem)
    assert message in problem.message
    assert str(problem).startswith(f"doc.md:{line}: ")


def test_unknown_option_hint_lists_the_valid_ones() -> None:
    problem = error("<!-- sandrun: tiemout=3 -->\n```python\n1\n```\n")
    assert problem.hint == f"did you mean 'timeout'? valid options: {', '.join(OPTIONS[:5])}"


@pytest.mark.parametrize(
    "info",
    [
        'python title="main.py"',
        'python hl_lines="1 3" linenums="1"',
        "python {.no-copy}",
        'py title="a b',
        "py3 -",
    ],
)
def test_presentation_options_are_ignored(info: str) -> None:
    recipe = read(f"```{info}\nx = 1\n```\n")
    assert [(c.line, c.source, c.skip, c.name) for c in recipe.cells] == [(2, "x = 1\n", False, None)]
    assert recipe.warnings == ()


def test_a_misspelt_sandrun_option_in_an_info_string_is_a_warning_with_did_you_mean() -> None:
    recipe = read("x\n\n```python slip\n1\n```\n")
    warning = "doc.md:3: option 'slip' is not sandrun's and is ignored; did you mean 'skip'?"
    assert recipe.warnings == (warning,)
    assert not recipe.cells[0].skip


def test_a_malformed_sandrun_option_in_an_info_string_is_still_an_error() -> None:
    assert "timeout must be" in error("```python title=x timeout=soon\n1\n```\n").message
    assert "cannot read the options" in error('```python name="unclosed\n1\n```\n').message


# --- end to end ------------------------------------------------------------------------------------------


def run(path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    """`sandrun run path` with the process backend and a JSON transcript: exit code, transcript, stderr."""
    command = [sys.executable, "-m", "sandrun", "run", str(path), "--backend", "process", "--format", "json"]
    done = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, json.loads(done.stdout) if done.stdout else {}, done.stderr


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.md"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


PASSING = """\
    # A document that tells the truth

    ```python
    numbers = [3, 1, 2]
    print(sorted(numbers))
    ```

    ```output
    [1, 2, 3]
    ```

    ```pycon
    >>> total = sum(numbers)
    >>> total
    6
    >>> print("id:", id(total))
    id: ...
    >>> numbers.index(9)
    Traceback (most recent call last):
      ...
    ValueError: 9 is not in list
    ```

    ```python raises=ZeroDivisionError
    total / 0
    ```

    <!-- sandrun: skip -->
    ```python
    import this_module_does_not_exist
    ```
    """


def test_document_that_passes(tmp_path: Path) -> None:
    code, doc, stderr = run(write(tmp_path, PASSING))
    assert code == 0, stderr
    assert doc["status"] == "passed"
    assert doc["recipe"]["format"] == "markdown"
    assert doc["recipe"]["name"] == "A document that tells the truth"
    assert [c["status"] for c in doc["cells"]] == ["passed"] * 6 + ["skipped"]


def test_output_that_differs_fails_with_a_diff(tmp_path: Path) -> None:
    code, doc, stderr = run(write(tmp_path, PASSING.replace("[1, 2, 3]", "[1, 2, 4]")))
    assert code == 1, stderr
    cell = doc["cells"][0]
    assert cell["status"] == "failed"
    assert cell["reason"] == "stdout did not match (expected at line 9)"
    assert "-[1, 2, 4]\n+[1, 2, 3]" in cell["diff"]
    assert [c["status"] for c in doc["cells"][1:]] == ["not_run"] * 6  # after a failure nothing runs


def test_console_output_that_differs_fails(tmp_path: Path) -> None:
    code, doc, _ = run(write(tmp_path, PASSING.replace("    6\n", "    7\n")), "--keep-going")
    assert code == 1
    failed = [c for c in doc["cells"] if c["status"] == "failed"]
    assert [(c["line"], c["reason"]) for c in failed] == [(14, "repl did not match (expected at line 15)")]
    assert "-7\n+6" in failed[0]["diff"]


def test_statement_that_prints_unexpectedly_fails(tmp_path: Path) -> None:
    code, doc, _ = run(write(tmp_path, "```pycon\n>>> x = print('surprise')\n```\n"))
    assert code == 1 and doc["cells"][0]["status"] == "failed"
    assert "+surprise" in doc["cells"][0]["diff"]


def test_traceback_lines_point_into_the_document(tmp_path: Path) -> None:
    text = """\
        # Failing

        ```python
        def parse(value):
            return int(value)
        ```

        Then:

        ```python
        parse("7")
        parse("seven")
        ```

        ```pycon
        >>> parse(
        ...     "eight")
        8
        ```

        ```python
        checked = True
        raise RuntimeError("boom")
        ```
        """
    code, doc, _ = run(write(tmp_path, text), "--keep-going")
    assert code == 1
    failed = doc["cells"][1]
    assert failed["status"] == "failed" and failed["line"] == 11
    assert failed["error"]["type"] == "ValueError"
    assert failed["error"]["line"] == 5  # the innermost frame in the document: inside parse()
    assert 'doc.md", line 12, in <module>' in failed["error"]["traceback"]
    session = doc["cells"][2]
    assert session["error"]["line"] == 5
    assert 'doc.md", line 16, in <module>' in session["error"]["traceback"]
    direct = doc["cells"][3]
    assert (direct["line"], direct["error"]["line"], direct["error"]["type"]) == (22, 23, "RuntimeError")


def test_bundled_tutorial_passes() -> None:
    code, doc, stderr = run(RECIPES / "tutorial.md")
    assert code == 0, stderr
    statuses = [c["status"] for c in doc["cells"]]
    assert statuses.count("skipped") == 1 and set(statuses) == {"passed", "skipped"}
    assert any(c["expect"]["error"] for c in doc["cells"])
