"""The program that builds a package environment INSIDE a sandbox: `python -I -c SOURCE CONFIG`.

Standard library only; imports nothing from sandrun (its source is passed with `-c`, like the driver's).
CONFIG is JSON: `base` (the interpreter the venv is made from), `target` (the environment, the sandbox's
only writable host path), `packages` (pip requirements), `copy` (local project directories: built from a
private copy in /tmp, since builds write into their source tree), `pip` (a sys.path entry holding sandrun's
pip, or null to use a pip inside the venv), `pip_args`, `proxy` (the unix socket of the index proxy, or
null) and `limits` (RLIMIT_* name -> value).

With a proxy, a relay listens on the sandbox's own 127.0.0.1 and carries each connection to the unix socket:
pip is given `--proxy http://127.0.0.1:PORT` (and HTTPS_PROXY, for the pip that installs build dependencies),
its only way to the network. Last, one line starting with
`RESULT` says what happened: `{"installed": [...]}` or `{"failed": step, "status": N}`.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
from typing import Any

RESULT = "sandrun-build-result: "
PIP_MAIN = (
    "import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
    "runpy.run_module('pip', run_name='__main__', alter_sys=True)"
)
"""Runs pip from a sys.path entry given as the first argument (an isolated interpreter ignores PYTHONPATH)."""


def pump(source: socket.socket, sink: socket.socket, done: threading.Semaphore) -> None:
    """Copy `source` to `sink` until `source` ends; the second pump to finish closes both."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
    if not done.acquire(blocking=False):
        source.close()
        sink.close()


def relay(listener: socket.socket, path: str) -> None:
    """Carry each TCP connection made to `listener` to the unix socket at `path`."""
    while True:
        client, _ = listener.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(path)
        except OSError:
            client.close()
            upstream.close()
            continue
        done = threading.Semaphore(1)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=pump, args=(source, sink, done), daemon=True).start()


def step(what: str, argv: list[str]) -> None:
    """Run one step; on failure, say which and exit with its status."""
    sys.stdout.flush()
    status = subprocess.run(argv, stdin=subprocess.DEVNULL).returncode
    if status != 0:
        print(f"\n{RESULT}{json.dumps({'failed': what, 'status': status})}", flush=True)
        sys.exit(1)


def main(config: dict[str, Any]) -> None:
    """Make the venv, install the packages, report what got installed."""
    os.dup2(1, 2)  # one stream back to the host, in the order things were said
    os.umask(0o022)  # everything readable by the later sandboxes, whatever uid they run as
    for name, value in config["limits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    base, target, pip = str(config["base"]), str(config["target"]), config["pip"]
    python = os.path.join(target, "bin", "python")
    step(
        "creating the virtual environment",
        [base, "-I", "-m", "venv", *(["--without-pip"] if pip else []), target],
    )
    packages = [str(p) for p in config["packages"]]
    copies = [str(p) for p in config["copy"]]
    for number, source in enumerate(copies):
        private = os.path.join("/tmp/sandrun-src", f"{number}-{os.path.basename(source)}")
        shutil.copytree(source, private, symlinks=True)
        packages = [private if p == source else p for p in packages]
    proxy: list[str] = []
    if config["proxy"]:
        listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=relay, args=(listener, str(config["proxy"])), daemon=True).start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        proxy = ["--proxy", url]
        # pip does not hand --proxy to the pip it starts for build dependencies: that one reads these.
        os.environ.update({name: url for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")})
        for name in ("NO_PROXY", "no_proxy"):
            os.environ.pop(name, None)
    if packages:
        command = [sys.executable, "-I", "-c", PIP_MAIN, str(pip)] if pip else [python, "-I", "-m", "pip"]
        pip_args = [str(a) for a in config["pip_args"]]
        if pip:
            command += ["--python", python]
        step(f"installing {', '.join(config['packages'])}", [*command, *pip_args, *proxy, *packages])
    import importlib.metadata

    sites = glob.glob(os.path.join(target, "lib", "*", "site-packages"))
    dists = importlib.metadata.distributions(path=sites)
    installed = sorted(f"{dist.metadata['Name']}=={dist.version}" for dist in dists)
    print(f"\n{RESULT}{json.dumps({'installed': installed})}", flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
