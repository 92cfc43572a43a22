"""An agent-style loop: a "model" proposes code, a sandboxed Session runs it, the result goes back to it.

No network and no language model: `ScriptedModel` stands in for one, answering from a fixed plan and
reacting to what it observes (it fixes its own mistake after a NameError), which is all a loop like this
needs to show. Run it with `python examples/agent_loop.py [--backend local|process]`.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

import sandrun

TASK = "How many primes are there below 10,000, and what is the largest?"


@dataclass
class Observation:
    """What the model sees after each step: the code's output, its value, or its error."""

    output: str
    value: str | None
    error: str | None


class ScriptedModel:
    """Proposes one piece of code at a time; sees each observation before proposing the next."""

    def __init__(self) -> None:
        self.answer: str | None = None
        self.last = Observation("", None, None)

    def steps(self) -> Iterator[str]:
        """The code to run, step by step (a generator: it receives observations through `observe`)."""
        yield "limit = 10_000\nsieve = bytearray([1]) * limit\nsieve[0:2] = b'\\x00\\x00'"
        yield (
            "for i in range(2, int(limit ** 0.5) + 1):\n"
            "    if sieve[i]:\n"
            "        sieve[i*i::i] = bytes(len(sieve[i*i::i]))"
        )
        yield "primes = [i for i, is_prime in enumerate(seive) if is_prime]"  # a typo, as models make
        if self.last.error and self.last.error.startswith("NameError"):
            yield "primes = [i for i, is_prime in enumerate(sieve) if is_prime]"  # the fix
        yield "print(f'{len(primes)} primes, the largest {primes[-1]}')\nlen(primes), primes[-1]"
        self.answer = self.last.output.strip()

    def observe(self, observation: Observation) -> None:
        """Take in what the last step did."""
        self.last = observation


def main() -> int:
    """Run the loop and print every step; exit 0 once the model has an answer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="local", help="where the code runs (default: local)")
    backend = parser.parse_args().backend
    model = ScriptedModel()
    print(f"task: {TASK}")
    with sandrun.Session(backend=backend, network=False, memory="1G", timeout=10) as session:
        for number, code in enumerate(model.steps(), 1):
            result = session.run(code)
            error = f"{result.error.type}: {result.error.message}" if result.error else None
            model.observe(Observation(result.stdout + result.stderr, result.value, error))
            print(f"step {number}: {result.status}, {result.duration * 1000:.0f} ms")
            for line in code.splitlines():
                print(f"  >>> {line}")
            if result.stdout:
                print("  " + result.stdout.rstrip("\n").replace("\n", "\n  "))
            if result.value is not None:
                print(f"  = {result.value}")
            if error:
                print(f"  ! {error}")
    print(f"answer: {model.answer}")
    return 0 if model.answer else 1


if __name__ == "__main__":
    raise SystemExit(main())
