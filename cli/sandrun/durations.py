"""How a duration is shown to a person: on the terminal, in the Markdown and HTML reports, by pytest.

Machine formats keep seconds as numbers (the JSON transcript, JUnit's `time`, the notebook's metadata).
"""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """`0.4 ms`, `12.3 ms`, `850.0 ms`, `2.35 s`, `3 min 07 s`: milliseconds below a second (to a tenth,
    so that a fast cell does not read as no time at all), seconds to a hundredth below a minute, then
    whole minutes and seconds. A value that would round up to the next unit is shown in that unit."""
    if round(seconds * 1000, 1) < 1000:
        return f"{seconds * 1000:.1f} ms"
    if round(seconds, 2) < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
