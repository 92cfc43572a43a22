"""Judging a cell: did what it did match what the recipe expected?"""

from __future__ import annotations

from collections.abc import Sequence

from sandrun.model import ANY_EXCEPTION, CellError, CellStatus, Expectation


def error_matches(expected: str, raised: Sequence[str]) -> bool:
    """True if an exception whose class and bases are `raised` satisfies `expected`.

    `expected` names the class or any base (`OSError` accepts `FileNotFoundError`), with or without its
    module (`json.JSONDecodeError` and `JSONDecodeError` both match), or is `ANY_EXCEPTION`.
    """
    if expected == ANY_EXCEPTION:
        return True
    return any(name == expected or name.endswith("." + expected) for name in raised)


def judge(
    expect: Expectation, raised: CellError | None, raised_types: Sequence[str]
) -> tuple[CellStatus, str | None]:
    """The status of a cell that ran to the end (normally or by an exception), and why if not passed."""
    wanted = "an exception" if expect.error == ANY_EXCEPTION else expect.error
    if raised is None:
        if expect.error is None:
            return CellStatus.PASSED, None
        return CellStatus.FAILED, f"expected {wanted} to be raised, but the cell raised nothing"
    got = f"{raised.type}: {raised.message}" if raised.message else raised.type
    if expect.error is None:
        return CellStatus.FAILED, f"raised {got}"
    if error_matches(expect.error, raised_types or (raised.type,)):
        return CellStatus.PASSED, None
    return CellStatus.FAILED, f"expected {wanted}, but the cell raised {got}"
