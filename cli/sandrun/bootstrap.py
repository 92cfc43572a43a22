"""How the driver gets into a sandbox: a few hundred bytes on the command line, the driver itself on stdin.

The interpreter is started as `python -I -u -c BOOT`. BOOT reads, from stdin, the host's bytecode magic
number (4 bytes), then two length-prefixed parts: the driver compiled by the host (`marshal` data) and the
driver's source. It runs the compiled code when the sandbox interpreter's magic number is the host's (the
same bytecode format: the usual case, where the sandbox runs sandrun's own interpreter), and compiles the
source otherwise (another `python:`). Both parts are always sent: the choice is made inside, so the host
believes nothing the sandbox says about itself, and the start needs no round trip.
"""

from __future__ import annotations

import marshal
import os
import struct
from functools import cache
from importlib.util import MAGIC_NUMBER, cache_from_source
from types import CodeType

__all__ = ["BOOT", "DRIVER_FILENAME", "boot_argv", "driver_payload", "driver_source"]

DRIVER_FILENAME = "<sandrun-driver>"
"""The driver's code objects' file name (the driver leaves its own frames out of tracebacks by it)."""
BOOT = (
    "import os,marshal as m,_frozen_importlib_external as e\n"
    "def r(n):\n"
    " b=b''\n"
    " while len(b)<n:\n"
    "  c=os.read(0,n-len(b))\n"
    "  if not c:raise SystemExit('sandrun: bootstrap input ended early')\n"
    "  b+=c\n"
    " return b\n"
    "k=r(4);c=r(int(r(10)));s=r(int(r(10)))\n"
    "exec(m.loads(c)if k==getattr(e,'MAGIC_NUMBER',0)else compile(s,'<sandrun-driver>','exec'),"
    "{'__name__':'__main__'})\n"
)
"""Runs first inside the sandbox: reads the magic number and both parts, then runs the driver."""


DRIVER = os.path.join(os.path.dirname(__file__), "driver.py")
"""The driver's file, read beside this module (`importlib.resources` costs more to import)."""


@cache
def driver_source() -> bytes:
    """The driver program's source."""
    with open(DRIVER, "rb") as file:
        return file.read()


@cache
def driver_payload() -> bytes:
    """What BOOT reads on stdin: magic number, then the compiled driver and its source, each after its
    length in 10 digits."""
    source = driver_source()
    code = marshal.dumps(driver_code(DRIVER, source))
    return b"%s%010d%s%010d%s" % (MAGIC_NUMBER, len(code), code, len(source), source)


def driver_code(path: str, source: bytes) -> CodeType:
    """`source` (the content of `path`) compiled as the driver, without `-O` (the sandbox's interpreter
    has none): taken from the bytecode cache that installing sandrun wrote when that matches the file (as
    an import would check it), else compiled now."""
    try:
        with open(cache_from_source(path, optimization=""), "rb") as file:
            cached = file.read()
        info = os.stat(path)
    except (OSError, NotImplementedError, ValueError):
        cached = b""
    else:
        header = MAGIC_NUMBER + struct.pack("<III", 0, int(info.st_mtime) & 0xFFFFFFFF, len(source))
        if cached[:16] == header and info.st_size == len(source):
            try:
                return renamed(marshal.loads(cached[16:]), DRIVER_FILENAME)
            except (EOFError, ValueError, TypeError):
                pass  # a damaged cache file: compile
    return compile(source, DRIVER_FILENAME, "exec", dont_inherit=True, optimize=0)


def renamed(code: CodeType, filename: str) -> CodeType:
    """`code` and every code object within it, with `filename` as their file name."""
    consts = tuple(renamed(c, filename) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def boot_argv(python: str) -> list[str]:
    """The command that starts the driver: isolated mode (-I) ignores PYTHON* variables and user site."""
    return [python, "-I", "-u", "-c", BOOT]
