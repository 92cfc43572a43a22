"""Cells sent ahead: the interpreter gets the next cells while one runs, and nothing about a run changes.

Each test runs real recipes in real sandboxes (the local backend, and the process backend where it says the
same). Cells leave marker files in the work directory, so that "not_run" is seen where it counts: inside the
sandbox, not only in the transcript. Each promise has its control: the same recipe under --keep-going, or
with the failing cell fixed, does run the later cells.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sandrun.backends import get_backend
from sandrun.backends.base import SandboxOptions
from sandrun.model import Cell, Condition, Expectation, ExpectedText, Recipe, Transcript
from sandrun.readers import load_recipe
from sandrun.runner import AHEAD, RunOptions, cell_request, run_recipe
from sandrun.session import AHEAD_BYTES, CellRequest, Session

BACKENDS = ["local", "process"]


def marker(name: str) -> str:
    """A cell that leaves a file named `name` in the work directory."""
    return f"open({name!r}, 'w').close()"


def run(tmp_path: Path, cells: list[str], backend: str = "local", **options: object) -> Transcript:
    """Run a YAML recipe of `cells` (each a flow scalar, or a mapping written out) with the work directory
    `tmp_path/work`."""
    recipe = tmp_path / "recipe.yaml"
    lines = ["cells:"]
    for cell in cells:
        lines.append(f"  - {cell}" if cell.startswith("{") else "  - " + repr_yaml(cell))
    recipe.write_text("\n".join(lines) + "\n")
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    run_options = RunOptions(workdir=work, **options)  # type: ignore[arg-type]
    return run_recipe(load_recipe(recipe), get_backend(backend), run_options)


def repr_yaml(code: str) -> str:
    """`code` as a double-quoted YAML scalar (JSON's escapes are YAML's)."""
    import json

    return json.dumps(code)


def statuses(transcript: Transcript) -> list[str]:
    return [result.status.value for result in transcript.results]


def made(tmp_path: Path) -> set[str]:
    return {p.name for p in (tmp_path / "work").iterdir() if p.name.startswith("m")}


@pytest.mark.parametrize("backend", BACKENDS)
def test_cells_after_a_failing_cell_are_not_run(tmp_path: Path, backend: str) -> None:
    cells = [marker("m1"), "1 / 0", marker("m3"), marker("m4"), marker("m5")]
    transcript = run(tmp_path, cells, backend)
    assert statuses(transcript) == ["passed", "failed", "not_run", "not_run", "not_run"]
    assert made(tmp_path) == {"m1"}  # the cells sent ahead were skipped inside the sandbox
    assert "later cells were not run" in (transcript.reason or "")


def test_control_under_keep_going_every_cell_runs(tmp_path: Path) -> None:
    cells = [marker("m1"), "1 / 0", marker("m3"), marker("m4"), marker("m5")]
    transcript = run(tmp_path, cells, keep_going=True)
    assert statuses(transcript) == ["passed", "failed", "passed", "passed", "passed"]
    assert made(tmp_path) == {"m1", "m3", "m4", "m5"}


def test_a_timed_out_cell_stops_the_run_and_its_queue(tmp_path: Path) -> None:
    cells = ["{code: 'import time; time.sleep(30)', timeout: 0.5}", marker("m2"), marker("m3")]
    transcript = run(tmp_path, cells)
    assert statuses(transcript) == ["timeout", "not_run", "not_run"]
    assert made(tmp_path) == set()


def test_a_killed_sandbox_discards_its_queue(tmp_path: Path) -> None:
    """A cell that swallows its timeout is killed after the grace; cells sent ahead die with the sandbox."""
    swallow = (
        "import time\nwhile True:\n    try:\n        time.sleep(30)\n    except BaseException:\n        pass"
    )
    cells = [f"{{code: {repr_yaml(swallow)}, timeout: 0.5}}", marker("m2"), marker("m3")]
    transcript = run(tmp_path, cells, grace=0.5)
    assert statuses(transcript) == ["timeout", "not_run", "not_run"]
    assert made(tmp_path) == set()
    assert "the sandbox stopped" in (transcript.reason or "")


def test_a_crash_discards_the_queue(tmp_path: Path) -> None:
    cells = [marker("m1"), "import os; os._exit(3)", marker("m3"), marker("m4")]
    transcript = run(tmp_path, cells)
    assert statuses(transcript) == ["passed", "error", "not_run", "not_run"]
    assert made(tmp_path) == {"m1"}


def test_no_cell_is_sent_ahead_of_one_whose_output_is_judged(tmp_path: Path) -> None:
    """A cell that runs fine can still fail on its expected output: only the host knows, so the cells after
    it wait for the verdict, and are not run when it fails."""
    cells = ["{code: 'print(1)', expect: {stdout: '2'}}", marker("m2"), marker("m3")]
    transcript = run(tmp_path, cells)
    assert statuses(transcript) == ["failed", "not_run", "not_run"]
    assert made(tmp_path) == set()
    fixed = ["{code: 'print(1)', expect: {stdout: '1'}}", marker("m2"), marker("m3")]  # control
    assert statuses(run(tmp_path, fixed)) == ["passed", "passed", "passed"]
    assert made(tmp_path) == {"m2", "m3"}


def test_no_cell_is_sent_ahead_of_one_whose_prints_are_judged(tmp_path: Path) -> None:
    """`#>` comments are judged on the host too: a cell that runs fine but prints otherwise fails, and the
    cells after it are not run."""
    cells = ["print(1)\n#> 2", marker("m2"), marker("m3")]
    transcript = run(tmp_path, cells)
    assert statuses(transcript) == ["failed", "not_run", "not_run"]
    assert made(tmp_path) == set()
    fixed = ["print(1)\n#> 1", marker("m2"), marker("m3")]  # control
    assert statuses(run(tmp_path, fixed)) == ["passed", "passed", "passed"]
    assert made(tmp_path) == {"m2", "m3"}


def test_a_cell_expected_to_raise_lets_the_next_ones_run(tmp_path: Path) -> None:
    cells = [marker("m1"), "{code: '1 / 0', expect: {error: ZeroDivisionError}}", marker("m3"), marker("m4")]
    transcript = run(tmp_path, cells)
    assert statuses(transcript) == ["passed", "passed", "passed", "passed"]
    assert made(tmp_path) == {"m1", "m3", "m4"}


def test_the_deadline_of_a_cell_starts_when_it_starts_not_when_it_was_sent(tmp_path: Path) -> None:
    """The second cell is sent while the first sleeps 3 s; its own 2.5 s (and 0.5 s of grace) count from
    its start. Counted from the sending it would be killed the moment it begins."""
    cells = [
        "{code: 'import time; time.sleep(3)', timeout: 10}",
        "{code: 'import time; time.sleep(1)', timeout: 2.5}",
    ]
    transcript = run(tmp_path, cells, grace=0.5)
    assert statuses(transcript) == ["passed", "passed"]
    assert 0.9 < transcript.results[1].duration < 2.5


def test_output_stays_with_the_cell_that_wrote_it(tmp_path: Path) -> None:
    """Every kind of output, written up to the last moment of a cell, belongs to that cell and not to the
    cell sent ahead of it, which the interpreter starts right away."""
    cells = []
    for i in range(30):
        kind = i % 3
        if kind == 0:
            cells.append(f"print('cell {i}', end='')")
        elif kind == 1:
            cells.append(f"import os; os.write(1, b'cell {i}')")
        else:
            cells.append(
                f"import sys; sys.stdout.write('cell '); sys.stdout.flush(); import os; os.write(1, b'{i}')"
            )
    transcript = run(tmp_path, cells)
    assert [result.stdout for result in transcript.results] == [f"cell {i}" for i in range(30)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cell_sent_after_one_that_failed_is_answered_skipped(backend: str) -> None:
    """The protocol underneath: `after` names the cell sent before; if that one did not end ok, the cell
    does not run. Without `after` it runs whatever came before."""
    session = Session.start(get_backend(backend), SandboxOptions())
    try:
        first = session.submit(CellRequest("x = 1 / 0", "recipe.py", 1, 10))
        gated = session.submit_ahead(CellRequest("y = 2", "recipe.py", 2, 10), 3.0, after=first.id)
        chained = session.submit_ahead(
            CellRequest("z = 3", "recipe.py", 3, 10), 3.0, after=gated.id if gated else None
        )
        assert gated is not None and chained is not None
        assert session.collect(first).status == "error"
        assert session.collect(gated).status == "skipped"
        assert session.collect(chained).status == "skipped"
        assert (
            session.run(CellRequest("'y' in dir(), 'z' in dir()", "recipe.py", 4, 10)).value
            == "(False, False)"
        )
        ok = session.submit(CellRequest("y = 2", "recipe.py", 5, 10))
        gated = session.submit_ahead(CellRequest("z = 3", "recipe.py", 6, 10), 3.0, after=ok.id)
        ungated = session.submit_ahead(CellRequest("w = 1 / 0", "recipe.py", 7, 10), 3.0, after=None)
        assert gated is not None and ungated is not None
        assert [session.collect(s).status for s in (ok, gated, ungated)] == ["ok", "ok", "error"]
        assert session.run(CellRequest("z", "recipe.py", 8, 10)).value == "3"
    finally:
        session.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cell_skipped_by_its_condition_lets_the_cells_sent_after_it_run(backend: str) -> None:
    """A `skip_if` that is true is no failure: the cell gated `after` it runs. The keywords of `run` go
    with a cell sent ahead (its condition, its prints by statement, console mode)."""
    session = Session.start(get_backend(backend), SandboxOptions())
    try:
        first = session.submit(CellRequest("x = 1", "recipe.py", 1, 10))
        skipped = session.submit_ahead(
            CellRequest("x = 2", "recipe.py", 3, 10, skip_if=Condition("x == 1", 2)), 3.0, after=first.id
        )
        assert skipped is not None
        gated = session.submit_ahead(
            CellRequest("print(x)\nx", "recipe.py", 4, 10, by_statement=True), 3.0, after=skipped.id
        )
        assert gated is not None
        console = session.submit_ahead(
            CellRequest("for i in range(2): i", "recipe.py", 6, 10, interactive=True), 3.0, after=gated.id
        )
        assert console is not None
        assert [session.collect(s).status for s in (first, skipped)] == ["ok", "skipped"]
        outcome = session.collect(gated)
        assert outcome.status == "ok" and outcome.value == "1"
        assert outcome.printed is not None and [(p.line, p.stdout) for p in outcome.printed] == [
            (4, "1\n"),
            (5, ""),
        ]
        outcome = session.collect(console)
        assert outcome.status == "ok"
        assert "".join(c.text for c in outcome.outputs if c.stream == "stdout") == "0\n1\n"
    finally:
        session.close()


def test_big_cells_are_not_sent_ahead(tmp_path: Path) -> None:
    """Requests sent ahead stay within a pipe's smallest size, so writing them never waits for the cell."""
    session = Session.start(get_backend("local"), SandboxOptions())
    try:
        first = session.submit(CellRequest("import time; time.sleep(0.2)", "recipe.py", 1, 10))
        big = "x = " + repr("a" * AHEAD_BYTES)
        assert session.submit_ahead(CellRequest(big, "recipe.py", 2, 10), 3.0, after=first.id) is None
        small = session.submit_ahead(CellRequest("y = 1", "recipe.py", 3, 10), 3.0, after=first.id)
        assert small is not None
        assert session.collect(first).status == "ok" and session.collect(small).status == "ok"
        assert session.run(CellRequest(big, "recipe.py", 4, 10)).status == "ok"  # sent when its turn comes
    finally:
        session.close()


