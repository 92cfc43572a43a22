"""The driver and the session, end to end in a real interpreter: capture, values, errors, survival, limits."""

from __future__ import annotations

import ast
import time

import pytest

from sandrun.bootstrap import driver_source
from sandrun.session import CellRequest, Session
from tests.conftest import RunCell


def chunks(outcome) -> list[tuple[str, str]]:
    """Output as (stream, text) pairs, with consecutive chunks of one stream merged."""
    merged: list[tuple[str, str]] = []
    for chunk in outcome.outputs:
        if merged and merged[-1][0] == chunk.stream:
            merged[-1] = (chunk.stream, merged[-1][1] + chunk.text)
        else:
            merged.append((chunk.stream, chunk.text))
    return merged


def stdout(outcome) -> str:
    return "".join(c.text for c in outcome.outputs if c.stream == "stdout")


def test_driver_source_is_valid_python_3_9() -> None:
    ast.parse(driver_source(), feature_version=(3, 9))


def test_driver_imports_only_the_standard_library() -> None:
    tree = ast.parse(driver_source())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert "sandrun" not in imported
    assert imported <= {
        "__future__", "_ast", "_json", "_signal", "_thread", "_warnings", "base64", "builtins", "codecs",
        "io", "json", "os", "resource", "select", "sys", "time", "traceback", "types", "warnings",
        "collections", "signal", "typing",  # only under `if TYPE_CHECKING:`, for the type checker
    }  # fmt: skip


def test_python_level_stdout_and_stderr_keep_their_order(run_cell: RunCell) -> None:
    outcome = run_cell(
        """
        import sys
        print("one")
        sys.stderr.write("two\\n")
        print("three")
        sys.stderr.write("four\\n")
        """
    )
    assert outcome.status == "ok"
    assert chunks(outcome) == [
        ("stdout", "one\n"),
        ("stderr", "two\n"),
        ("stdout", "three\n"),
        ("stderr", "four\n"),
    ]


def test_fd_level_output_is_captured_in_order(run_cell: RunCell) -> None:
    outcome = run_cell(
        """
        import os, subprocess, sys
        print("python")
        os.write(1, b"fd one\\n")
        os.system("echo from a shell")
        subprocess.run([sys.executable, "-c", "print('from a child')"], check=True)
        os.write(2, b"fd two\\n")
        print("last")
        """
    )
    assert outcome.status == "ok", outcome.error
    assert chunks(outcome) == [
        ("stdout", "python\nfd one\nfrom a shell\nfrom a child\n"),
        ("stderr", "fd two\n"),
        ("stdout", "last\n"),
    ]


def test_sys_stdout_buffer_and_fileno_work(run_cell: RunCell) -> None:
    outcome = run_cell(
        """
        import os, sys
        sys.stdout.buffer.write(b"bytes\\n")
        os.write(sys.stdout.fileno(), b"via fileno\\n")
        """
    )
    assert stdout(outcome) == "bytes\nvia fileno\n"


def test_trailing_expression_value_is_recorded_not_printed(run_cell: RunCell) -> None:
    outcome = run_cell("x = 6\nx * 7")
    assert outcome.value == "42"
    assert stdout(outcome) == ""
    assert run_cell("_ + 1").value == "43"  # like a REPL, `_` holds the last value
    assert run_cell("None").value is None
    assert run_cell("y = 1").value is None


def test_cells_do_not_inherit_the_drivers_future_imports(run_cell: RunCell) -> None:
    # The driver's own `from __future__ import annotations` must not turn a cell's annotations into strings
    # (pydantic, attrs and dataclass examples read them); a cell's own future import still counts.
    assert run_cell("def f(x: int): pass\nf.__annotations__").value == "{'x': <class 'int'>}"
    assert run_cell("from __future__ import annotations\ndef g(x: int): pass\ng.__annotations__").value == (
        "{'x': 'int'}"
    )


def test_state_survives_between_cells(run_cell: RunCell) -> None:
    run_cell("import math\nradius = 2")
    assert run_cell("round(math.pi * radius**2, 2)").value == "12.57"


def test_traceback_names_the_recipe_file_and_real_lines(run_cell: RunCell) -> None:
    outcome = run_cell(
        """
        def divide(a, b):
            return a / b

        divide(1, 0)
        """,
        line=20,
    )
    assert outcome.status == "error"
    assert outcome.error is not None
    assert outcome.error.type == "ZeroDivisionError"
    assert outcome.error.line == 22  # the innermost frame in the recipe: `return a / b`
    tb = outcome.error.traceback
    assert 'File "recipe.py", line 24, in <module>' in tb
    assert 'File "recipe.py", line 22, in divide' in tb
    assert "return a / b" in tb  # source lines shown although the file is not in the sandbox
    assert "sandrun" not in tb


