"""Attacks on `Session.upload`/`download`: links a cell plants in the work directory must not be followed.

On the `process` backend a followed link reaches the host's files (the cells could too, but a program that
downloads a "result file" must not be tricked into reading a secret, or an upload into overwriting one).
Each attack has its control: the same transfer with `O_NOFOLLOW` taken out of the in-sandbox program
succeeds, so the refusal is the defence's doing, not an accident of the setup.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import sandrun
from sandrun import session_files
from tests.security.sandboxes import local_unavailable


@pytest.fixture
def without_nofollow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: transfers that follow links (what a plain `open(name)` would do)."""
    monkeypatch.setattr(session_files, "HELPER", session_files.HELPER.replace("os.O_NOFOLLOW | ", ""))
    assert "O_NOFOLLOW" not in session_files.HELPER


@pytest.fixture
def process_session() -> Iterator[sandrun.Session]:
    with sandrun.Session(backend="process", timeout=30) as live:
        yield live


@pytest.fixture
def host_secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret\n")
    return secret


def plant(session: sandrun.Session, link: str, target: Path) -> None:
    assert session.run(f"import os; os.symlink({str(target)!r}, {link!r})").ok


def test_download_refuses_a_link_planted_by_a_cell(
    process_session: sandrun.Session, host_secret: Path
) -> None:
    plant(process_session, "result.txt", host_secret)
    with pytest.raises(OSError, match=r"result\.txt") as refused:
        process_session.download("result.txt")
    assert "host secret" not in str(refused.value)


def test_control_download_following_links_reads_the_host_secret(
    process_session: sandrun.Session, host_secret: Path, without_nofollow: None
) -> None:
    plant(process_session, "result.txt", host_secret)
    assert process_session.download("result.txt") == b"host secret\n"


def test_upload_refuses_a_planted_link_and_the_host_file_is_unchanged(
    process_session: sandrun.Session, host_secret: Path
) -> None:
    plant(process_session, "input.csv", host_secret)
    with pytest.raises(OSError):
        process_session.upload("input.csv", b"overwritten")
    assert host_secret.read_text() == "host secret\n"


def test_control_upload_following_links_overwrites_the_host_file(
    process_session: sandrun.Session, host_secret: Path, without_nofollow: None
) -> None:
    plant(process_session, "input.csv", host_secret)
    process_session.upload("input.csv", b"overwritten")
    assert host_secret.read_text() == "overwritten"


def test_a_linked_directory_in_the_name_is_refused(process_session: sandrun.Session, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    plant(process_session, "data", outside)
    with pytest.raises(OSError):
        process_session.upload("data/new.txt", b"x")
    with pytest.raises(OSError):
        process_session.download("data/new.txt")
    assert list(outside.iterdir()) == []


def test_control_a_linked_directory_followed_receives_the_file(
    process_session: sandrun.Session, tmp_path: Path, without_nofollow: None
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    plant(process_session, "data", outside)
    process_session.upload("data/new.txt", b"x")
    assert (outside / "new.txt").read_bytes() == b"x"


def test_a_fifo_planted_by_a_cell_is_refused_without_hanging(process_session: sandrun.Session) -> None:
    assert process_session.run("import os; os.mkfifo('pipe')").ok
    with pytest.raises(OSError, match="not a regular file"):
        process_session.download("pipe")
    with pytest.raises(OSError):  # no reader: ENXIO at once (with a reader it would be "not a regular file")
        process_session.upload("pipe", b"x")
    assert process_session.alive


def test_the_local_sandbox_refuses_planted_links_too() -> None:
    if reason := local_unavailable():
        pytest.skip(f"the local backend is unavailable: {reason}")
    with sandrun.Session(backend="local", timeout=30) as live:
        plant = "import os; open('/tmp/target', 'w').write('inside'); os.symlink('/tmp/target', 'h')"
        assert live.run(f"{plant}; os.symlink('/tmp', 'd')").ok
        for name in ("h", "d/x"):
            with pytest.raises(OSError):
                live.download(name)
            with pytest.raises(OSError):
                live.upload(name, b"x")
        assert live.run("open('/tmp/target').read(), os.path.exists('/tmp/x')").value == "('inside', False)"
