"""`sandrun.safefs`: file operations below a held directory that never follow a symbolic link out of it.

Each refusal is paired with its control: the same link followed by an ordinary path operation reaches the
place outside (so the test could fail), and an ordinary file at the same name goes through.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandrun import safefs
from sandrun.backends.local import give_back


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A directory `inside` held open, and its path; `tmp_path / "outside"` is where links point."""
    inside = tmp_path / "inside"
    inside.mkdir()
    (tmp_path / "outside").mkdir()
    directory = safefs.open_directory(inside)
    yield directory, inside
    os.close(directory)


def read(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../../x", "", "."])
def test_only_relative_paths_below_are_taken(bad: str) -> None:
    with pytest.raises(ValueError):
        safefs.parts_of(bad)


def test_relative_paths_become_their_components() -> None:
    assert safefs.parts_of("a/./b//c") == ("a", "b", "c")


def test_open_file_refuses_a_link_at_the_end_or_on_the_way(held: tuple[int, Path], tmp_path: Path) -> None:
    directory, inside = held
    (tmp_path / "outside" / "secret").write_text("outside")
    (inside / "file-link").symlink_to(tmp_path / "outside" / "secret")
    (inside / "dir-link").symlink_to(tmp_path / "outside")
    for name in ("file-link", "dir-link/secret"):
        with pytest.raises(safefs.LinkRefused) as caught:
            safefs.open_file(directory, name)
        assert caught.value.errno == errno.ELOOP
        assert "symbolic link" in caught.value.strerror
        assert (inside / name).read_text() == "outside"  # control: followed, the link reaches outside
    (inside / "real").mkdir()
    (inside / "real" / "file").write_text("inside")
    assert read(safefs.open_file(directory, "real/file")) == b"inside"


def test_a_file_where_a_directory_must_be_is_refused_too(held: tuple[int, Path]) -> None:
    directory, inside = held
    (inside / "plain").write_text("x")
    with pytest.raises(safefs.LinkRefused, match="plain"):
        safefs.open_file(directory, "plain/below")


def test_open_below_follows_links_that_stay_inside_and_refuses_those_that_leave(tmp_path: Path) -> None:
    inside = tmp_path / "inside"
    (inside / "data").mkdir(parents=True)
    (inside / "data" / "real.csv").write_text("inside")
    (inside / "alias.csv").symlink_to("data/real.csv")
    (inside / "shortcut").symlink_to("data")
    (tmp_path / "outside.csv").write_text("outside")
    (inside / "escape.csv").symlink_to("../outside.csv")
    (inside / "up").symlink_to("..")
    assert read(safefs.open_below(inside, "alias.csv")) == b"inside"
    assert read(safefs.open_below(inside, "shortcut/real.csv")) == b"inside"
    for name in ("escape.csv", "up/outside.csv"):
        with pytest.raises(safefs.LinkRefused, match="leads out of"):
            safefs.open_below(inside, name)
        assert (inside / name).read_text() == "outside"  # control


def test_open_below_does_not_block_on_a_fifo(held: tuple[int, Path]) -> None:
    directory, inside = held
    os.mkfifo(inside / "fifo")
    fd = safefs.open_file(directory, "fifo")  # returns at once: O_NONBLOCK; the caller checks the type
    assert stat.S_ISFIFO(os.fstat(fd).st_mode)
    os.close(fd)


def test_copy_in_makes_directories_and_replaces_a_link_at_the_name(
    held: tuple[int, Path], tmp_path: Path
) -> None:
    directory, inside = held
    source = tmp_path / "source"
    source.write_bytes(b"payload" * 1000)
    target = tmp_path / "outside" / "target"
    target.write_text("untouched")
    (inside / "payload").symlink_to(target)
    with open(source, "rb") as reader:
        safefs.copy_in(directory, "payload", reader.fileno())
    with open(source, "rb") as reader:
        safefs.copy_in(directory, "new/deeper/file", reader.fileno())
    assert target.read_text() == "untouched"
    assert not (inside / "payload").is_symlink()
    assert (inside / "payload").read_bytes() == source.read_bytes()
    assert (inside / "new" / "deeper" / "file").read_bytes() == source.read_bytes()
    assert sorted(p.name for p in inside.iterdir()) == ["new", "payload"]  # no temporary file left
    # Control: an ordinary copy to the same name writes through a link.
    (inside / "again").symlink_to(target)
    shutil.copyfile(source, inside / "again")
    assert target.read_bytes() == source.read_bytes()


def test_copy_in_replaces_a_hard_link_rather_than_write_into_it(
    held: tuple[int, Path], tmp_path: Path
) -> None:
    directory, inside = held
    other = tmp_path / "outside" / "other"
    other.write_text("untouched")
    os.link(other, inside / "name")
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"new")
    os.close(write_fd)
    safefs.copy_in(directory, "name", read_fd)
    os.close(read_fd)
    assert other.read_text() == "untouched"
    assert (inside / "name").read_text() == "new"
    os.link(other, inside / "again")
    (inside / "again").write_text("through")  # control: an ordinary write goes into the shared inode
    assert other.read_text() == "through"


