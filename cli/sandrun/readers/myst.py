"""MyST directives that hold Python, turned into the plain fences the Markdown reader already runs:

    ```{code-cell} python        a Python block (also ipython3); `:tags: [raises-exception]` means it must
                                 raise, `:tags: [skip-execution]` that it is not run
    ```{code-block} python       a Python block (also {code} and {sourcecode}); presentation options ignored
    ```{doctest}                 a >>> session (`:options: +NORMALIZE_WHITESPACE` for the whole block),
                                 with Sphinx's default `+IGNORE_EXCEPTION_DETAIL`
    ```{testsetup}               Python blocks, run where they stand (sphinx.ext.doctest's groups are not
    ```{testcode}                kept apart: the document is one interpreter)
    ```{testcleanup}
    ```{testoutput}              what the {testcode} just before it must print

A directive's options are its first lines, `:name: value`, or a `---` YAML block; they are not code.
`{eval-rst}` is not turned into a fence: the Markdown reader hands its lines to the reST reader.
"""

from __future__ import annotations

import re
from dataclasses import replace

from sandrun.readers.md_blocks import Fence

_OPTION = re.compile(r":([\w-]+):\s*(.*)")
PYTHON_ARGUMENTS = ("python", "python3", "py", "ipython", "ipython3", "ipython2", "")
_CODE = ("{code-block}", "{code}", "{sourcecode}")
_PLAIN = ("{testsetup}", "{testcode}", "{testcleanup}")


def as_fence(block: Fence) -> Fence | None:
    """The plain fence a MyST directive stands for (language and options in sandrun's terms), or None if
    it is not one sandrun runs."""
    argument = block.info.partition(" ")[0].lower()
    options, skipped = _options(block.lines)
    body = replace(block, first=block.first + skipped, lines=block.lines[skipped:], directive=False)
    if block.lang == "{code-cell}" and argument in PYTHON_ARGUMENTS:
        tags = re.findall(r"[\w-]+", options.get("tags", ""))
        info = " ".join(["skip"] * ("skip-execution" in tags) + ["raises"] * ("raises-exception" in tags))
        return replace(body, lang="python", info=info)
    if block.lang in _CODE and argument in PYTHON_ARGUMENTS[:-1]:
        return replace(body, lang="python", info="")
    if block.lang in _PLAIN:
        return replace(body, lang="python", info="")
    flags = options.get("options", "").replace(",", " ").split()
    if block.lang == "{doctest}":  # Sphinx's default flags first, as Sphinx checks it
        return replace(body, lang="pycon", info=f'doctest="{" ".join(["+IGNORE_EXCEPTION_DETAIL", *flags])}"')
    if block.lang == "{testoutput}":
        whitespace = "+NORMALIZE_WHITESPACE" in flags
        return replace(body, lang="output", info="match=whitespace" if whitespace else "")
    return None


def _options(lines: tuple[str, ...]) -> tuple[dict[str, str], int]:
    """A directive's options and how many lines they take."""
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is not None:
            pairs = (re.match(r"([\w-]+):\s*(.*)", line.strip()) for line in lines[1:end])
            return {m[1]: m[2] for m in pairs if m}, end + 1
    options: dict[str, str] = {}
    count = 0
    for line in lines:
        match = _OPTION.fullmatch(line.strip())
        if not match:
            break
        options[match[1]] = match[2]
        count += 1
    return options, count
