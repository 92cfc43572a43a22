"""The Modal backend.

1. Unit tests at sandrun's own boundary: the channel over a stand-in for the client's process object.
2. Integration tests: the full `sandrun run --backend modal` through the REAL modal client against the fake
   Modal server in tests/modal_fake, which runs each exec as a local process. The fake speaks the private
   protocol of one modal release (tests.modal_fake.MODAL_VERSION); under any other version they skip.
3. A live test against Modal itself, skipped unless MODAL_TOKEN_ID is set.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sandrun.backends.modal_backend import ModalBackend, ModalChannel, has_credentials
from sandrun.errors import BackendError, UsageError
from sandrun.session import CellRequest, Session
from tests.conftest import RECIPES
from tests.modal_fake import SKIP_REASON
from tests.security.sandboxes import LARGE_CELL, PLUG_REQUESTS

if TYPE_CHECKING:
    from tests.modal_fake.server import FakeModal

needs_fake = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")


class Stream:
    """What the client gives for a process's stdin/stdout: chunks in, chunks out."""

    def __init__(self, chunks: list[bytes] | None = None) -> None:
        self.chunks = chunks or []
        self.written: list[bytes] = []
        self.drained: list[bytes] = []

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def drain(self) -> None:
        self.drained, self.written = self.drained + self.written, []


class BrokenStream(Stream):
    """A stream whose client call fails after its chunks, as a dropped connection makes it."""

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        raise ConnectionResetError("stream reset by peer\nsecond line")


class Process:
    def __init__(self, out: list[bytes], stdout: Stream | None = None, stderr: Stream | None = None) -> None:
        self.stdin, self.stdout = Stream(), stdout or Stream(out)
        self.stderr = stderr or Stream([b"warning\n"])
        self.wait_fails = False

    def wait(self) -> int:
        if self.wait_fails:
            raise TimeoutError("deadline exceeded")
        return 0


class Sandbox:
    def __init__(self) -> None:
        self.terminated = 0

    def terminate(self) -> None:
        self.terminated += 1

    def detach(self) -> None:
        pass


def test_channel_drains_every_write_and_ends_with_eof() -> None:
    process, sandbox = Process([b'{"ev": "re', b'ady"}\n']), Sandbox()
    channel = ModalChannel(sandbox, process)
    assert channel.send(b"hello", 5)
    assert process.stdin.drained == [b"hello"]  # the client sends nothing until drained
    received = b"".join(iter(lambda: channel.receive(5), b""))  # chunks until the end-of-output b""
    assert received == b'{"ev": "ready"}\n'
    assert channel.returncode == 0
    deadline = time.monotonic() + 5
    while "warning" not in channel.diagnostics() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert channel.diagnostics() == "warning\n"
    channel.close()
    channel.close()
    assert sandbox.terminated == 1


def received(channel: ModalChannel) -> bytes:
    """Every chunk until the end of the output."""
    return b"".join(iter(lambda: channel.receive(5), b""))


def test_a_broken_output_stream_is_an_error_with_its_cause() -> None:
    process = Process([], stdout=BrokenStream([b'{"ev": "ready"}\n']))
    channel = ModalChannel(Sandbox(), process)
    with pytest.raises(BackendError) as caught:
        received(channel)
    assert str(caught.value) == (
        "the modal client lost the interpreter's output: ConnectionResetError: stream reset by peer"
    )
    with pytest.raises(BackendError):  # the end stays the end: a second call does not wait forever
        channel.receive(5)
    channel.close()


def test_a_failed_wait_is_an_error_with_its_cause() -> None:
    process = Process([b"last words\n"])
    process.wait_fails = True
    channel = ModalChannel(Sandbox(), process)
    with pytest.raises(BackendError, match="could not get its exit status: TimeoutError: deadline exceeded"):
        received(channel)
    assert channel.returncode is None
    channel.close()


def test_a_broken_stderr_stream_is_said_in_the_diagnostics() -> None:
    process = Process([], stderr=BrokenStream([b"Traceback"]))
    channel = ModalChannel(Sandbox(), process)
    assert received(channel) == b""  # stdout itself ended well
    deadline = time.monotonic() + 5
    while "lost" not in channel.diagnostics() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert channel.diagnostics() == (
        "Traceback\n(the modal client lost the sandbox's stderr: ConnectionResetError: stream reset by peer)"
    )
    channel.close()


def test_a_stream_broken_by_our_own_kill_is_no_failure() -> None:
    release = threading.Event()

    class Held(Stream):
        def __iter__(self) -> Iterator[bytes]:
            release.wait(5)
            raise ConnectionResetError("terminated")

    channel = ModalChannel(Sandbox(), Process([], stdout=Held()))
    channel.kill()
    release.set()
    assert received(channel) == b""  # the plain end: the session says the sandbox was killed
    channel.close()