def test_traceback_lines_are_cut_where_python_cuts_them(run_cell: RunCell) -> None:
    outcome = run_cell('s = "a\u2028b\x0cc"\nraise ValueError(s)', line=3)
    assert outcome.error is not None and outcome.error.line == 4
    assert "raise ValueError(s)" in outcome.error.traceback  # not the tail of the line before


def test_syntax_error_points_at_its_line(run_cell: RunCell) -> None:
    outcome = run_cell("x = 1\nif x\n    pass", line=5)
    assert outcome.error is not None
    assert outcome.error.type == "SyntaxError"
    assert outcome.error.line == 6


def test_line_numbers_hold_far_down_a_long_recipe(run_cell: RunCell) -> None:
    """Cells are parsed on their own and renumbered: errors still name the recipe's line."""
    outcome = run_cell("x = 1\ny = x / 0", line=4000)
    assert outcome.error is not None and outcome.error.line == 4001
    assert 'File "recipe.py", line 4001' in outcome.error.traceback
    outcome = run_cell("x = 1\n  y = 2", line=3000)
    assert outcome.error is not None and outcome.error.type == "IndentationError"
    assert outcome.error.line == 3001
    assert 'File "recipe.py", line 3001' in outcome.error.traceback


def test_compiler_errors_and_warnings_name_the_recipe_line(run_cell: RunCell) -> None:
    """Cells are compiled as if they began at line 1 and renumbered after: what the compiler itself says
    (an error found past parsing, a warning of the parser or of the compiler) names the recipe's line."""
    outcome = run_cell("x = 1\nreturn x", line=40)
    assert outcome.error is not None and outcome.error.type == "SyntaxError"
    assert outcome.error.line == 41
    run_cell("import warnings\nwarnings.simplefilter('always')")
    outcome = run_cell("x = 1\nassert (x, 'never false')\ny = '\\\\d'\nz = '\\d'", line=70)
    assert outcome.status == "ok"
    stderr = "".join(c.text for c in outcome.outputs if c.stream == "stderr")
    assert "recipe.py:71: SyntaxWarning: assertion is always true" in stderr
    assert "recipe.py:73:" in stderr and "invalid escape sequence" in stderr
    outcome = run_cell("import warnings\n[f for f in warnings.filters if f[0] == 'error']", line=80)
    assert outcome.value == "[]"  # the cells never see the filter of the first try


def test_syntax_errors_name_the_recipe_line_in_their_message_too(run_cell: RunCell) -> None:
    """Python names the line of an unclosed bracket or of the statement a block belongs to in the message
    itself: that line is the recipe's too."""
    outcome = run_cell("x = (1,\n  2]", line=15)
    assert outcome.error is not None and outcome.error.line == 16
    assert "opening parenthesis '(' on line 15" in outcome.error.message
    outcome = run_cell("x = 1\nif x:\npass", line=30)
    assert outcome.error is not None and outcome.error.type == "IndentationError"
    assert "after 'if' statement on line 31" in outcome.error.message


def test_compile_warnings_name_the_recipe_line_before_warnings_is_imported(run_cell: RunCell) -> None:
    """Until a cell imports `warnings`, cells are compiled without it (this compile's warnings made errors);
    a cell that warns is compiled again with it: it runs once, and its warnings name the recipe's line."""
    outcome = run_cell("import sys\nprint('warnings' in sys.modules)", line=10)
    assert stdout(outcome) == "False\n"
    outcome = run_cell("x = 1\nassert (x, 'never false')\nprint('ran')", line=70)
    assert outcome.status == "ok", outcome.error
    assert stdout(outcome) == "ran\n"
    stderr = "".join(c.text for c in outcome.outputs if c.stream == "stderr")
    assert "recipe.py:71: SyntaxWarning: assertion is always true" in stderr
    outcome = run_cell("import warnings\n[f for f in warnings.filters if f[0] == 'error']", line=80)
    assert outcome.value == "[]"  # the cells never see the filter of the first try


def test_functions_defined_far_down_know_their_lines(run_cell: RunCell) -> None:
    outcome = run_cell(
        """\
        import inspect
        class C:
            def m(self):
                return [1 / x for x in (0,)]
        (C.m.__code__.co_firstlineno, inspect.getsourcelines(C.m)[1])""",
        line=500,
    )
    assert outcome.value == "(502, 502)"
    outcome = run_cell("C().m()", line=600)
    assert outcome.error is not None and outcome.error.line == 503  # the innermost line of the recipe
    assert 'File "recipe.py", line 600, in <module>' in outcome.error.traceback
    assert "return [1 / x for x in (0,)]" in outcome.error.traceback


