"""Promise 8: what sandrun reads and writes on the host for a recipe never follows a link out.

The attacker is a recipe run with `--workdir DIR`: the sandbox owns DIR during the run and leaves links
there (`payload.sh -> a host file`, a subdirectory replaced by a link to a host directory) for the next run,
whose `files:` sandrun copies in on the host, as root when sandrun is root. Also: a `files:` entry whose
path leads out of the recipe's directory through a link swapped in after the recipe was read, and
`--update` of a recipe that is a link to a file elsewhere. Each attack has its control: the same planted
link, given to an ordinary host-side copy or write, does reach the place outside.

`--disk` does not bound a `--workdir` (a host directory bound in cannot be size-limited): the last test
shows what happens, as the README says.
"""

from __future__ import annotations

import secrets
import shutil
import textwrap
from pathlib import Path

import pytest

from sandrun.backends.base import Limits
from sandrun.errors import BackendError
from tests.security.sandboxes import StartSandbox, run, sandrun_cli, value

BACKENDS = ["local", "process"]


def write_recipe(folder: Path, name: str, files: list[str], cell: str) -> Path:
    """`folder/name`: a YAML recipe with these `files:` and one cell."""
    folder.mkdir(parents=True, exist_ok=True)
    body = textwrap.indent(textwrap.dedent(cell).strip(), "    ")
    listed = f"files: [{', '.join(files)}]\n" if files else ""
    path = folder / name
    path.write_text(f"{listed}cells:\n  - |\n{body}\n")
    return path


def plant(tmp_path: Path, backend: str, link: str, target: Path) -> Path:
    """A first run with `--workdir` that leaves `link -> target` in the work directory; the directory."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    cell = f"import os\nos.symlink({str(target)!r}, {link!r})"
    first = write_recipe(tmp_path / "planter", "plant.yaml", [], cell)
    result = sandrun_cli(first, "--workdir", workdir, cwd=tmp_path, backend=backend)
    assert result.returncode == 0, result.stderr
    assert (workdir / link).readlink() == target, "control: the first run left its link on the host"
    return workdir


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_planted_file_link_is_replaced_not_written_through(tmp_path: Path, backend: str) -> None:
    target = tmp_path / "outside" / "victim"
    target.parent.mkdir()
    workdir = plant(tmp_path, backend, "payload.sh", target)
    payload = f"echo {secrets.token_hex(8)}\n"
    second = write_recipe(tmp_path / "recipe", "run.yaml", ["payload.sh"], "print(open('payload.sh').read())")
    (second.parent / "payload.sh").write_text(payload)
    result = sandrun_cli(second, "--workdir", workdir, cwd=tmp_path, backend=backend)
    assert result.returncode == 0, result.stderr
    assert not target.exists(), "the copy of `files:` wrote through the planted link"
    assert not (workdir / "payload.sh").is_symlink()
    assert (workdir / "payload.sh").read_text() == payload  # the recipe got its file
    # Control: an ordinary host-side copy to the same name, through a link planted the same way, writes
    # the host file.
    (workdir / "payload.sh").unlink()
    (workdir / "payload.sh").symlink_to(target)
    shutil.copyfile(second.parent / "payload.sh", workdir / "payload.sh")
    assert target.read_text() == payload


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_planted_directory_link_is_refused(tmp_path: Path, backend: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    workdir = plant(tmp_path, backend, "sub", outside)
    second = write_recipe(tmp_path / "recipe", "run.yaml", ["sub/f"], "print('ran')")
    (second.parent / "sub").mkdir()
    (second.parent / "sub" / "f").write_text("payload\n")
    result = sandrun_cli(second, "--workdir", workdir, cwd=tmp_path, backend=backend)
    assert result.returncode == 3, result.stderr
    assert "sub is a symbolic link" in result.stderr
    assert list(outside.iterdir()) == [], "the copy of `files:` wrote into the linked host directory"
    shutil.copyfile(second.parent / "sub" / "f", workdir / "sub" / "f")  # control: a plain copy lands outside
    assert (outside / "f").read_text() == "payload\n"


@pytest.mark.parametrize("backend", BACKENDS)
def test_files_cannot_be_read_through_a_link_out_of_the_recipe_directory(
    sandbox: StartSandbox, tmp_path: Path, backend: str
) -> None:
    """The reader refuses such a link; this is the same link swapped in after the recipe was read, when
    only the backend's own open stands between the recipe and the host file."""
    vault = tmp_path / "vault"
    vault.mkdir(mode=0o700)
    secret = "vault-" + secrets.token_hex(8)
    (vault / "key").write_text(secret)
    (vault / "key").chmod(0o644)  # the 0700 directory is what protects it
    recipe_dir = tmp_path / "recipe"
    recipe_dir.mkdir()
    (recipe_dir / "data").symlink_to(vault)
    files = {"data/key": recipe_dir / "data" / "key"}
    with pytest.raises(BackendError, match="leads out of"):
        sandbox(backend=backend, files=files, files_from=recipe_dir)
    # Control: guarding only the file itself (its own directory taken as trusted) lets the secret in.
    leaked = value(run(sandbox(backend=backend, files=files), "open('data/key').read()"))
    assert leaked == secret


def test_update_does_not_follow_a_recipe_link_out_of_its_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "victim.py"
    elsewhere.parent.mkdir()
    original = "# %%\nprint('new')\n# expect stdout:\n# old\n"
    elsewhere.write_text(original)
    found_in = tmp_path / "recipes"
    found_in.mkdir()
    (found_in / "outward.py").symlink_to(elsewhere)
    result = sandrun_cli(found_in / "outward.py", "--update", cwd=tmp_path, backend="process")
    assert "not updated" in result.stderr and "leads out of" in result.stderr, result.stderr
    assert elsewhere.read_text() == original
    # Control: a link that stays in the directory is followed, and the real file is updated.
    (found_in / "real.py").write_text(original)
    (found_in / "inward.py").symlink_to("real.py")
    result = sandrun_cli(found_in / "inward.py", "--update", cwd=tmp_path, backend="process")
    assert result.returncode == 0, result.stderr
    assert (found_in / "real.py").read_text() == original.replace("# old", "# new")
    assert (found_in / "inward.py").is_symlink()


FILL = """
import errno, os
def fill(path, most):
    written = 0
    try:
        with open(path, "wb", buffering=0) as f:
            while written < most:
                written += f.write(b"\\1" * (1 << 20))
    except OSError as e:
        return written, errno.errorcode[e.errno]
    finally:
        os.unlink(path)
    return written, None
fill("filler", 3 * LIMIT)
"""


def test_disk_does_not_bound_a_given_workdir(sandbox: StartSandbox, tmp_path: Path) -> None:
    """Documented, not a defence: `--disk` sizes the sandbox's own tmpfs work directory and /tmp; a host
    directory given with `--workdir` is bound as it is and holds what its filesystem holds."""
    limit = 4 << 20
    probe = FILL.replace("LIMIT", str(limit))
    limits = Limits(disk=limit)
    assert value(run(sandbox(limits=limits), probe)) == (limit, "ENOSPC")  # the default work directory
    workdir = tmp_path / "work"
    workdir.mkdir()
    assert value(run(sandbox(limits=limits, workdir=workdir), probe)) == (3 * limit, None)
