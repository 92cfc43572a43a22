"""`sandrun.AsyncSession`: `Session` for asyncio programs (a server running many interpreters at once).

Design: each AsyncSession owns one worker thread, and its blocking `Session` lives on it; every call is
handed to that thread and awaited. Sessions never wait for one another (each has its own thread; the loop
only awaits), calls of one session run in the order they were made, and the event loop is never blocked.
A thread per live session is cheap next to the sandbox it drives. Output callbacks are called on the event
loop's thread (scheduled from the worker), so they may touch loop objects (queues, websockets).
Cancelling a `run` that is in progress kills the sandbox (code cannot be stopped half-way otherwise): the
session is over, and the cancelled task sees `CancelledError` as usual.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

from sandrun.interpreter import Result, Session, TextCallback

T = TypeVar("T")


class AsyncSession:
    """An interpreter in a sandbox, driven from asyncio: `async with AsyncSession(...) as s:
    r = await s.run("1 + 1")`. Takes the same arguments as `Session`."""

    def __init__(self, backend: str = "local", **options: Any) -> None:
        """See `Session`: the same backend and options (callbacks are called on the event loop)."""
        self.on_stdout: TextCallback | None = options.pop("on_stdout", None)
        self.on_stderr: TextCallback | None = options.pop("on_stderr", None)
        self.session = Session(backend, **options)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandrun-session")

    async def start(self) -> AsyncSession:
        """Start the sandbox (see `Session.start`)."""
        await self._call(self.session.start)
        return self

    async def run(
        self,
        code: str,
        *,
        timeout: float | None = None,
        on_stdout: TextCallback | None = None,
        on_stderr: TextCallback | None = None,
    ) -> Result:
        """Run `code` (see `Session.run`); callbacks run on the event loop as output arrives."""
        loop = asyncio.get_running_loop()
        out = self._on_loop(loop, on_stdout or self.on_stdout)
        err = self._on_loop(loop, on_stderr or self.on_stderr)
        call = partial(self.session.run, code, timeout=timeout, on_stdout=out, on_stderr=err)
        try:
            return await self._call(call)
        except asyncio.CancelledError:
            self.session.interrupt()
            raise

    async def upload(self, name: str | os.PathLike[str], data: bytes) -> None:
        """Write a file in the work directory (see `Session.upload`)."""
        await self._call(partial(self.session.upload, name, data))

    async def download(self, name: str | os.PathLike[str]) -> bytes:
        """Read a file of the work directory (see `Session.download`)."""
        return await self._call(partial(self.session.download, name))

    async def close(self) -> None:
        """Stop the sandbox and the session's thread."""
        self.session.interrupt()  # a run still in progress returns at once
        await self._call(self.session.close)
        self._thread.shutdown(wait=False)

    @property
    def alive(self) -> bool:
        """Whether the interpreter is running and takes code."""
        return self.session.alive

    async def __aenter__(self) -> AsyncSession:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _call(self, function: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function)

    @staticmethod
    def _on_loop(loop: asyncio.AbstractEventLoop, callback: TextCallback | None) -> TextCallback | None:
        """`callback`, called on the loop's thread instead of the session's."""
        if callback is None:
            return None

        def on_loop(text: str) -> None:
            loop.call_soon_threadsafe(callback, text)

        return on_loop
