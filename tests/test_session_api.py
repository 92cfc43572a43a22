"""`sandrun.Session` and `sandrun.AsyncSession`: the code interpreter, on real sandboxes (local, process)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import sandrun
from tests.security.sandboxes import local_unavailable

BACKENDS = ["local", "process"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "local" and (reason := local_unavailable()):
        pytest.skip(f"the local backend is unavailable: {reason}")
    return name


@pytest.fixture
def session(backend: str) -> Iterator[sandrun.Session]:
    with sandrun.Session(backend=backend, timeout=30) as live:
        yield live


def test_the_seed_example(session: sandrun.Session) -> None:
    hello = session.run("print('hello')")
    assert (hello.status, hello.stdout, hello.value) == ("ok", "hello\n", None)
    assert session.run("x = 10").ok and session.run("y = 5").ok
    total = session.run("x + y")
    assert (total.status, total.value, total.error) == ("ok", "15", None)
    failed = session.run("1/0")
    assert failed.status == "error" and failed.error is not None
    assert failed.error.type == "ZeroDivisionError"
    assert failed.error.message == "division by zero"
    assert "ZeroDivisionError: division by zero" in failed.error.traceback
    assert failed.duration > 0


def test_state_carries_and_outputs_keep_their_order(session: sandrun.Session) -> None:
    session.run("import sys\nitems = []")
    session.run("items.append(1)")
    result = session.run("print('a'); print('b', file=sys.stderr); print('c'); items + [2]")
    assert [(c.stream, c.text) for c in result.outputs] == [
        ("stdout", "a\n"),
        ("stderr", "b\n"),
        ("stdout", "c\n"),
    ]
    assert (result.stdout, result.stderr, result.value) == ("a\nc\n", "b\n", "[1, 2]")


def test_a_timeout_interrupts_the_code_and_keeps_the_session(session: sandrun.Session) -> None:
    session.run("kept = 'still here'")
    result = session.run("import time\nwhile True: time.sleep(0.01)", timeout=0.3)
    assert result.status == "timeout"
    assert result.error is not None and "0.3 s timeout" in result.error.message
    assert session.alive
    assert session.run("kept").value == "'still here'"


def test_a_cell_that_ignores_its_timeout_loses_its_sandbox_and_says_so(backend: str) -> None:
    with sandrun.Session(backend=backend, grace=0.3) as live:
        stubborn = "import time\nwhile True:\n try:\n  time.sleep(10)\n except BaseException:\n  pass"
        result = live.run(stubborn, timeout=0.2)
        assert result.status == "timeout" and not live.alive
        with pytest.raises(sandrun.BackendError, match=r"ignored its 0\.2 s timeout"):
            live.run("1")


def test_upload_and_download_round_trip(session: sandrun.Session) -> None:
    data = bytes(range(256)) * 5000  # more than one transfer chunk
    session.upload("in/data.bin", data)
    assert session.run("open('in/data.bin', 'rb').read() == bytes(range(256)) * 5000").value == "True"
    session.run("import os; os.makedirs('out', exist_ok=True); open('out/r.txt', 'w').write('result')")
    assert session.download("out/r.txt") == b"result"
    assert session.download("in/data.bin") == data
    session.upload("empty", b"")
    assert session.download("empty") == b""


def test_transfers_use_the_work_directory_and_leave_the_namespace_alone(session: sandrun.Session) -> None:
    session.run("import os; os.mkdir('elsewhere'); os.chdir('elsewhere')")
    session.run("40 + 2")  # `_` is now 42
    session.upload("f.txt", b"x")
    assert session.download("f.txt") == b"x"
    assert session.run("os.path.exists('../f.txt'), _").value == "(True, 42)"
    names = session.run("sorted(n for n in globals() if not n.startswith('__'))").value
    assert names == "['_', 'os']"


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../x", "", "a//b", "./x", "x/", "a\0b"])
def test_names_that_could_leave_the_work_directory_are_refused(session: sandrun.Session, name: str) -> None:
    with pytest.raises(ValueError):
        session.upload(name, b"x")
    with pytest.raises(ValueError):
        session.download(name)


def test_a_missing_file_is_file_not_found(session: sandrun.Session) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing\.txt"):
        session.download("nothing.txt")


def test_callbacks_receive_output_as_it_is_written(session: sandrun.Session) -> None:
    seen: list[tuple[str, str]] = []
    code = "import sys\nprint('one', flush=True)\nprint('two', file=sys.stderr, flush=True)"
    result = session.run(
        code, on_stdout=lambda t: seen.append(("out", t)), on_stderr=lambda t: seen.append(("err", t))
    )
    assert "".join(t for k, t in seen if k == "out") == result.stdout == "one\n"
    assert "".join(t for k, t in seen if k == "err") == result.stderr == "two\n"
    assert [k for k, _ in seen] == ["out", "err"]


def test_a_failing_callback_is_raised_after_the_code_finished(session: sandrun.Session) -> None:
    def broken(text: str) -> None:
        raise RuntimeError("callback broke")

    with pytest.raises(RuntimeError, match="callback broke"):
        session.run("print('a')\ndone = True", on_stdout=broken)
    assert session.run("done").value == "True"


def test_a_session_that_is_not_started_says_so() -> None:
    with pytest.raises(sandrun.BackendError, match="not started"):
        sandrun.Session(backend="process").run("1")


def test_async_sessions_run_at_once_each_with_its_own_state(backend: str) -> None:
    async def one(number: int) -> tuple[str | None, list[str]]:
        printed: list[str] = []
        async with sandrun.AsyncSession(backend=backend, on_stdout=printed.append) as live:
            await live.run(f"n = {number}")
            await live.upload("n.txt", str(number).encode())
            await live.run("print(open('n.txt').read())")
            result = await live.run("n * 100")
            return result.value, printed

    async def main() -> list[tuple[str | None, list[str]]]:
        return await asyncio.gather(*(one(n) for n in range(4)))

    assert asyncio.run(main()) == [(str(n * 100), [f"{n}\n"]) for n in range(4)]


def test_cancelling_an_async_run_ends_its_session(backend: str) -> None:
    async def main() -> bool:
        async with sandrun.AsyncSession(backend=backend) as live:
            task = asyncio.create_task(live.run("import time\ntime.sleep(60)"))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return live.alive

    assert asyncio.run(main()) is False


def test_packages_are_built_into_a_cached_environment_first(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.factories import DEMO, make_wheel

    monkeypatch.setenv("PIP_NO_INDEX", "1")  # the wheel is all it needs: no index is asked
    wheel = make_wheel(tmp_path)
    with sandrun.Session(backend=backend, packages=[str(wheel)], cache_dir=tmp_path / "cache") as live:
        assert live.run(f"import {DEMO}; {DEMO}.VALUE").value == "42"
    with pytest.raises(sandrun.BackendError, match="no-such-package"):
        missing = str(tmp_path / "no-such-package.whl")
        sandrun.Session(backend=backend, packages=[missing], cache_dir=tmp_path / "cache").start()


def test_an_interruption_while_waiting_ends_the_session(session: sandrun.Session) -> None:
    def interrupt(text: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        session.run("print('x', flush=True)\nimport time\ntime.sleep(60)", on_stdout=interrupt)
    assert not session.alive
    with pytest.raises(sandrun.BackendError, match="interrupted"):
        session.run("1")
