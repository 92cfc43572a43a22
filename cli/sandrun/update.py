"""`--update`: rewrite the expected output in a recipe with what its cells actually produced.

Only expectations already written that do not match (one with `...` that matches stays byte for byte), of
cells that ran to their end, get the actual output without its trailing newlines; nothing else changes.
How a new text is written is the format's own rule (`sandrun.readers.Format.rewrite`, beside its reader);
a notebook gets its outputs rewritten whole (`sandrun.notebook_update`). The updated text must read back
as the same cells, or nothing is written. A YAML expectation that several cells share through an alias is
written once, if they all printed the same text; otherwise it is left as it is, with a note.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from dataclasses import dataclass

from sandrun import safefs
from sandrun.atomic import write_text_at
from sandrun.errors import RecipeError, SandrunError
from sandrun.expect import repl_view, text_matches
from sandrun.model import (
    Cell,
    CellResult,
    CellStatus,
    ExpectedText,
    MatchMode,
    Recipe,
    RunStatus,
    Transcript,
    is_cut,
)
from sandrun.readers import Format, Rewriter, recipe_format
from sandrun.readers.lines import line_block, line_starts, newline_of


class UpdateRefused(SandrunError):
    """The run cannot be trusted to update the recipe (interrupted, sandbox died, file changed...)."""

    exit_code = 2


@dataclass(frozen=True)
class Edit:
    """Replace `text[start:end]` with `replacement`: in the cell numbered `cell` (index) and named `label`,
    the expected `what` (stdout, stderr, value or repl) at `location` (path:line) goes from `old` to `new`
    (the new expected text as the reader reads it back, without trailing newlines)."""

    start: int
    end: int
    replacement: str
    cell: int
    label: str
    what: str
    location: str
    old: str
    new: str


@dataclass(frozen=True)
class UpdateResult:
    """What `update_recipe` did to a file: the expected texts it rewrote (`edits`), and `notes` saying
    which mismatching expectations it left alone, and why."""

    path: str
    edits: tuple[Edit, ...]
    notes: tuple[str, ...] = ()


def refuse_untrusted(transcript: Transcript, path: str) -> None:
    """Raise `UpdateRefused` if this run must not update its recipe: interrupted, or the sandbox failed."""
    dead = next((r for r in transcript.results if r.status is CellStatus.ERROR), None)
    if transcript.status is RunStatus.INTERRUPTED:
        reason = "the run was interrupted, so its output is incomplete"
    elif dead or transcript.status is RunStatus.ERROR:
        where = f" during {dead.cell.label} ({dead.cell.location})" if dead else ""
        reason = f"the sandbox failed{where}: {(dead and dead.reason) or transcript.reason or 'error'}"
    else:
        return
    raise UpdateRefused(f"not updating {path}: {reason}", hint="run the recipe again, then update")


def apply_edits(text: str, edits: list[Edit] | tuple[Edit, ...]) -> str:
    """`text` with every edit applied (last offset first, so earlier offsets stay valid). Identical edits
    (one expectation shared by several cells through a YAML alias) are applied once."""
    unique = {(e.start, e.end, e.replacement): e for e in edits}
    ordered = sorted(unique.values(), key=lambda e: (e.start, e.end))
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end or after.start == before.start:
            raise SandrunError(f"overlapping edits at offsets {before.start} and {after.start}")
    if ordered and (ordered[0].start < 0 or ordered[-1].end > len(text)):
        raise SandrunError("an edit lies outside the text")
    for edit in reversed(ordered):
        text = text[: edit.start] + edit.replacement + text[edit.end :]
    return text


def update_recipe(path: str | os.PathLike[str], transcript: Transcript) -> UpdateResult:
    """Rewrite the recipe at `path` (atomically, and only if something changes) so that it expects what
    ran in `transcript`. Refuses if the file changed since the run, or the run cannot be trusted."""
    name = os.fspath(path)
    refuse_untrusted(transcript, name)
    found_in = os.path.dirname(name) or "."
    try:
        with safefs.real_directory_of(found_in, os.path.basename(name)) as (directory, real_name):
            return _update_at(directory, real_name, name, transcript)
    except safefs.LinkRefused as exc:
        raise UpdateRefused(
            f"not updating {name}: {exc.strerror}", hint="update the file the link points to directly"
        ) from None
    except FileNotFoundError as exc:
        raise RecipeError(name, None, f"cannot read the file: {exc.strerror}") from None


def _update_at(directory: int, real_name: str, name: str, transcript: Transcript) -> UpdateResult:
    """`update_recipe` of `real_name` in the held `directory`: read, check, plan, verify, replace."""
    try:
        with os.fdopen(safefs.open_file(directory, real_name), "rb") as handle:
            data = handle.read()
    except OSError as exc:
        if isinstance(exc, safefs.LinkRefused):
            raise
        raise RecipeError(name, None, f"cannot read the file: {exc.strerror}") from None
    if hashlib.sha256(data).hexdigest() != transcript.recipe.sha256:
        raise UpdateRefused(f"not updating {name}: it changed since it was run", hint="run it again first")
    text = data.decode("utf-8")
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    notes: list[str] = []
    if transcript.recipe.format == "ipynb":
        edits, updated = _notebook_outputs(transcript, text[len(bom) :])
        if any(result.printed is not None for result in transcript.results):
            from sandrun.arrows import notebook_notes

            notes = notebook_notes(transcript.results)
    else:
        edits, notes, updated = _plan(transcript.recipe, transcript, text[len(bom) :])
    new_text = bom + updated
    if new_text != text:  # the real file, so a link (inside the directory) stays a link
        write_text_at(directory, real_name, new_text)
    return UpdateResult(name, tuple(edits), tuple(notes))


def _notebook_outputs(transcript: Transcript, text: str) -> tuple[list[Edit], str]:
    """A notebook with its fresh outputs (`sandrun.notebook_update`); one edit per cell whose outputs
    changed (offsets 0: the notebook is written whole). It must read back as the same cells."""
    from sandrun.notebook_update import updated_notebook

    new_text, changed = updated_notebook(text, transcript)
    recipe = transcript.recipe
    cells = recipe.cells
    edits = [
        Edit(0, 0, "", i, cells[i].label, "outputs", cells[i].location, old, new) for i, old, new in changed
    ]
    if changed:
        reread = recipe_format(recipe.format).parse(new_text, recipe.path, recipe.sha256)
        if [(c.kind, c.source, c.tags) for c in reread.cells] != [(c.kind, c.source, c.tags) for c in cells]:
            raise SandrunError("the updated notebook does not read back as the same cells; nothing written")
    return edits, new_text


def _plan(recipe: Recipe, transcript: Transcript, text: str) -> tuple[list[Edit], list[str], str]:
    """The edits, notes on mismatching expectations left alone, and the text with the edits applied
    (checked by reading it back)."""
    nl = newline_of(text)
    edits: list[Edit] = []
    notes: list[str] = []
    arrows: dict[int, list[str]] = {}
    shared = _sharers(transcript)
    for result in transcript.results:
        cell = result.cell
        if result.printed is not None and result.status is not CellStatus.SKIPPED:
            arrows[cell.index] = _arrow_edits(recipe, result, text, nl, edits, notes)
        for what, expected in cell.expect.texts().items():
            actual = _actual(result, what)
            if result.status is CellStatus.SKIPPED or text_matches(expected, actual or ""):
                continue
            location = f"{recipe.path}:{expected.line or cell.line}"
            why = _left_alone(result, expected, actual) or _shared_differently(shared.get(expected.span, []))
            if why:
                notes.append(f"{cell.label}: {what} ({location}) left as it is: {why}")
                continue
            if actual is None:
                message = f"{cell.label} has no value to write as its expected {what}"
                hint = "its last line is not an expression: print() it and expect stdout instead"
                raise RecipeError(recipe.path, expected.line or cell.line, message, hint)
            new = actual.rstrip("\n")
            start, end, put = _rewriter(recipe)(text, expected, what, new, recipe.path)
            edits.append(Edit(start, end, put, cell.index, cell.label, what, location, expected.text, new))
    updated = apply_edits(text, edits) if edits else text
    if edits:
        _verify(recipe, updated, edits, arrows)
    return edits, notes, updated


def _arrow_edits(
    recipe: Recipe, result: CellResult, text: str, nl: str, edits: list[Edit], notes: list[str]
) -> list[str]:
    """Add the edits that make the cell's `#>` lines say what it printed (`sandrun.arrows`), and notes on
    those left alone; return the text of every `#>` line of the cell after the edits."""
    from sandrun.arrows import WHAT, arrows, plan_arrows

    cell = result.cell
    raised = result.error.type if result.error and cell.expect.error is None else None
    why = _WHY_NOT.get(result.status) or (
        f"the cell raised {raised}, which the recipe does not expect" if raised else None
    )
    if why is None and is_cut(result.stdout):
        why = "the output was cut (raise --output-limit)"
    if why:
        if result.status is CellStatus.FAILED or result.status is CellStatus.TIMEOUT:
            notes.append(f"{cell.label}: {WHAT} ({cell.location}) left as it is: {why}")
        return [arrow.text for arrow in arrows(cell.source)]
    rewrites, arrow_notes, after = plan_arrows(cell, result.printed or (), text, line_starts(text))
    notes += arrow_notes
    for r in rewrites:
        location = f"{recipe.path}:{r.line}"
        put = line_block(text, r.start, r.end, list(r.lines), nl)
        edits.append(Edit(r.start, r.end, put, cell.index, cell.label, WHAT, location, r.old, r.new))
    return after


_WHY_NOT = {CellStatus.TIMEOUT: "the cell timed out", CellStatus.NOT_RUN: "the cell was not run"}


def _actual(result: CellResult, what: str) -> str | None:
    """What the cell produced in place of its expected `what`."""
    if what == "repl":
        return repl_view(result.stdout, result.value)
    return {"stdout": result.stdout, "stderr": result.stderr, "value": result.value}[what]


_Sharer = tuple[str, str | None, str | None]  # a cell's label, why it cannot update, what it produced


def _sharers(transcript: Transcript) -> dict[tuple[int, int] | None, list[_Sharer]]:
    """The expectations that several cells share (one YAML scalar under an alias), by their place in the
    file: for each cell that shares one and ran, whether it can update it, and what it produced."""
    by_span: dict[tuple[int, int] | None, list[_Sharer]] = {}
    for result in transcript.results:
        for what, expected in result.cell.expect.texts().items():
            if expected.span is not None and result.status is not CellStatus.SKIPPED:
                actual = _actual(result, what)
                why = _left_alone(result, expected, actual)
                by_span.setdefault(expected.span, []).append((result.cell.label, why, actual))
    return {span: sharers for span, sharers in by_span.items() if len(sharers) > 1}


def _shared_differently(sharers: list[_Sharer]) -> str | None:
    """Why an expectation that these cells share cannot be rewritten, if it cannot: the new text must be
    right for every one of them."""
    outputs = {None if why else (actual or "").rstrip("\n") for _, why, actual in sharers}
    if len(outputs) < 2 and None not in outputs:
        return None
    names = [label for label, _, _ in sharers]
    labels = ", ".join(names[:-1]) + " and " + names[-1]
    return f"it is shared through a YAML alias by {labels}, which did not all print the same; edit it by hand"


def _left_alone(result: CellResult, expected: ExpectedText, actual: str | None) -> str | None:
    """Why a mismatching expectation must not be rewritten from this result, if it must not."""
    raised = result.error.type if result.error and result.cell.expect.error is None else None
    reasons = {
        "the cell timed out": result.status is CellStatus.TIMEOUT,
        "the cell was not run": result.status is CellStatus.NOT_RUN,
        f"the cell raised {raised}, which the recipe does not expect": raised is not None,
        "where it is written in the file is not known": expected.span is None,
        "it is a regular expression; fix it by hand": expected.mode is MatchMode.REGEX,
        "the output was cut (raise --output-limit)": is_cut(actual or ""),
    }
    return next((why for why, applies in reasons.items() if applies), None)


def _rewriter(recipe: Recipe) -> Rewriter:
    """The recipe's format's rule for writing a new expected text in place."""
    rewrite = recipe_format(recipe.format).rewrite
    if rewrite is None:
        raise SandrunError(f"a {recipe.format} recipe's expected texts cannot be rewritten in place")
    return rewrite


def _verify(recipe: Recipe, new_text: str, edits: list[Edit], arrows: dict[int, list[str]]) -> None:
    """The updated text must read back as the same cells, with exactly the new texts where edits are, and
    with the `#>` lines planned for each cell that has them."""
    fmt = recipe_format(recipe.format)
    try:
        again = fmt.parse(new_text, recipe.path, recipe.sha256)
    except RecipeError as exc:  # its line is in the updated text, which was not written: leave it out
        message = f"the updated recipe would not read back ({exc.message}), so it was not written"
        raise RecipeError(recipe.path, None, message, hint="update these expectations by hand") from None
    if [_shape(c, fmt) for c in recipe.cells] != [_shape(c, fmt) for c in again.cells]:
        raise RecipeError(recipe.path, None, "the updated recipe would not have the same cells")
    wanted = {(e.cell, e.what): e.new for e in edits}
    for old, cell in zip(recipe.cells, again.cells, strict=True):
        for what, expected in old.expect.texts().items():
            got = cell.expect.texts()[what].text
            want = wanted.get((old.index, what))
            if got != expected.text if want is None else got.rstrip("\n") != want:
                message = f"cannot write the new {what} of {old.label} so that it reads back as it is"
                raise RecipeError(recipe.path, expected.line or old.line, message, "edit it by hand")
    if arrows:
        from sandrun.arrows import arrows as arrow_lines

        for index, wanted_arrows in arrows.items():
            if [arrow.text for arrow in arrow_lines(again.cells[index].source)] != wanted_arrows:
                message = f"cannot write the #> lines of {recipe.cells[index].label} so that they read back"
                raise RecipeError(recipe.path, recipe.cells[index].line, message, "edit them by hand")


def _shape(cell: Cell, fmt: Format) -> tuple[object, ...]:
    """What an update must not change in a cell: its code (as its format tells it from its expected texts,
    but for its `#>` lines), and which expectations it has."""
    code, expect = fmt.code(cell.source), cell.expect
    if "#>" in code:
        from sandrun.arrows import without_arrows  # `--update` rewrites these lines of the code

        code = without_arrows(code)
    return cell.kind, cell.name, code, expect.error, expect.error_message, tuple(expect.texts())