def test_a_cells_last_output_and_its_end_come_in_one_write(session: Session) -> None:
    """One write, so one wake-up of the host, for a cell that prints and ends."""
    reads: list[bytes] = []
    receive = session.channel.receive

    def recording(timeout: float | None) -> bytes | None:
        chunk = receive(timeout)
        if chunk:
            reads.append(chunk)
        return chunk

    session.channel.receive = recording  # type: ignore[method-assign]
    for _ in range(5):
        reads.clear()
        outcome = session.run(CellRequest("print('hello')", "recipe.py", 1, 10))
        assert outcome.status == "ok"
        assert len(reads) == 1 and b'"stream"' in reads[0] and b'"done"' in reads[0]


def test_syntax_error_traceback_shows_only_the_users_file(run_cell: RunCell) -> None:
    outcome = run_cell("x = 1\nif x\n    pass", line=5)
    assert outcome.error is not None
    tb = outcome.error.traceback
    assert 'File "recipe.py", line 6' in tb
    assert "    if x" in tb
    assert "ast.py" not in tb and "compile(" not in tb  # no frame of the standard library's parser
    assert not tb.startswith("Traceback")  # nothing ran: there is no stack to show


def test_exception_types_include_bases_and_modules(run_cell: RunCell) -> None:
    outcome = run_cell("import json\njson.loads('{')")
    assert outcome.error is not None
    assert outcome.error.type == "json.decoder.JSONDecodeError"
    assert "ValueError" in outcome.error_types


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        ("import sys\nsys.exit(3)", "SystemExit"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
        ("input('name? ')", "EOFError"),
        ("import os\nos.close(1)\nos.write(1, b'x')", "OSError"),
    ],
)
def test_hostile_cells_are_errors_of_that_cell_only(run_cell: RunCell, code: str, error_type: str) -> None:
    run_cell("kept = 'still here'")
    outcome = run_cell(code)
    assert outcome.status == "error"
    assert outcome.error is not None and outcome.error.type == error_type
    after = run_cell("print(kept)")
    assert after.status == "ok"
    assert stdout(after) == "still here\n"


def test_closing_stdout_does_not_break_later_cells(run_cell: RunCell) -> None:
    assert run_cell("import os\nos.close(1)\nos.close(2)").status == "ok"
    assert stdout(run_cell("import os\nos.write(1, b'fd restored\\n')")) == "fd restored\n"


@pytest.mark.parametrize(
    "code",
    ["import os\nos._exit(0)", "import ctypes\nctypes.string_at(0)"],
    ids=["os._exit", "segfault"],
)
def test_interpreter_death_is_reported_and_the_session_ends(session: Session, code: str) -> None:
    outcome = session.run(CellRequest(code, "recipe.py", 1, 10))
    assert outcome.status == "crashed"
    assert outcome.error is not None and outcome.error.type == "SandboxDied"
    assert session.dead_reason
    if "ctypes" in code:
        assert "SIGSEGV" in session.dead_reason


def test_timeout_interrupts_the_cell_and_state_survives(run_cell: RunCell) -> None:
    run_cell("kept = 1")
    started = time.monotonic()
    outcome = run_cell("import time\nwhile True:\n    time.sleep(0.01)", timeout=0.3)
    assert time.monotonic() - started < 3
    assert outcome.status == "timeout"
    assert outcome.error is not None and outcome.error.line == 3
    assert "0.3 s timeout" in outcome.error.message
    assert run_cell("kept + 1").value == "2"


def test_a_cell_that_swallows_the_timeout_is_killed_after_the_grace(session: Session) -> None:
    code = (
        "import time\nwhile True:\n    try:\n        time.sleep(10)\n    except BaseException:\n        pass"
    )

    started = time.monotonic()
    outcome = session.run(CellRequest(code, "recipe.py", 1, 0.2), grace=0.5)
    assert time.monotonic() - started < 5
    assert outcome.status == "timeout"
    assert session.dead_reason and "ignored" in session.dead_reason


def test_huge_output_is_capped_with_a_marker(run_cell: RunCell) -> None:
    outcome = run_cell(
        """
        import os
        chunk = "x" * 1_000_000
        for _ in range(200):        # 200 MB from Python
            print(chunk)
        block = b"y" * 1_000_000
        for _ in range(200):        # and 200 MB straight to the file descriptor
            os.write(1, block)
        print("done")
        """,
        timeout=60,
    )
    assert outcome.status == "ok"
    text = stdout(outcome)
    assert len(text) < 1.1 * (1 << 20)
    assert "more bytes of stdout not shown" in text


