"""The bootstrap: compiled driver when the bytecode formats agree, source otherwise; and a driver start that
imports no more than it needs before the first cell."""

from __future__ import annotations

import json
import marshal
import struct
import subprocess
import sys
from importlib.util import MAGIC_NUMBER, cache_from_source
from pathlib import Path
from types import CodeType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandrun import driver
from sandrun.backends import get_backend
from sandrun.backends.base import SandboxOptions
from sandrun.backends.process import ProcessChannel
from sandrun.bootstrap import BOOT, DRIVER_FILENAME, boot_argv, driver_code, driver_payload, driver_source
from sandrun.session import CellRequest, Session


def boot(payload: bytes, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run the bootstrap on `payload`, as a sandbox does, without a sandbox."""
    return subprocess.run(boot_argv(sys.executable), input=payload, capture_output=True, timeout=timeout)


def parts(magic: bytes, code: bytes, source: bytes) -> bytes:
    return b"%s%010d%s%010d%s" % (magic, len(code), code, len(source), source)


def requests(*cells: str) -> bytes:
    """`run` requests for `cells`, as the host sends them."""
    lines = [
        {
            "op": "run",
            "id": n,
            "code": code,
            "filename": "r.py",
            "line": 1,
            "timeout": None,
            "output_limit": 1000,
        }
        for n, code in enumerate(cells, 1)
    ]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def events(out: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_the_bootstrap_is_a_few_hundred_bytes() -> None:
    assert len(BOOT) < 512


def test_the_compiled_part_runs_when_the_magic_number_is_the_interpreters() -> None:
    code = marshal.dumps(compile("print('compiled')", "<x>", "exec"))
    result = boot(parts(MAGIC_NUMBER, code, b"print('source')"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"compiled\n"


def test_the_source_runs_when_the_magic_number_is_another_interpreters() -> None:
    code = marshal.dumps(compile("print('compiled')", "<x>", "exec"))
    other = bytes([MAGIC_NUMBER[0] ^ 1]) + MAGIC_NUMBER[1:]
    result = boot(parts(other, code, b"print('source')"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"source\n"


def test_a_short_input_ends_the_bootstrap_with_a_message() -> None:
    result = boot(driver_payload()[:1000])
    assert result.returncode == 1
    assert b"bootstrap input ended early" in result.stderr


def test_the_payload_carries_the_driver_compiled_with_the_host_magic_and_as_source() -> None:
    payload = driver_payload()
    assert payload[:4] == MAGIC_NUMBER
    size = int(payload[4:14])
    code = marshal.loads(payload[14 : 14 + size])
    assert code.co_filename == "<sandrun-driver>"
    assert payload[14 + size + 10 :] == driver_source()
    assert int(payload[14 + size : 14 + size + 10]) == len(driver_source())


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "source"])
def test_the_driver_serves_cells_either_way(compiled: bool) -> None:
    payload = driver_payload() if compiled else b"\0\0\0\0" + driver_payload()[4:]
    result = boot(payload + requests("x = 6 * 7", "x", "1/0"))
    assert result.returncode == 0, result.stderr
    ready, *rest = events(result.stdout)
    assert ready["ev"] == "ready"
    done = [event for event in rest if event["ev"] == "done"]
    assert [event["status"] for event in done] == ["ok", "ok", "error"]
    assert done[1]["value"] == "42"
    assert "ZeroDivisionError" in str(done[2]["error"])  # the traceback machinery, imported on demand


# Modules whose import costs more than the rest of the driver's start (they bring `re`, `enum`, `tokenize`,
# `collections`...): the driver must not import them before a cell asks for them.
HEAVY = {"ast", "json", "re", "enum", "traceback", "linecache", "threading", "signal", "tokenize", "inspect"}


@pytest.mark.parametrize("backend", ["local", "process"])
def test_the_driver_imports_no_more_than_it_needs_before_the_first_cell(backend: str) -> None:
    bare = subprocess.run(
        [sys.executable, "-I", "-c", "import sys; print(*sys.modules)"], capture_output=True, text=True
    ).stdout.split()
    session = Session.start(get_backend(backend), SandboxOptions())
    try:
        outcome = session.run(CellRequest("import sys\nprint(*sys.modules)", "r.py", 1, 10))
    finally:
        session.close()
    assert outcome.status == "ok", outcome.error
    loaded = set("".join(chunk.text for chunk in outcome.outputs).split())
    assert not loaded & HEAVY
    assert loaded - set(bare) <= {"__future__", "_ast", "_json", "select", "types", "resource"}


def test_a_cell_that_imports_linecache_finds_earlier_cells_lines(session: Session) -> None:
    session.run(CellRequest("def f():\n    return 1\n", "recipe.py", 3, 10))
    code = "import inspect, linecache\nprint(repr(linecache.getline('recipe.py', 4)))\n"
    code += "print(inspect.getsource(f))"
    outcome = session.run(CellRequest(code, "recipe.py", 10, 10))
    assert outcome.status == "ok", outcome.error
    text = "".join(chunk.text for chunk in outcome.outputs)
    assert text == "'    return 1\\n'\ndef f():\n    return 1\n\n"


def test_an_error_shows_the_recipe_line_in_its_traceback(session: Session) -> None:
    outcome = session.run(CellRequest("x = 1\nraise ValueError('boom')\n", "recipe.py", 7, 10))
    assert outcome.status == "error"
    assert outcome.error is not None
    assert "line 8" in outcome.error.traceback
    assert "raise ValueError('boom')" in outcome.error.traceback


def test_cells_do_not_inherit_the_drivers_future_imports(session: Session) -> None:
    # The driver is written with `from __future__ import annotations`; a cell is not.
    outcome = session.run(
        CellRequest("def f(x: int): pass\nf.__annotations__['x'] is int", "recipe.py", 1, 10)
    )
    assert outcome.status == "ok", outcome.error
    assert outcome.value == "True"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_the_drivers_json_is_the_json_modules(value: object) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert driver.to_json(value) == text
    assert driver.from_json(text) == value
    assert driver.from_json(json.dumps(value)) == value


def test_the_drivers_json_refuses_what_the_json_module_refuses() -> None:
    loop: list[object] = []
    loop.append(loop)
    for bad in (object(), loop, {1j: 2}):
        with pytest.raises((TypeError, ValueError)) as expected:
            json.dumps(bad, ensure_ascii=False)
        with pytest.raises(expected.type):
            driver.to_json(bad)
    with pytest.raises(ValueError):
        driver.from_json('{"a": 1} x')


def test_the_driver_is_handed_over_before_the_interpreter_reads(tmp_path: Path) -> None:
    # A child that never reads: the whole start-up input must fit in the pipe, so that the host goes on
    # while a sandbox starts. (The default pipe holds 64 KiB, less than the input.)
    assert len(driver_payload()) > 1 << 16
    channel = ProcessChannel.spawn(["sleep", "30"], {"PATH": "/usr/bin:/bin"}, tmp_path, "no-marker")
    try:
        assert channel.send(driver_payload(), timeout=0.5)
    finally:
        channel.close()


def test_the_driver_ends_at_once_when_its_input_ends() -> None:
    # A cell left work for the interpreter's shutdown (an atexit handler, a thread that is not a daemon):
    # the host has closed the channel, nobody waits for that work, and the driver does not do it.
    cell = "import atexit, threading, time\natexit.register(time.sleep, 60)\n"
    cell += "threading.Thread(target=time.sleep, args=(60,)).start()"
    result = boot(driver_payload() + requests(cell), timeout=20)  # TimeoutExpired if it waited
    assert result.returncode == 0, result.stderr
    assert [event["status"] for event in events(result.stdout) if event["ev"] == "done"] == ["ok"]


def write_cache(path: Path, source: bytes, mtime: int) -> None:
    """A bytecode cache file for `path`, as an import writes it, holding `source` compiled."""
    cached = Path(cache_from_source(str(path), optimization=""))
    cached.parent.mkdir(parents=True, exist_ok=True)
    header = MAGIC_NUMBER + struct.pack("<III", 0, mtime & 0xFFFFFFFF, path.stat().st_size)
    cached.write_bytes(header + marshal.dumps(compile(source, str(path), "exec")))


def value_of_x(code: CodeType) -> object:
    namespace: dict[str, object] = {}
    exec(code, namespace)
    return namespace["x"]


def test_the_driver_code_comes_from_a_matching_bytecode_cache(tmp_path: Path) -> None:
    path = tmp_path / "driver.py"
    path.write_bytes(b"def f():\n    return 1\nx = f()\n")
    write_cache(path, b"def f():\n    return 2\nx = f()\n", int(path.stat().st_mtime))  # tells which was used
    code = driver_code(str(path), path.read_bytes())
    assert value_of_x(code) == 2
    assert code.co_filename == "<sandrun-driver>"
    assert all(c.co_filename == "<sandrun-driver>" for c in code.co_consts if isinstance(c, CodeType))


@pytest.mark.parametrize("damage", ["stale", "truncated", "none"])
def test_the_driver_is_compiled_when_the_cache_does_not_match(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "driver.py"
    path.write_bytes(b"x = 1\n")
    if damage != "none":
        write_cache(path, b"x = 2\n", int(path.stat().st_mtime) - (damage == "stale"))
    if damage == "truncated":
        cached = Path(cache_from_source(str(path), optimization=""))
        cached.write_bytes(cached.read_bytes()[:20])
    code = driver_code(str(path), path.read_bytes())
    assert value_of_x(code) == 1
    assert code.co_filename == "<sandrun-driver>"


def test_the_bootstrap_and_the_driver_agree_on_the_drivers_file_name() -> None:
    # The driver leaves frames of this file name out of tracebacks, whichever way it was started.
    assert driver.DRIVER_FILENAME == DRIVER_FILENAME
    assert repr(DRIVER_FILENAME) in BOOT
