"""The sandbox started before the command line is read (`sandrun.early`): only for a command line that
leaves the sandbox as it is by default, only ever given to one recipe whose sandbox must look exactly like
it, and torn down when nobody takes it, whatever way the command ends."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from sandrun.backends import get_backend
from sandrun.backends.base import SandboxOptions
from sandrun.early import EarlySandbox, worth_starting
from sandrun.model import Recipe, RunStatus
from sandrun.prestart import Prestarter
from sandrun.readers import load_recipe
from sandrun.runner import RunControl, RunListener, RunOptions, run_many
from sandrun.session import DEFAULT_OUTPUT_LIMIT, CellRequest, Session
from tests.security.sandboxes import local_unavailable

pytestmark = pytest.mark.skipif(bool(local_unavailable()), reason="the local backend is unavailable")

DEFAULT: dict[str, str] = {}


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["run", "r.yaml"], DEFAULT, "local"),
        (["run"], DEFAULT, "local"),
        (["run", "a.yaml", "-q", "-j", "2", "--format", "json", "--report=x.json", "--keep-going"], DEFAULT,
         "local"),
        (["run", "a.yaml", "-j2", "--cell-timeout", "5", "--strict", "--no-network"], DEFAULT, "local"),
        (["run", "a.yaml", "--backend", "process"], DEFAULT, "process"),
        (["run", "a.yaml", "--backend=local"], {"SANDRUN_BACKEND": "process"}, "local"),
        (["run", "a.yaml"], {"SANDRUN_BACKEND": "process"}, "process"),
        (["run", "--", "--env"], DEFAULT, "local"),  # a recipe named --env
        (["run", "a.yaml", "--backend", "modal"], DEFAULT, None),  # costs money while it waits
        (["run", "a.yaml"], {"SANDRUN_BACKEND": "modal"}, None),
        (["run", "a.yaml"], {"SANDRUN_EARLY": "0"}, None),
        (["run", "a.yaml", "--env", "A=1"], DEFAULT, None),
        (["run", "a.yaml", "--env=A=1"], DEFAULT, None),
        (["run", "a.yaml", "--network"], DEFAULT, None),
        (["run", "a.yaml", "--python", "/usr/bin/python3"], DEFAULT, None),
        (["run", "a.yaml", "--workdir", "."], DEFAULT, None),
        (["run", "a.yaml", "--memory", "1G"], DEFAULT, None),
        (["run", "a.yaml", "--output-limit", "2M"], DEFAULT, None),
        (["run", "a.yaml", "--help"], DEFAULT, None),
        (["run", "a.yaml", "-qj2"], DEFAULT, None),  # not parsed here: not started
        (["run", "a.yaml", "--quiet=yes"], DEFAULT, None),
        (["cells", "a.yaml"], DEFAULT, None),
        (["--version"], DEFAULT, None),
        ([], DEFAULT, None),
    ],
)  # fmt: skip
def test_only_a_command_line_that_keeps_the_default_sandbox_starts_one_early(
    argv: list[str], environ: Mapping[str, str], expected: str | None
) -> None:
    assert worth_starting(argv, environ) == expected


def silent(recipe: Recipe) -> RunListener | None:
    return None


def start_early(options: SandboxOptions, first_cell: str = "") -> EarlySandbox:
    """A local sandbox as `sandrun.early` starts it, with `options`; `first_cell` runs in it first."""
    backend = get_backend("local", os.environ)
    session = Session.launch(backend, options, DEFAULT_OUTPUT_LIMIT)
    if first_cell:
        session.wait_ready()
        assert session.run(CellRequest(first_cell, "early.py", 1, 10)).status == "ok"
    return EarlySandbox(backend, options, DEFAULT_OUTPUT_LIMIT, session)


def run_with(early: EarlySandbox, paths: list[Path], jobs: int = 1) -> list[str]:
    """Run the recipes with `early` offered to them; the stdout of each recipe's cells."""
    runs = [(load_recipe(path), get_backend("local", os.environ)) for path in paths]
    transcripts = run_many(runs, RunOptions(), jobs, silent, RunControl(), early=early)
    assert [t.status for t in transcripts] == [RunStatus.PASSED] * len(paths), [t.reason for t in transcripts]
    return ["".join(r.stdout for r in t.results) for t in transcripts]