def test_invalid_utf8_output_is_replaced_not_fatal(run_cell: RunCell) -> None:
    outcome = run_cell(
        """
        import os
        os.write(1, b'bad \\xff\\xfe bytes\\n')
        print('lone \\udcff surrogate')
        """
    )
    assert outcome.status == "ok"
    assert stdout(outcome) == "bad \ufffd\ufffd bytes\nlone ? surrogate\n"


def test_background_output_after_a_cell_cannot_corrupt_the_channel(run_cell: RunCell) -> None:
    started = run_cell(
        """
        import os, subprocess, sys, threading, time
        def chatter():
            for i in range(50):
                print("thread", i)
                time.sleep(0.002)
        threading.Thread(target=chatter, daemon=True).start()
        child = subprocess.Popen([sys.executable, "-c",
            "import time\\nfor i in range(50):\\n print('child', i, flush=True)\\n time.sleep(0.002)"])
        """
    )
    assert started.status == "ok"
    seen = ""
    deadline = time.monotonic() + 20
    while not ("thread 49" in seen and "child 49" in seen) and time.monotonic() < deadline:
        outcome = run_cell("import time\ntime.sleep(0.02)\n'alive'")
        assert outcome.status == "ok" and outcome.value == "'alive'"
        seen += stdout(outcome)
    assert "thread 49" in seen and "child 49" in seen, seen[-2000:]  # late output goes to the next cells


def test_a_forked_child_that_falls_through_does_not_answer(run_cell: RunCell) -> None:
    outcome = run_cell("import os\npid = os.fork()")
    assert outcome.status == "ok"
    for _ in range(3):
        assert run_cell("'parent' if pid else 'child'").value == "'parent'"


def test_cell_code_is_picklable_and_works_with_multiprocessing(run_cell: RunCell) -> None:
    run_cell("import multiprocessing, pickle\ndef double(x):\n    return 2 * x")
    assert run_cell("pickle.loads(pickle.dumps(double))(21)").value == "42"
    outcome = run_cell(
        "with multiprocessing.get_context('fork').Pool(2) as pool:\n    print(pool.map(double, [1, 2]))"
    )
    assert outcome.status == "ok", outcome.error
    assert stdout(outcome) == "[2, 4]\n"


def test_a_huge_value_is_clipped_and_the_interpreter_lives_on(run_cell: RunCell) -> None:
    outcome = run_cell("list(range(3_000_000))")
    assert outcome.status == "ok"
    assert outcome.value is not None and "more characters not shown" in outcome.value
    assert len(outcome.value) < 1.1 * (1 << 20)
    assert run_cell("1 + 1").value == "2"


def test_timeouts_still_work_after_a_cell_took_over_sigalrm(run_cell: RunCell) -> None:
    assert run_cell("import signal\nsignal.signal(signal.SIGALRM, lambda *args: None)").status == "ok"
    outcome = run_cell("import time\nwhile True:\n    time.sleep(0.01)", timeout=0.3)
    assert outcome.status == "timeout"
    assert run_cell("'alive'").value == "'alive'"


def test_a_timeout_while_printing_never_cuts_a_protocol_line(run_cell: RunCell) -> None:
    for _ in range(5):  # the timer fires at a random point of a print loop: mid-line it would break JSON
        outcome = run_cell("while True:\n    print('x' * 5000)", timeout=0.2)
        assert outcome.status == "timeout", outcome.error
        assert run_cell("'alive'").value == "'alive'"


@pytest.mark.parametrize(
    "code",
    [
        "import sys\nsys.exit(0)",
        "import sys\nsys.exit()",
        "raise SystemExit(None)",
        "raise SystemExit(False)",
    ],
)
def test_a_clean_exit_ends_the_cell_and_the_interpreter_lives_on(run_cell: RunCell, code: str) -> None:
    outcome = run_cell(f"kept = 'still here'\nprint('before')\n{code}\nprint('never')")
    assert (outcome.status, outcome.error) == ("ok", None)
    assert "".join(c.text for c in outcome.outputs) == "before\n"
    after = run_cell("print(kept)")
    assert after.status == "ok" and after.outputs[0].text == "still here\n"


def test_a_nonzero_exit_is_an_error_with_a_short_traceback(run_cell: RunCell) -> None:
    code = (
        "import sys\n"
        "def main():\n"
        "    try:\n"
        "        raise LookupError('inside the framework')\n"
        "    except LookupError:\n"
        "        sys.exit(2)\n"
        "main()"
    )
    outcome = run_cell(code)
    assert outcome.status == "error"
    assert outcome.error is not None and outcome.error.type == "SystemExit" and outcome.error.message == "2"
    assert "LookupError" not in outcome.error.traceback
    assert "During handling" not in outcome.error.traceback
    assert outcome.error.traceback.startswith("Traceback (most recent call last):")