def test_the_run_keeps_cells_in_flight(tmp_path: Path) -> None:
    """While a slow cell runs, the next AHEAD cells are already in the sandbox: they finish right after it."""
    cells = ["import time; time.sleep(1)"] + [marker(f"m{i}") for i in range(AHEAD + 2)]
    started = time.monotonic()
    transcript = run(tmp_path, cells)
    assert set(statuses(transcript)) == {"passed"}
    assert time.monotonic() - started < 30
    assert made(tmp_path) == {f"m{i}" for i in range(AHEAD + 2)}


def test_a_cells_request_carries_what_its_expectations_need() -> None:
    """The one place that turns a cell into what the interpreter is sent (the run and the pytest plugin both
    use it): its code where the file has it, the most specific timeout, and the flags its checks need."""
    condition = Condition("sys.platform == 'win32'", 4)
    console = Expectation(repl=ExpectedText(">>> 1\n1"))
    cells = (
        Cell(0, "x = 1", "r.md", 3),
        Cell(1, "print(1)\n#> 1", "r.md", 7, timeout=2, skip_if=condition),
        Cell(2, "1", "r.md", 12, expect=console),
    )
    recipe = Recipe("r.md", "", "markdown", cells, timeout=30)
    options = RunOptions(cell_timeout=90)
    assert [cell_request(cell, recipe, options) for cell in cells] == [
        CellRequest("x = 1", "r.md", 3, 30),
        CellRequest("print(1)\n#> 1", "r.md", 7, 2, by_statement=True, skip_if=condition),
        CellRequest("1", "r.md", 12, 30, interactive=True),
    ]
    assert cell_request(cells[0], Recipe("r.md", "", "markdown", cells), options).timeout == 90