def test_a_recipe_with_default_settings_runs_in_the_sandbox_started_early(tmp_path: Path) -> None:
    early = start_early(SandboxOptions(), "open('/tmp/started-early', 'w').close()")
    session = early.session
    recipe = tmp_path / "r.yaml"
    recipe.write_text("cells:\n  - import os; print(os.path.exists('/tmp/started-early'))\n")
    assert run_with(early, [recipe]) == ["True\n"]
    assert early.session is None
    assert session is not None and session.channel.returncode is not None  # closed after its recipe


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_sandbox_started_early_goes_to_one_recipe_only(tmp_path: Path, jobs: int) -> None:
    """Four recipes that all fit it: one sees what was left in it before, none sees another's leftovers."""
    early = start_early(SandboxOptions(), "open('/tmp/started-early', 'w').close()")
    probe = (
        "import os; print(os.path.exists('/tmp/started-early'), os.path.exists('/tmp/mark'))\n"
        "open('/tmp/mark', 'w').close()\n"
    )
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"r{i}.yaml")
        paths[-1].write_text("cells:\n  - |\n" + textwrap.indent(probe, "    "))
    seen = run_with(early, paths, jobs)
    assert sorted(seen) == ["False False\n"] * 3 + ["True False\n"]


def test_leftovers_in_a_sandbox_are_seen_by_the_probe_above() -> None:
    """Control: in one sandbox, the second run of the probe does see the mark the first one left."""
    session = Session.start(get_backend("local", os.environ), SandboxOptions())
    try:
        code = "import os; print(os.path.exists('/tmp/mark')); open('/tmp/mark', 'w').close()"
        assert [session.run(CellRequest(code, "c.py", 1, 10)).outputs[0].text for _ in range(2)] == [
            "False\n",
            "True\n",
        ]
    finally:
        session.close()


NETWORK_PROBE = "import socket; print(sorted(name for _, name in socket.if_nameindex()) != ['lo'])"
SETTINGS = {
    # name: (the sandbox started early, the recipe, its cell, what the recipe must print)
    "network": (
        SandboxOptions(network=True),
        "cells:\n  - " + NETWORK_PROBE + "\n",
        "False\n",
    ),
    "env": (
        SandboxOptions(env={"SECRET": "the early one's"}),
        "cells:\n  - import os; print(os.environ.get('SECRET'))\n",
        "None\n",
    ),
    "env of its own": (
        SandboxOptions(),
        "env:\n  SECRET: mine\ncells:\n  - import os; print(os.environ.get('SECRET'))\n",
        "mine\n",
    ),
    "files": (
        SandboxOptions(),
        "files: [data.txt]\ncells:\n  - print(open('data.txt').read())\n",
        "data\n\n",
    ),
    "python": (
        SandboxOptions(),
        "python: /usr/bin/python3.11\ncells:\n  - import sys; print(sys.executable)\n",
        "/usr/bin/python3.11\n",
    ),
}