def test_a_session_over_a_broken_stream_says_the_cause() -> None:
    process = Process([], stdout=BrokenStream([b'{"ev": "ready", "python": "3.12.0"}\n']))
    session = Session(ModalChannel(Sandbox(), process))
    session.wait_ready(5)
    outcome = session.run(CellRequest("pass", "r.py", 1, None))
    assert outcome.status == "crashed"
    assert outcome.error is not None
    assert outcome.error.message.startswith(
        "the modal client lost the interpreter's output: ConnectionResetError: stream reset by peer"
    )
    assert "closed its channel" not in outcome.error.message


@pytest.mark.parametrize("written", ["soon", "0", "-3", "nan", "inf"])
def test_a_malformed_connect_timeout_is_a_usage_error(written: str) -> None:
    message = f"SANDRUN_MODAL_CONNECT_TIMEOUT={written!r} is not a positive number of seconds"
    with pytest.raises(UsageError, match=re.escape(message)):
        ModalBackend({"SANDRUN_MODAL_CONNECT_TIMEOUT": written})
    assert ModalBackend({"SANDRUN_MODAL_CONNECT_TIMEOUT": "2.5"}).connect_timeout == 2.5
    assert ModalBackend({"SANDRUN_MODAL_CONNECT_TIMEOUT": ""}).connect_timeout == 15


def test_a_malformed_connect_timeout_exits_with_code_2(tmp_path: Path) -> None:
    env = {"SANDRUN_MODAL_CONNECT_TIMEOUT": "15s", "MODAL_TOKEN_ID": "ak-1", "MODAL_TOKEN_SECRET": "as-1"}
    result = sandrun("run", "--backend", "modal", str(RECIPES / "quickstart.yaml"), env=env)
    assert result.returncode == 2, result.stderr
    assert "SANDRUN_MODAL_CONNECT_TIMEOUT='15s' is not a positive number of seconds" in result.stderr
    assert "Traceback" not in result.stderr


def test_credentials_come_from_the_environment_or_the_config_file(tmp_path: Path) -> None:
    assert has_credentials({"MODAL_TOKEN_ID": "ak-1", "MODAL_TOKEN_SECRET": "as-1"})
    assert not has_credentials({"MODAL_TOKEN_ID": "ak-1", "HOME": str(tmp_path)})
    (tmp_path / ".modal.toml").write_text('[default]\ntoken_id = "ak-1"\ntoken_secret = "as-1"\n')
    assert has_credentials({"HOME": str(tmp_path)})


def sandrun(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """The real CLI in a child process; `python3` there is the interpreter running the tests."""
    environment = {**os.environ, **(env or {})}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    command = [sys.executable, "-m", "sandrun", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)


def test_no_credentials_fails_at_once_without_the_network(tmp_path: Path) -> None:
    env = {
        "MODAL_TOKEN_ID": "",
        "MODAL_TOKEN_SECRET": "",
        "HOME": str(tmp_path),
        "MODAL_SERVER_URL": "http://10.255.255.1:1",
    }
    started = time.monotonic()
    result = sandrun("run", "--backend", "modal", str(RECIPES / "quickstart.yaml"), env=env)
    assert result.returncode == 3
    assert "no Modal credentials" in result.stderr and "modal token new" in result.stderr
    assert time.monotonic() - started < 20


def test_an_unreachable_server_is_a_bounded_wait(tmp_path: Path) -> None:
    env = {
        "MODAL_TOKEN_ID": "ak-test",
        "MODAL_TOKEN_SECRET": "as-test",
        "MODAL_SERVER_URL": "http://127.0.0.1:9",  # nothing listens on the discard port here
        "MODAL_CONFIG_PATH": str(tmp_path / "none.toml"),
        "SANDRUN_MODAL_CONNECT_TIMEOUT": "2",
    }
    started = time.monotonic()
    result = sandrun("run", "--backend", "modal", str(RECIPES / "quickstart.yaml"), env=env)
    assert result.returncode == 3
    assert "did not answer within 2 s" in result.stderr
    assert time.monotonic() - started < 30  # the client alone would wait about a minute


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeModal]:
    """The fake Modal server, with this process's environment pointing at it (children inherit it)."""
    from tests.modal_fake.server import fake_modal

    with fake_modal(tmp_path / "modal") as server:
        yield server


@needs_fake
def test_quickstart_runs_on_modal_and_the_sandbox_is_terminated(fake: FakeModal) -> None:
    result = sandrun("run", "--backend", "modal", str(RECIPES / "quickstart.yaml"), "--format", "json")
    assert result.returncode == 0, result.stderr
    transcript = json.loads(result.stdout)
    assert transcript["backend"]["name"] == "modal"
    assert (
        transcript["cells"][5]["stdout"] == "" and transcript["cells"][4]["stdout"] == "The result is: 15\n"
    )
    (create,) = fake.requests("SandboxCreateV2")
    definition = create.definition
    assert definition.network_access.network_access_type == 2  # BLOCKED: the network is off by default
    assert definition.workdir == "/work"
    assert {t.tag_name: t.tag_value for t in create.tags}[
        "sandrun"
    ] == "1"  # found by `sandrun modal cleanup`
    assert create.definition.timeout_secs == 3600 and create.definition.idle_timeout_secs == 300
    assert len(fake.requests("SandboxTerminateV2")) == 1
    assert all(sb.result is not None for sb in fake.sandboxes.values())


