"""The real modal client against the fake Modal server (tests/modal_fake), end to end and offline.

The fake speaks the private protocol of one modal release; these tests skip under any other version.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import modal
import pytest
from modal.exception import AuthError, InvalidError
from modal_proto import api_pb2

from tests.modal_fake import SKIP_REASON

if TYPE_CHECKING:
    from tests.modal_fake.server import FakeModal

pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")

# Echoes stdin lines uppercased, as soon as each arrives.
UPPER_ECHO = (
    "import sys\nfor line in sys.stdin:\n    sys.stdout.write(line.upper())\n    sys.stdout.flush()\n"
)
PACKAGE = "pyyaml==6.0.2"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeModal]:
    """A running fake the modal client points at; afterwards no thread or process it started is left."""
    from tests.modal_fake.server import fake_modal

    before = set(threading.enumerate())
    with fake_modal(tmp_path) as server:
        yield server
    for sb in server.sandboxes.values():
        assert all(ex.proc.returncode is not None for ex in sb.execs.values())

    def leftover() -> set[threading.Thread]:  # modal's event loop thread starts with the first modal call
        return {t for t in threading.enumerate() if t not in before and "thread_inner" not in t.name}

    deadline = time.monotonic() + 2  # a reaped child's watcher thread may still be returning
    while leftover() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not leftover()


@pytest.fixture
def sandbox(fake: FakeModal) -> Iterator[modal.Sandbox]:
    """A sandbox created the way the sandrun backend creates one."""
    app = modal.App.lookup("sandrun", create_if_missing=True)
    image = modal.Image.debian_slim(python_version="3.11").pip_install(PACKAGE)
    sb = modal.Sandbox.create(
        app=app,
        image=image,
        timeout=600,
        idle_timeout=120,
        block_network=True,
        cpu=1.0,
        memory=1024,
        env={"SANDRUN_TEST": "1"},
        workdir="/work",
    )
    yield sb
    sb.terminate()
    sb.detach()


def python(*args: str) -> list[str]:
    """Command line running the test's own interpreter (the fake runs execs as local processes)."""
    return [sys.executable, "-I", "-u", *args]


def read_line(chunks: Iterator[bytes], pending: bytearray) -> bytes:
    """Next line from a bytes stdout iterator whose chunks need not align with lines."""
    while b"\n" not in pending:
        pending += next(chunks)
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    return line + b"\n"


def test_echo_round_trip(fake: FakeModal, sandbox: modal.Sandbox) -> None:
    proc = sandbox.exec(*python("-c", UPPER_ECHO), timeout=60, text=False)
    stdout, pending = iter(proc.stdout), bytearray()  # ONE iterator for the whole exec
    for word in (b"alpha", b"beta", "gamma \u00e9".encode()):
        proc.stdin.write(word + b"\n")
        proc.stdin.drain()
        assert read_line(stdout, pending) == word.decode().upper().encode() + b"\n"
    proc.stdin.write_eof()
    proc.stdin.drain()
    assert b"".join(stdout) == b""
    assert proc.wait() == 0
    assert proc.returncode == 0
    sandbox.terminate()

    (create,) = fake.requests("SandboxCreateV2")
    definition = create.definition
    assert definition.network_access.network_access_type == api_pb2.NetworkAccess.NetworkAccessType.BLOCKED
    assert (definition.timeout_secs, definition.idle_timeout_secs, definition.workdir) == (600, 120, "/work")
    assert (definition.resources.milli_cpu, definition.resources.memory_mb) == (1000, 1024)
    assert [dict(s.env.contents) for s in create.secret_sources] == [{"SANDRUN_TEST": "1"}]
    assert create.app_id == fake.apps["sandrun"]
    commands = [cmd for req in fake.requests("ImageGetOrCreate") for cmd in req.image.dockerfile_commands]
    assert any("pip install" in cmd and PACKAGE in cmd for cmd in commands)
    (start,) = fake.requests("TaskExecStart")
    assert list(start.command_args) == python("-c", UPPER_ECHO)
    assert [req.sandbox_id for req in fake.requests("SandboxTerminateV2")] == [sandbox.object_id]
    assert fake.sandboxes[sandbox.object_id].result.status == api_pb2.GenericResult.GENERIC_STATUS_TERMINATED