def setting_case(tmp_path: Path, name: str) -> tuple[EarlySandbox, Path, str]:
    options, text, expected = SETTINGS[name]
    if name == "python" and not Path("/usr/bin/python3.11").exists():
        pytest.skip("needs /usr/bin/python3.11")
    if name == "network" and socket_names() == ["lo"]:
        pytest.skip("this machine has no network interface but the loopback")
    (tmp_path / "data.txt").write_text("data\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    return start_early(options), recipe, expected


def socket_names() -> list[str]:
    import socket

    return sorted(name for _, name in socket.if_nameindex())


@pytest.mark.parametrize("name", list(SETTINGS))
def test_a_recipe_never_gets_a_sandbox_started_with_other_settings(tmp_path: Path, name: str) -> None:
    early, recipe, expected = setting_case(tmp_path, name)
    session = early.session
    assert run_with(early, [recipe]) == [expected]
    assert early.session is None and session is not None
    assert session.channel.returncode is not None  # not used, and torn down


@pytest.mark.parametrize("name", list(SETTINGS))
def test_without_the_check_the_recipe_would_get_the_wrong_sandbox(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control for the test above: were every recipe to fit, each would see the early sandbox's settings."""
    early, recipe, expected = setting_case(tmp_path, name)
    monkeypatch.setattr(EarlySandbox, "fits", lambda *args: True)
    runs = [(load_recipe(recipe), get_backend("local", os.environ))]
    transcript = run_many(runs, RunOptions(), 1, silent, RunControl(), early=early)[0]
    assert "".join(r.stdout for r in transcript.results) != expected


def test_fits_compares_backend_settings_options_and_output_limit(tmp_path: Path) -> None:
    backend = get_backend("local", {})
    options = SandboxOptions()
    early = EarlySandbox(backend, options, DEFAULT_OUTPUT_LIMIT, session=None)  # type: ignore[arg-type]
    assert early.fits(get_backend("local", {}), replace(options, files_from=tmp_path), DEFAULT_OUTPUT_LIMIT)
    assert not early.fits(get_backend("process", {}), options, DEFAULT_OUTPUT_LIMIT)
    assert not early.fits(get_backend("local", {"SANDRUN_MEMORY_CGROUP": "0"}), options, DEFAULT_OUTPUT_LIMIT)
    assert not early.fits(get_backend("local", {"SANDRUN_BWRAP": "/x"}), options, DEFAULT_OUTPUT_LIMIT)
    assert not early.fits(backend, options, DEFAULT_OUTPUT_LIMIT + 1)
    limits = replace(options.limits, memory=1 << 30)
    for other in (
        replace(options, limits=limits),
        replace(options, workdir=tmp_path),
        replace(options, packages=("x",)),
        replace(options, files={"a": tmp_path / "a"}, files_from=tmp_path),
    ):
        assert not early.fits(backend, other, DEFAULT_OUTPUT_LIMIT)


def test_a_recipe_with_packages_never_takes_it(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("packages: [x]\ncells:\n  - pass\n")
    early = EarlySandbox(get_backend("local", {}), SandboxOptions(), DEFAULT_OUTPUT_LIMIT, session=None)  # type: ignore[arg-type]
    taken: list[bool] = []
    early.take = lambda: taken.append(True)  # type: ignore[method-assign]
    early.discard = lambda: None  # type: ignore[method-assign]
    Prestarter([(load_recipe(recipe), get_backend("local", {}))], RunOptions(), 2, RunControl()).adopt(early)
    assert taken == []


# The command: whatever way it ends, nothing it started early is left behind. A subreaper runs it: every
# process it leaves behind becomes the subreaper's child, and is counted.
SUBREAPER = """
import ctypes, os, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
proc = subprocess.Popen(sys.argv[3:], stderr=subprocess.PIPE, text=True)
delay, signum = float(sys.argv[1]), int(sys.argv[2])
if delay >= 0:
    time.sleep(delay)
    proc.send_signal(signum)
_, err = proc.communicate()
sys.stderr.write(err)
time.sleep(0.2)
while True:  # processes that ended, and were handed to us to reap: not left behind
    try:
        if os.waitpid(-1, os.WNOHANG)[0] == 0:
            break
    except ChildProcessError:
        break
left = []
for task in os.listdir("/proc/self/task"):
    left += open(f"/proc/self/task/{task}/children").read().split()
print(proc.returncode, len(left))
for pid in left:
    os.kill(int(pid), 9)
"""


def command_leaves(
    tmp_path: Path, argv: list[str], signal_after: float = -1, signum: int = signal.SIGTERM, **env: str
) -> tuple[int, int, str, list[str]]:
    """Run `argv` under a subreaper (`signum` after `signal_after` seconds when that is not negative):
    its exit code, how many processes it left behind, its stderr, and what it left in its TMPDIR."""
    # Where sandrun stages a sandbox: reachable by the sandbox's own uid (pytest's directory is not).
    tmp = Path(tempfile.mkdtemp(prefix="sandrun-early-test-"))
    tmp.chmod(0o755)
    try:
        environ = {**os.environ, "TMPDIR": str(tmp), "SANDRUN_DEBUG": "1", **env}
        done = subprocess.run(
            [sys.executable, "-c", SUBREAPER, str(signal_after), str(int(signum)), *argv],
            capture_output=True, text=True, env=environ, timeout=120,
        )  # fmt: skip
        code, left = map(int, done.stdout.split())
        return code, left, done.stderr, sorted(os.listdir(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


SANDRUN = [sys.executable, "-m", "sandrun"]


def test_the_census_sees_a_process_left_behind(tmp_path: Path) -> None:
    """Control for the tests below: a command that leaves a process behind is caught."""
    code, left, _, files = command_leaves(
        tmp_path, ["sh", "-c", "sleep 30 </dev/null >/dev/null 2>&1 & mktemp -d >/dev/null; exit 2"]
    )
    assert (code, left) == (2, 1)
    assert len(files) == 1


def test_bad_input_exits_2_and_leaves_nothing_behind(tmp_path: Path) -> None:
    code, left, stderr, files = command_leaves(tmp_path, [*SANDRUN, "run", str(tmp_path / "missing.yaml")])
    assert code == 2, stderr
    assert "started early" in stderr and "torn down" in stderr
    assert (left, files) == (0, [])


def test_a_bad_option_after_the_recipes_were_read_leaves_nothing_behind(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("cells:\n  - pass\n")
    code, left, stderr, files = command_leaves(tmp_path, [*SANDRUN, "run", str(recipe), "--format", "nope"])
    assert code == 2, stderr
    assert "started early" in stderr and "torn down" in stderr
    assert (left, files) == (0, [])


def test_the_command_runs_its_recipe_in_the_sandbox_started_early(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("cells:\n  - print('hi')\n")
    code, left, stderr, files = command_leaves(tmp_path, [*SANDRUN, "run", str(recipe), "-q"])
    assert code == 0, stderr
    assert f"the sandbox started early is for {recipe}" in stderr
    assert (left, files) == (0, [])


def test_a_recipe_that_does_not_fit_runs_in_its_own_and_the_early_one_is_torn_down(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("env:\n  A: '1'\ncells:\n  - import os; print(os.environ['A'])\n")
    code, left, stderr, files = command_leaves(tmp_path, [*SANDRUN, "run", str(recipe), "-q"])
    assert code == 0, stderr
    assert "started early" in stderr and "torn down" in stderr
    assert (left, files) == (0, [])


def test_sandrun_early_0_starts_none(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("cells:\n  - pass\n")
    code, _, stderr, _ = command_leaves(tmp_path, [*SANDRUN, "run", str(recipe), "-q"], SANDRUN_EARLY="0")
    assert code == 0, stderr
    assert "debug" not in stderr


# A Ctrl-C in the interpreter's own first milliseconds (before sandrun's entry point runs) is the
# interpreter's to report, with its traceback; SIGTERM then simply ends it.
@pytest.mark.parametrize(
    ("after", "signum"),
    [(0.05, signal.SIGTERM)]
    + [(t, s) for t in (0.2, 0.4, 0.8, 1.6) for s in (signal.SIGTERM, signal.SIGINT)],
)
def test_a_signal_at_any_moment_leaves_nothing_behind(tmp_path: Path, after: float, signum: int) -> None:
    """Ctrl-C or SIGTERM at different moments: while the sandbox starts, while typer is imported, while the
    recipe is read or runs. The command ends (130, or as the signal ends a process before sandrun has
    anything to clean up; 1 for a Ctrl-C while the command line is parsed) and leaves nothing."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("cells:\n  - import time; time.sleep(30)\n")
    started = time.monotonic()
    code, left, stderr, files = command_leaves(
        tmp_path, [*SANDRUN, "run", str(recipe)], signal_after=after, signum=signum
    )
    assert time.monotonic() - started < 30
    assert code in (130, 1, -signum), stderr
    if "started early" in stderr:  # sandrun's own handlers were in place (not only the interpreter's)
        assert "Traceback" not in stderr
    assert (left, files) == (0, [])
