"""Backends by name. Each is imported only when asked for, so `modal` costs nothing on the local path."""

from __future__ import annotations

from importlib import import_module

from sandrun.backends.base import Backend
from sandrun.errors import UsageError

BACKENDS: dict[str, str] = {
    "process": "sandrun.backends.process:ProcessBackend",
}
"""Backend name -> `module:Class`. Built-in backends register here the same way a plugin would."""

DEFAULT_BACKEND = "process"


def get_backend(name: str) -> Backend:
    """A backend instance by name; an unknown name is a usage error listing the known ones."""
    target = BACKENDS.get(name)
    if target is None:
        raise UsageError(f"unknown backend {name!r}", hint=f"choose one of: {', '.join(BACKENDS)}")
    module, _, cls = target.partition(":")
    return getattr(import_module(module), cls)()
