"""A fake Modal server that the real ``modal`` client talks to over gRPC on 127.0.0.1, for offline tests.

It speaks the private protocol of **modal 1.6.4 only** (`MODAL_VERSION`), which changes between
releases: skip when `SKIP_REASON` is set, and only then import `tests.modal_fake.server` (`FakeModal`,
and `fake_modal`, a context manager that points this process's modal client at a running fake).
"""

from importlib.metadata import PackageNotFoundError, version

MODAL_VERSION = "1.6.4"
try:
    _installed = version("modal")
except PackageNotFoundError:
    _installed = "not installed"
SKIP_REASON = (
    None
    if _installed == MODAL_VERSION
    else f"tests/modal_fake speaks the private protocol of modal {MODAL_VERSION} only; modal is {_installed}"
)
