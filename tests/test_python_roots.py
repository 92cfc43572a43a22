"""Which directories an interpreter may make visible in the sandbox (`python_roots`), by real path.

Each refusal comes with its control: the same layout, without the one thing that is refused, is accepted.
"""

from __future__ import annotations

import os
import sys
import venv
from pathlib import Path

import pytest

from sandrun.backends import local_host
from sandrun.backends.local_host import python_roots, venv_home
from sandrun.errors import BackendError


def fake_prefix(path: Path) -> Path:
    """A directory that looks like a Python installation (`lib/python3.X/os.py`), and its bin/python."""
    (path / "lib" / "python3.99").mkdir(parents=True)
    (path / "lib" / "python3.99" / "os.py").write_text("")
    (path / "bin").mkdir()
    (path / "bin" / "python").write_text("")
    return path / "bin" / "python"


def test_a_venv_whose_python_links_to_its_base_gives_the_venv_and_the_base(tmp_path: Path) -> None:
    venv.create(tmp_path / "venv", symlinks=True)
    roots = python_roots(str(tmp_path / "venv" / "bin" / "python"))
    assert tmp_path / "venv" in roots
    base = Path(os.path.realpath(sys.base_prefix))
    assert base in {Path(os.path.realpath(root)) for root in roots} or base == Path("/usr")


def test_a_prefix_that_is_a_home_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = fake_prefix(tmp_path / "alice")
    assert python_roots(str(python)) == [tmp_path / "alice"]  # control: not a home, accepted
    monkeypatch.setattr(local_host, "home_directories", lambda: frozenset({tmp_path / "alice"}))
    with pytest.raises(BackendError, match="does not look like a Python installation"):
        python_roots(str(python))


def test_a_prefix_that_holds_a_home_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = fake_prefix(tmp_path / "srv")
    bob = tmp_path / "srv" / "users" / "bob"
    monkeypatch.setattr(local_host, "home_directories", lambda: frozenset({bob}))
    with pytest.raises(BackendError, match="does not look like a Python installation"):
        python_roots(str(python))


def test_a_venv_home_may_not_name_a_home_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_prefix(tmp_path / "secret")
    python = fake_prefix(tmp_path / "venv")
    (tmp_path / "venv" / "lib" / "python3.99" / "site-packages").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text(f"home = {tmp_path / 'secret' / 'bin'}\n")
    assert tmp_path / "secret" in python_roots(str(python))  # control: an ordinary directory, bound
    monkeypatch.setattr(local_host, "home_directories", lambda: frozenset({tmp_path / "secret"}))
    with pytest.raises(BackendError, match="secret does not look like"):
        python_roots(str(python))


def test_a_symlinked_pyvenv_cfg_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "real.cfg").write_text("home = /somewhere/bin\n")
    assert venv_home(tmp_path / "real.cfg") == "/somewhere/bin"  # control
    (tmp_path / "pyvenv.cfg").symlink_to(tmp_path / "real.cfg")
    assert venv_home(tmp_path / "pyvenv.cfg") is None


def test_a_link_leaving_its_directory_is_refused_but_one_inside_it_is_not(tmp_path: Path) -> None:
    python = fake_prefix(tmp_path / "elsewhere" / "prefix")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "inner").symlink_to(tmp_path / "project" / "real")
    fake_prefix(tmp_path / "project" / "real")
    assert python_roots(str(tmp_path / "project" / "inner" / "bin" / "python"))  # stays in its directory
    (tmp_path / "project" / "outer").symlink_to(python.parent.parent)
    with pytest.raises(BackendError, match="symbolic link"):
        python_roots(str(tmp_path / "project" / "outer" / "bin" / "python"))


@pytest.mark.parametrize("python", ["/bin/python3", "//bin/python3", "/etc/../bin/python3"])
def test_slash_is_never_a_root_however_it_is_spelled(python: str) -> None:
    if not Path("/usr/bin/python3").exists():
        pytest.skip("no /usr/bin/python3 here")
    with pytest.raises(BackendError, match=r"^/ does not look like"):
        python_roots(python)
    assert python_roots("/usr/bin/python3") == []  # control: /usr is always bound, nothing more is needed


def test_a_venv_may_link_to_the_interpreter_of_any_python_installation(tmp_path: Path) -> None:
    """A venv made from another Python (a pyenv of another version): its bin/python leaves the venv for an
    interpreter file of a real installation. Control: the same link to a file of a non-installation."""
    base = fake_prefix(tmp_path / "elsewhere" / "pyenv" / "versions" / "3.99")
    python = fake_prefix(tmp_path / "project" / "venv")
    (python.parent.parent / "lib" / "python3.99" / "site-packages").mkdir()
    (python.parent.parent / "pyvenv.cfg").write_text(f"home = {base.parent}\n")
    python.unlink()
    python.symlink_to(base)
    assert set(python_roots(str(python))) == {python.parent.parent, base.parent.parent}
    (tmp_path / "elsewhere" / "bin").mkdir()
    (tmp_path / "elsewhere" / "bin" / "python").write_text("")
    python.unlink()
    python.symlink_to(tmp_path / "elsewhere" / "bin" / "python")
    with pytest.raises(BackendError, match="symbolic link"):
        python_roots(str(python))


def test_holds_a_home_is_true_for_a_home_and_its_ancestors_only(monkeypatch: pytest.MonkeyPatch) -> None:
    homes = frozenset({Path("/home/ann"), Path("/srv/users/bob")})
    monkeypatch.setattr(local_host, "home_directories", lambda: homes)
    holding = ("/", "/home", "/home/ann", "/srv", "/srv/users", "/srv/users/bob")
    assert all(local_host.holds_a_home(path) for path in holding)
    elsewhere = ("/home/ann/x", "/home/an", "/srv/user", "/srv/users/bobby", "/opt")
    assert not any(local_host.holds_a_home(path) for path in elsewhere)
