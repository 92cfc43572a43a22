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
from functools import cache
from importlib.util import MAGIC_NUMBER

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


@cache
def driver_source() -> bytes:
    """The driver program's source (read beside this module: `importlib.resources` costs more to import)."""
    with open(os.path.join(os.path.dirname(__file__), "driver.py"), "rb") as file:
        return file.read()


@cache
def driver_payload() -> bytes:
    """What BOOT reads on stdin: magic number, then the compiled driver and its source, each after its
    length in 10 digits. Compiled once per host process, without `-O` (the sandbox's interpreter has none)."""
    source = driver_source()
    code = marshal.dumps(compile(source, DRIVER_FILENAME, "exec", dont_inherit=True, optimize=0))
    return b"%s%010d%s%010d%s" % (MAGIC_NUMBER, len(code), code, len(source), source)


def boot_argv(python: str) -> list[str]:
    """The command that starts the driver: isolated mode (-I) ignores PYTHON* variables and user site."""
    return [python, "-I", "-u", "-c", BOOT]
