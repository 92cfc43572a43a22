"""Promise 5: the environment. A secret in sandrun's own environment is not visible inside, neither in
`os.environ` nor in any process's /proc/PID/environ; only the recipe's variables and the minimal PATH, HOME,
LANG (plus the SANDRUN_SESSION marker and MPLBACKEND) are. The recipe's own variable being visible is the
control.
"""

from __future__ import annotations

import secrets

import pytest

from tests.security.sandboxes import StartSandbox, run, value

ALLOWED = {"PATH", "HOME", "LANG", "SANDRUN_SESSION", "PWD", "MPLBACKEND"}
"""The variables every sandbox has. PWD is set by bubblewrap's --chdir to the work directory; MPLBACKEND
(Agg) by the driver, so that plotting never opens a window."""

PROBE = """
import os
blobs = {}
for pid in [p for p in os.listdir("/proc") if p.isdigit()] + ["self"]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            blobs[pid] = f.read()
    except OSError as e:
        blobs[pid] = type(e).__name__.encode()
(dict(os.environ), {pid: blob.decode("utf-8", "replace") for pid, blob in blobs.items()}, os.getcwd())
"""


def test_host_secret_is_not_visible(sandbox: StartSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = secrets.token_hex(16)
    monkeypatch.setenv("SANDRUN_TEST_HOST_SECRET", secret)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    wanted = secrets.token_hex(8)
    environ, proc_environ, workdir = value(run(sandbox(env={"RECIPE_VARIABLE": wanted}), PROBE))
    assert environ["RECIPE_VARIABLE"] == wanted  # control: the probe does see the environment
    assert secret not in repr(environ)
    assert "self" in proc_environ and f"RECIPE_VARIABLE={wanted}" in proc_environ["self"]
    assert [pid for pid, text in proc_environ.items() if secret in text] == []
    assert len(proc_environ) >= 3, "bubblewrap's init, the driver and self: the scan must see them"
    assert set(environ) - ALLOWED == {"RECIPE_VARIABLE"}
    assert environ["HOME"] == workdir
    assert environ.get("PWD", workdir) == workdir
    assert environ["LANG"] == "C.UTF-8"
    assert environ["MPLBACKEND"] == "Agg"