@needs_fake
def test_packages_go_into_the_image_and_files_into_the_workdir(fake: FakeModal, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("21\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        'python: "3.12"\npackages: [pyyaml==6.0.2]\nfiles: [data.txt]\nnetwork: true\n'
        "cells:\n  - code: print(int(open('data.txt').read()) * 2)\n    expect: {stdout: '42'}\n"
    )
    result = sandrun("run", "--backend", "modal", str(recipe))
    assert result.returncode == 0, result.stderr
    layers = " ".join(str(r.image.dockerfile_commands) for r in fake.requests("ImageGetOrCreate"))
    assert "pyyaml==6.0.2" in layers
    assert "FROM python:3.12" in layers
    (create,) = fake.requests("SandboxCreateV2")
    assert create.definition.network_access.network_access_type != 2


@needs_fake
def test_a_broken_output_stream_is_reported_with_its_cause(fake: FakeModal, tmp_path: Path) -> None:
    fake.break_output_at = b"BREAK-HERE"
    recipe = tmp_path / "breaks.yaml"
    recipe.write_text("cells:\n  - print('fine')\n  - print('BREAK-HERE')\n  - print('never')\n")
    result = sandrun("run", "--backend", "modal", str(recipe), "--format", "json")
    assert result.returncode == 3, result.stderr
    cells = json.loads(result.stdout)["cells"]
    assert [cell["status"] for cell in cells] == ["passed", "error", "not_run"]
    reason = cells[1]["reason"]
    assert "the modal client lost the interpreter's output" in reason, reason
    assert "the fake broke the output stream" in reason and "closed its channel" not in reason
    assert len(fake.requests("SandboxTerminateV2")) == 1


@needs_fake
def test_a_dead_driver_still_terminates_the_sandbox(fake: FakeModal, tmp_path: Path) -> None:
    recipe = tmp_path / "dies.yaml"
    recipe.write_text("cells:\n  - import os; os._exit(3)\n  - print('never')\n")
    result = sandrun("run", "--backend", "modal", str(recipe), "--format", "json")
    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout)["cells"][1]["status"] == "not_run"
    assert len(fake.requests("SandboxTerminateV2")) == 1


@needs_fake
def test_ctrl_c_terminates_the_sandbox_and_keeps_the_transcript(fake: FakeModal, tmp_path: Path) -> None:
    recipe = tmp_path / "slow.yaml"
    recipe.write_text("cells:\n  - print('started', flush=True)\n  - import time; time.sleep(60)\n")
    report = tmp_path / "out.json"
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [
        sys.executable,
        "-m",
        "sandrun",
        "run",
        "--backend",
        "modal",
        str(recipe),
        "--report",
        str(report),
    ]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("--- cell 2"):
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert json.loads(report.read_text())["status"] == "interrupted"
    assert len(fake.requests("SandboxTerminateV2")) == 1


@needs_fake
def test_cleanup_terminates_sandboxes_left_running(fake: FakeModal) -> None:
    import modal

    app = modal.App.lookup("sandrun", create_if_missing=True)
    left = modal.Sandbox.create(app=app, image=modal.Image.debian_slim(), tags={"sandrun": "1"})
    other = modal.Sandbox.create(app=app, image=modal.Image.debian_slim(), tags={"someone": "else"})
    listed = sandrun("modal", "cleanup", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["found", left.object_id]
    result = sandrun("modal", "cleanup")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["terminated", left.object_id]
    assert fake.sandboxes[left.object_id].result is not None
    assert fake.sandboxes[other.object_id].result is None
    other.terminate()


@pytest.mark.skipif(
    not os.environ.get("MODAL_TOKEN_ID"), reason="live Modal test: set MODAL_TOKEN_ID to run it"
)
def test_live_quickstart_on_modal() -> None:
    result = sandrun("run", "--backend", "modal", str(RECIPES / "quickstart.yaml"), timeout=900)
    assert result.returncode == 0, result.stderr


def test_backend_lists_itself_without_network() -> None:
    backend = ModalBackend({"HOME": "/nonexistent"})
    assert backend.unavailable_reason() is not None
    assert "modal" in backend.versions()


@needs_fake
def test_a_sandbox_that_stops_reading_ends_its_run_at_the_deadline(fake: FakeModal, tmp_path: Path) -> None:
    recipe = tmp_path / "plug.py"
    recipe.write_text(
        "".join(f"# %%\n{cell.strip()}\n\n" for cell in (PLUG_REQUESTS, LARGE_CELL, "print('never')"))
    )
    command = ("run", "--backend", "modal", str(recipe), "--cell-timeout", "2", "--format", "json")
    result = sandrun(*command, timeout=60)  # a hang fails the test
    assert result.returncode == 3, result.stderr
    statuses = [cell["status"] for cell in json.loads(result.stdout)["cells"]]
    assert statuses == ["passed", "timeout", "not_run"], statuses
    assert len(fake.requests("SandboxTerminateV2")) == 1
