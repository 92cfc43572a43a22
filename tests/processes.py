"""The host's processes below a command: to wait until its sandboxes are up, and to check that none is
left running after it ended (a pid is told apart from a reused one by its start time)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path


def descendants(pid: int) -> dict[int, str]:
    """Every live process below `pid` on the host, with its start time (to tell a reused pid apart)."""
    parents: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append((int(entry.name), fields[19]))
    found, todo = {}, [pid]
    while todo:
        for child, started in parents.get(todo.pop(), []):
            found[child] = started
            todo.append(child)
    return found


def still_running(processes: dict[int, str]) -> list[int]:
    """The pids of `processes` that still run (same pid, same start time, not a zombie)."""
    left = []
    for pid, started in processes.items():
        with contextlib.suppress(OSError):
            text = Path(f"/proc/{pid}/stat").read_text()
            fields = text.rsplit(")", 1)[1].split()
            if fields[19] == started and fields[0] != "Z":
                left.append(pid)
    return left


def wait_for_tree(pid: int, size: int, timeout: float = 30) -> dict[int, str]:
    """The processes below `pid` once there are at least `size` of them (or what there is at `timeout`)."""
    deadline = time.monotonic() + timeout
    while len(tree := descendants(pid)) < size and time.monotonic() < deadline:
        time.sleep(0.05)
    return tree
