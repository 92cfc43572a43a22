"""The fake's sandboxes and their task command router, which runs each exec as a local process.

modal 1.6.4 execs through a per-sandbox "task command router" (``modal.task_command_router``), not the
control plane; the fake serves it on the same port, each exec's pipes wired to the router RPCs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grpclib import GRPCError, Status
from grpclib.server import Stream
from modal._utils.grpc_testing import patch_mock_servicer
from modal_proto import api_pb2
from modal_proto import task_command_router_pb2 as sr_pb2
from modal_proto.task_command_router_grpc import TaskCommandRouterBase

if TYPE_CHECKING:
    from .server import FakeModal

FS_TOOLS_PATH = "/__modal/.bin/modal-sandbox-fs-tools"  # what Sandbox.filesystem execs
FS_TOOL = Path(__file__).with_name("fs_tool.py")  # what the fake runs instead
STDOUT, STDERR = sr_pb2.TASK_EXEC_STDIO_FILE_DESCRIPTOR_STDOUT, sr_pb2.TASK_EXEC_STDIO_FILE_DESCRIPTOR_STDERR
CHUNK = 64 * 1024


class ExecProcess:
    """One exec'd command: a local process whose output is kept, so a read can start at any offset."""

    def __init__(self, proc: asyncio.subprocess.Process, timeout: float | None) -> None:
        self.proc = proc
        self.output = {STDOUT: bytearray(), STDERR: bytearray()}
        self.eof = {STDOUT: proc.stdout is None, STDERR: proc.stderr is None}
        self.changed = asyncio.Condition()
        self.stdin_written, self.stdin_closed, self.timed_out = 0, False, False
        pumps = [self._pump(fd, pipe) for fd, pipe in ((STDOUT, proc.stdout), (STDERR, proc.stderr)) if pipe]
        self.tasks = [asyncio.create_task(c) for c in (*pumps, self._reap(timeout))]

    async def _pump(self, fd: int, pipe: asyncio.StreamReader) -> None:
        try:
            while chunk := await pipe.read(CHUNK):
                async with self.changed:
                    self.output[fd] += chunk
                    self.changed.notify_all()
        finally:
            async with self.changed:
                self.eof[fd] = True
                self.changed.notify_all()

    async def _reap(self, timeout: float | None) -> None:
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:  # the exec's timeout: Modal kills the command
            self.timed_out = True
            await self.close()

    async def read(self, fd: int, offset: int) -> bytes:
        """Wait for output of `fd` past `offset`; b"" once the pipe is closed and all of it was read."""
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.output[fd]) > offset or self.eof[fd])
            return bytes(self.output[fd][offset : offset + CHUNK])

    async def write_stdin(self, offset: int, data: bytes, eof: bool) -> None:
        """Write `data`, which starts at stdin byte `offset`: a part already written (a retry) is skipped."""
        data, stdin = data[self.stdin_written - offset :], self.proc.stdin
        assert stdin is not None and offset <= self.stdin_written
        try:
            if data:
                if self.stdin_closed:
                    raise BrokenPipeError("EOF was sent")
                stdin.write(data)
                await stdin.drain()
                self.stdin_written += len(data)
            if eof and not self.stdin_closed:
                self.stdin_closed = True
                stdin.close()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise GRPCError(Status.FAILED_PRECONDITION, f"stdin is closed: {exc}") from None

    async def close(self) -> None:
        """Kill the command's process group (it has a session of its own) and wait for the process."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    def exit_status(self) -> dict[str, int]:
        """``{"code": n}`` or ``{"signal": n}`` as the router reports them; {} while running."""
        code = self.proc.returncode
        return {} if code is None else {"signal": -code} if code < 0 else {"code": code}


@dataclass
class FakeSandbox:
    """A sandbox as the fake tracks it. There is no container: only execs, each a local process."""

    sandbox_id: str
    task_id: str
    app_id: str
    definition: api_pb2.Sandbox
    env: dict[str, str]
    tags: dict[str, str]
    created_at: float
    result: api_pb2.GenericResult | None = None
    execs: dict[str, ExecProcess] = field(default_factory=dict)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    async def finish(self, status: int, message: str = "") -> None:
        """End the sandbox (terminated, timed out), killing its execs."""
        if self.result is None:
            self.result = api_pb2.GenericResult(status=status, exception=message)
            self.finished.set()
        tasks = [task for ex in self.execs.values() for task in ex.tasks]
        await asyncio.gather(*(ex.close() for ex in self.execs.values()), *tasks, return_exceptions=True)


def env_of(sources: Any) -> dict[str, str]:
    """The variables ``SecretSource`` messages carry inline (from ``env=`` and ``Secret.from_dict``)."""
    return {key: value for source in sources for key, value in source.env.contents.items()}


def unary(handler: Callable[[Any, Any], Awaitable[Any]]) -> Callable[[Any, Stream], Awaitable[None]]:
    """Make ``handler(self, request) -> response`` a grpclib handler that records the request."""

    async def rpc(self: Any, stream: Stream) -> None:
        request = await stream.recv_message()
        self.fake.calls.append((handler.__name__, request))
        await stream.send_message(await handler(self, request))

    rpc.__name__ = handler.__name__
    return rpc


@patch_mock_servicer
class CommandRouter(TaskCommandRouterBase):
    """The exec RPCs of the task command router; the other methods answer UNIMPLEMENTED."""

    def __init__(self, fake: FakeModal) -> None:
        self.fake = fake

    def sandbox(self, task_id: str) -> FakeSandbox:
        sb = next((sb for sb in self.fake.sandboxes.values() if sb.task_id == task_id), None)
        if sb is None or sb.result is not None:
            raise GRPCError(Status.NOT_FOUND, f"task {task_id} not found or finished")
        return sb

    def exec(self, task_id: str, exec_id: str) -> ExecProcess:
        if (ex := self.sandbox(task_id).execs.get(exec_id)) is None:
            raise GRPCError(Status.NOT_FOUND, f"exec {exec_id} not found")
        return ex

    @unary
    async def TaskExecStart(self, req: Any) -> sr_pb2.TaskExecStartResponse:
        sb, argv = self.sandbox(req.task_id), list(req.command_args)
        if argv[:1] == [FS_TOOLS_PATH]:
            argv = [sys.executable, "-I", str(FS_TOOL), str(self.fake.root), *argv[1:]]
        cwd = self.fake.root / (req.workdir or sb.definition.workdir or "/").lstrip("/")
        cwd.mkdir(parents=True, exist_ok=True)
        if req.exec_id in sb.execs:  # a retried start
            return sr_pb2.TaskExecStartResponse()
        pipe, devnull = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=pipe,
                stdout=devnull if req.stdout_config == sr_pb2.TASK_EXEC_STDOUT_CONFIG_DEVNULL else pipe,
                stderr=devnull if req.stderr_config == sr_pb2.TASK_EXEC_STDERR_CONFIG_DEVNULL else pipe,
                cwd=cwd,
                env={**os.environ, **sb.env, **env_of(req.secret_sources)},
                start_new_session=True,
            )
        except OSError as exc:  # e.g. no such program
            raise GRPCError(Status.INVALID_ARGUMENT, f"cannot exec {argv[0]}: {exc}") from None
        sb.execs[req.exec_id] = ExecProcess(proc, req.timeout_secs or None)
        return sr_pb2.TaskExecStartResponse()

    async def TaskExecStdioRead(self, stream: Stream) -> None:
        req = await stream.recv_message()
        self.fake.calls.append(("TaskExecStdioRead", req))
        ex, offset = self.exec(req.task_id, req.exec_id), req.offset
        while data := await ex.read(req.file_descriptor, offset):
            broken = self.fake.break_output_at
            if broken and req.file_descriptor == STDOUT and broken in ex.output[STDOUT]:
                raise GRPCError(Status.PERMISSION_DENIED, "the fake broke the output stream")
            await stream.send_message(sr_pb2.TaskExecStdioReadResponse(data=data))
            offset += len(data)

    @unary
    async def TaskExecStdinWrite(self, req: Any) -> sr_pb2.TaskExecStdinWriteResponse:
        await self.exec(req.task_id, req.exec_id).write_stdin(req.offset, req.data, req.eof)
        return sr_pb2.TaskExecStdinWriteResponse()

    async def TaskExecStdinWriteStream(self, stream: Stream) -> None:
        """Client streaming (used by ``Sandbox.filesystem``): ``start``, ``data``..., then ``end`` (EOF)."""
        start = (await stream.recv_message()).start
        self.fake.calls.append(("TaskExecStdinWriteStream", start))
        ex, offset = self.exec(start.task_id, start.exec_id), start.offset
        while (msg := await stream.recv_message()) is not None:
            await ex.write_stdin(offset, msg.data, msg.HasField("end"))
            offset += len(msg.data)
        await stream.send_message(sr_pb2.TaskExecStdinWriteStreamResponse())

    @unary
    async def TaskExecWait(self, req: Any) -> sr_pb2.TaskExecWaitResponse:
        sb, ex = self.sandbox(req.task_id), self.exec(req.task_id, req.exec_id)
        await ex.proc.wait()
        if ex.timed_out:
            # The client starts its own deadline only once the start RPC has answered, a little after this
            # side's timer: were the kill's exit status sent, a busy machine would let it beat the client's
            # deadline (137 instead of -1). A timed-out exec has no status to give; the client's deadline
            # ends the wait (-1), or the sandbox's end does.
            await sb.finished.wait()
            raise GRPCError(Status.NOT_FOUND, f"task {req.task_id} finished")
        return sr_pb2.TaskExecWaitResponse(**ex.exit_status())

    @unary
    async def TaskExecPoll(self, req: Any) -> sr_pb2.TaskExecPollResponse:
        ex = self.exec(req.task_id, req.exec_id)
        return sr_pb2.TaskExecPollResponse(**({} if ex.timed_out else ex.exit_status()))  # see TaskExecWait