def test_large_stdin_in_several_writes(fake: FakeModal, sandbox: modal.Sandbox) -> None:
    line = b"0123456789abcdef" * 4 + b"\n"
    payload = line * (200 * 1024 // len(line))
    proc = sandbox.exec(*python("-c", UPPER_ECHO), timeout=60, text=False)
    quarter = len(payload) // 4
    for start in range(0, len(payload), quarter):
        proc.stdin.write(payload[start : start + quarter])
        proc.stdin.drain()
    proc.stdin.write_eof()
    proc.stdin.drain()
    assert proc.stdout.read() == payload.upper()
    assert proc.wait() == 0
    writes = fake.requests("TaskExecStdinWrite")
    assert sum(len(w.data) for w in writes) == len(payload) >= 200 * 1000
    assert [w.offset for w in writes[:4]] == [0, quarter, 2 * quarter, 3 * quarter]


def test_write_sends_nothing_until_drain(fake: FakeModal, sandbox: modal.Sandbox) -> None:
    proc = sandbox.exec(*python("-c", UPPER_ECHO), timeout=60, text=False)
    proc.stdin.write(b"held\n")
    time.sleep(0.2)
    assert fake.requests("TaskExecStdinWrite") == []
    proc.stdin.write_eof()
    proc.stdin.drain()
    assert proc.stdout.read() == b"HELD\n"
    assert proc.wait() == 0


def test_nonzero_exit_and_stderr(sandbox: modal.Sandbox) -> None:
    proc = sandbox.exec(*python("-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"), text=False)
    assert proc.wait() == 3
    assert proc.stderr.read() == b"boom\n"
    assert proc.stdout.read() == b""


def test_exec_timeout_is_returncode_minus_one(fake: FakeModal, sandbox: modal.Sandbox) -> None:
    started = time.monotonic()
    # One write: under -u, print() writes "up" and "\n" apart, and a busy machine may deliver them apart.
    script = "import os, time; os.write(1, b'up\\n'); time.sleep(60)"
    proc = sandbox.exec(*python("-c", script), timeout=1, text=False)
    assert next(iter(proc.stdout)) == b"up\n"
    assert proc.wait() == -1
    assert proc.stdout.read() == b""  # past the deadline the stream ends at once, quietly, with no error
    assert time.monotonic() - started < 5
    (ex,) = fake.sandboxes[sandbox.object_id].execs.values()
    deadline = time.monotonic() + 5
    while ex.proc.returncode is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ex.timed_out and ex.proc.returncode == -9


def test_exec_args_limit_is_checked_by_the_client(fake: FakeModal, sandbox: modal.Sandbox) -> None:
    with pytest.raises(InvalidError, match="ARG_MAX"):
        sandbox.exec(*python("-c", "pass", "x" * 2**16))
    assert fake.requests("TaskExecStart") == []


def test_filesystem_upload_then_run(fake: FakeModal, sandbox: modal.Sandbox) -> None:
    sandbox.filesystem.make_directory("/work/pkg")
    sandbox.filesystem.write_text(
        "import os\nprint('hi', os.environ['SANDRUN_TEST'])\n", "/work/pkg/hello.py"
    )
    assert sandbox.filesystem.read_text("/work/pkg/hello.py").startswith("import os")
    assert (fake.root / "work/pkg/hello.py").is_file()
    proc = sandbox.exec(*python("pkg/hello.py"), text=False)  # relative to the sandbox workdir
    assert proc.stdout.read() == b"hi 1\n"
    assert proc.wait() == 0


def test_tags_list_and_cleanup(fake: FakeModal, sandbox: modal.Sandbox) -> None:
    app = modal.App.lookup("sandrun")
    sandbox.set_tags({"sandrun": "1", "run": "abc"})
    assert fake.sandboxes[sandbox.object_id].tags == {"sandrun": "1", "run": "abc"}
    listed = list(modal.Sandbox.list(app_id=app.app_id, tags={"sandrun": "1"}))
    assert [sb.object_id for sb in listed] == [sandbox.object_id]
    assert list(modal.Sandbox.list(app_id=app.app_id, tags={"sandrun": "2"})) == []
    listed[0].terminate()
    assert list(modal.Sandbox.list(app_id=app.app_id, tags={"sandrun": "1"})) == []
    assert fake.requests("SandboxTagsSetV2")[0].sandbox_id == sandbox.object_id


def test_unknown_app_and_bad_token(fake: FakeModal, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(modal.exception.NotFoundError):
        modal.App.lookup("no-such-app")
    monkeypatch.setattr(fake, "token_secret", "as-other")
    with pytest.raises(AuthError):
        modal.App.lookup("sandrun", create_if_missing=True)
