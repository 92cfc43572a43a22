"""Files in a Session's work directory, moved through the sandbox itself: never through a host path.

`Session.upload` and `Session.download` run small stdlib programs as hidden cells inside the sandbox, so they
can reach exactly what the cells can reach, and nothing of the host (on the `process` backend, that is what
the cells can reach too). Names are checked on the host first: relative, `/`-separated, no empty, `.` or
`..` part, no NUL. Inside, every part is opened below a descriptor of the work directory taken when the
session started (so a cell's `os.chdir` changes nothing), with `O_NOFOLLOW` at every step: a symbolic link
anywhere in the name, planted by a cell or not, is refused (`ELOOP`), and so is anything but a regular file
(a FIFO cannot make the call hang: files are opened non-blocking).
"""

from __future__ import annotations

import base64
import builtins
import os

CHUNK = 1 << 20
"""Bytes moved per hidden cell: the request and the answer stay a few MiB at most."""
ANSWER_LIMIT = 4 << 20
"""The output limit in force during a hidden cell: room for one base64 chunk as the cell's value."""
FILENAME = "<sandrun-files>"

_OPEN_WORKDIR = (
    "import os, sys\nsys._sandrun_workdir = os.open('.', os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)"
)
START = f"__import__('builtins').exec({_OPEN_WORKDIR!r}, {{}})"
"""Run once at the start: keeps a descriptor of the work directory for later transfers."""

HELPER = r'''
import base64, os, stat, sys

def directory(parts, create):
    fd = os.dup(sys._sandrun_workdir)
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = inner
        return fd
    except BaseException:
        os.close(fd)
        raise

def open_file(parts, flags):
    where = directory(parts[:-1], flags & os.O_CREAT)
    try:
        fd = os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644, dir_fd=where)
    finally:
        os.close(where)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(21, "not a regular file", "/".join(parts))
    return fd

class Answer:
    """The cell's value: the driver stores it as `_` first, then asks its repr, which puts `_` back."""

    def __init__(self, text, main):
        self.text, self.main, self.old = text, main, main.get("_", Answer)

    def __repr__(self):
        if self.old is Answer:
            self.main.pop("_", None)
        else:
            self.main["_"] = self.old
        return self.text

if REQUEST["op"] == "put":
    mode = os.O_CREAT | os.O_TRUNC if REQUEST["first"] else os.O_APPEND
    fd = open_file(REQUEST["parts"], os.O_WRONLY | mode)
    try:
        view = memoryview(base64.b64decode(REQUEST["data"]))
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    ANSWER = None
else:
    fd = open_file(REQUEST["parts"], os.O_RDONLY)
    try:
        data = os.pread(fd, REQUEST["size"], REQUEST["offset"])
    finally:
        os.close(fd)
    ANSWER = Answer(base64.b64encode(data).decode("ascii"), sys.modules["__main__"].__dict__)
'''
"""The program of every transfer; `REQUEST` is set before it runs, `ANSWER` is the cell's value."""


def name_parts(name: str | os.PathLike[str]) -> list[str]:
    """The parts of a name in the work directory; `ValueError` for anything that could leave it."""
    text = os.fspath(name)
    if not isinstance(text, str) or not text:
        raise ValueError(f"{name!r} is not a file name in the work directory")
    if "\0" in text:
        raise ValueError(f"{text!r}: a file name cannot contain NUL")
    if text.startswith("/"):
        raise ValueError(f"{text!r} is an absolute path: name a file in the work directory, e.g. 'data.csv'")
    parts = text.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"{text!r}: a name in the work directory has no empty, '.' or '..' parts")
    return parts


def transfer_cell(request: dict[str, object]) -> str:
    """The hidden cell that runs `HELPER` for `request`, in a namespace of its own."""
    # A lambda: its namespace is its own, so the cell assigns nothing in the user's.
    run_helper = f"__import__('builtins').exec({HELPER!r}, ns) or ns['ANSWER']"
    return f"(lambda ns: {run_helper})({{'REQUEST': {request!r}}})"


def put_request(parts: list[str], chunk: bytes, first: bool) -> dict[str, object]:
    """A request that writes `chunk` to the file (truncating it first if `first`)."""
    return {"op": "put", "parts": parts, "first": first, "data": base64.b64encode(chunk).decode("ascii")}


def get_request(parts: list[str], offset: int) -> dict[str, object]:
    """A request for the file's bytes from `offset`, one chunk."""
    return {"op": "get", "parts": parts, "offset": offset, "size": CHUNK}


def decode_answer(value: str | None) -> bytes:
    """The bytes of a `get` answer; `OSError` if the sandbox answered something that is not base64."""
    try:
        return base64.b64decode((value or "").encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise OSError("the sandbox answered a download with something that is not base64") from None


def file_error(verb: str, name: str, error_type: str, message: str) -> OSError:
    """The host-side exception for a transfer that failed inside: the same `OSError` subclass when the
    sandbox raised a builtin one (`FileNotFoundError`), else `OSError`."""
    cls = getattr(builtins, error_type, None)
    if not (isinstance(cls, type) and issubclass(cls, OSError)):
        cls = OSError
    return cls(f"cannot {verb} {name!r} in the sandbox: {error_type}: {message}")