def test_copy_in_refuses_a_linked_directory_on_the_way(held: tuple[int, Path], tmp_path: Path) -> None:
    directory, inside = held
    (inside / "sub").symlink_to(tmp_path / "outside")
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    with pytest.raises(safefs.LinkRefused, match="sub is a symbolic link"):
        safefs.copy_in(directory, "sub/f", read_fd)
    os.close(read_fd)
    assert list((tmp_path / "outside").iterdir()) == []
    (inside / "sub" / "f").write_text("x")  # control: an ordinary write lands outside
    assert (tmp_path / "outside" / "f").exists()


def test_replace_keeps_the_mode_without_set_id_bits_and_cleans_up_on_failure(held: tuple[int, Path]) -> None:
    directory, inside = held
    (inside / "report").write_text("old")
    (inside / "report").chmod(0o6640)
    safefs.replace(directory, "report", lambda fd: safefs.write_all(fd, b"new"), keep_mode=True)
    assert stat.S_IMODE((inside / "report").stat().st_mode) == 0o640
    assert (inside / "report").read_text() == "new"

    def fail(fd: int) -> None:
        raise OSError(errno.ENOSPC, "no space")

    with pytest.raises(OSError, match="no space"):
        safefs.replace(directory, "report", fail)
    assert (inside / "report").read_text() == "new"
    assert os.listdir(inside) == ["report"]


def test_walk_never_enters_a_link(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "file").write_text("x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "far").write_text("x")
    (root / "link").symlink_to(tmp_path / "outside")
    seen = sorted(name for _, name in safefs.walk(root))
    assert seen == ["file", "link", "sub"]
    assert "far" in {name for _, _, names in os.walk(root, followlinks=True) for name in names}  # control


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_give_back_touches_only_the_sandboxs_files_and_no_link_target(tmp_path: Path) -> None:
    sandbox_uid, owner = 2_000_000_123, (4321, 4321)
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "far").write_text("x")
    (work / "sub" / "made").write_text("x")
    (work / "sub" / "made").chmod(0o6755)
    (work / "link").symlink_to(outside)
    (work / "kept").write_text("x")
    for path in (work, work / "sub", work / "sub" / "made", outside / "far"):
        os.chown(path, sandbox_uid, sandbox_uid)
    os.chown(work / "link", sandbox_uid, sandbox_uid, follow_symlinks=False)
    give_back(work, sandbox_uid, owner)
    for path in (work, work / "sub", work / "sub" / "made", work / "link"):
        assert (path.lstat().st_uid, path.lstat().st_gid) == owner, path
    assert stat.S_IMODE((work / "sub" / "made").stat().st_mode) == 0o755
    assert (outside / "far").stat().st_uid == sandbox_uid  # behind the link: not touched
    assert (work / "kept").stat().st_uid == 0  # not the sandbox's: not touched


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_give_back_of_a_workdir_named_through_a_link(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "alias").symlink_to(work)
    os.chown(work, 2_000_000_123, 2_000_000_123)
    give_back(tmp_path / "alias", 2_000_000_123, (4321, 4321))
    assert (work.stat().st_uid, work.stat().st_gid) == (4321, 4321)
