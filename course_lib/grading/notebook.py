"""Reading a submitted notebook into the code a grading worker runs.

Everything a submission can get wrong about its file is caught here and turned into one clear
message: not JSON, not UTF-8, an old nbformat, no code, too large.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20_000_000
ASSIGNMENT_FROM_FILENAME = re.compile(r"(ch\d\d)")


class SubmissionError(ValueError):
    """The submission cannot be graded at all; the message says why and what to do."""


@dataclass(frozen=True)
class CodeCell:
    index: int      # position among all cells, counted from 1 as Jupyter users see them
    source: str


@dataclass(frozen=True)
class Submission:
    path: Path
    cells: tuple[CodeCell, ...]
    assignment: str | None


def read_submission(path: str | Path) -> Submission:
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path} is not a file")
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(
            f"the notebook is {size / 1e6:.1f} MB, over the {MAX_NOTEBOOK_BYTES / 1e6:.0f} MB limit; "
            "clear the outputs (Edit > Clear Outputs of All Cells) and save again"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SubmissionError(
            f"the file is not UTF-8 text (bad byte at offset {error.start}); is it really a .ipynb notebook?"
        ) from None
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as error:
        raise SubmissionError(
            f"the file is not a valid notebook: JSON error at line {error.lineno}, column {error.colno} "
            f"({error.msg}); re-save it from Jupyter"
        ) from None
    except RecursionError:
        raise SubmissionError("the file is JSON nested too deeply to be a notebook; re-save it from Jupyter") from None
    if not isinstance(notebook, dict) or "cells" not in notebook and "worksheets" not in notebook:
        raise SubmissionError("the file is JSON but not a Jupyter notebook (no 'cells')")
    major = notebook.get("nbformat")
    if major != 4:
        raise SubmissionError(
            f"the notebook is in nbformat {major}, only nbformat 4 is supported; open it in a current "
            "Jupyter and save it again"
        )
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        raise SubmissionError("the notebook's 'cells' is not a list; re-save it from Jupyter")
    code_cells = []
    for position, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise SubmissionError(f"cell {position} has a malformed 'source'; re-save the notebook from Jupyter")
        if source.strip():
            code_cells.append(CodeCell(position, source))
    if not code_cells:
        raise SubmissionError("the notebook has no code cells")
    return Submission(path, tuple(code_cells), _assignment_of(notebook, path))


def _assignment_of(notebook: dict, path: Path) -> str | None:
    metadata = notebook.get("metadata")
    if isinstance(metadata, dict):
        course = metadata.get("lm_course")
        if isinstance(course, dict) and isinstance(course.get("assignment"), str):
            return course["assignment"][:40]
    return assignment_from_filename(path)


def assignment_from_filename(path: Path) -> str | None:
    """``ch01`` for ``alice_ch01_ngrams.ipynb``; None when the name does not say."""
    match = ASSIGNMENT_FROM_FILENAME.search(Path(path).name)
    return match.group(1) if match else None


_MAGIC = re.compile(r"^(\s*)[%!].*$", re.MULTILINE)


def runnable_source(source: str) -> str:
    """The cell's code as plain Python: IPython magics and shell lines become ``pass``, and
    top-level ``check(...)`` calls (the local feedback cells) are dropped."""
    source = _MAGIC.sub(lambda m: f"{m.group(1)}pass", source)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source  # the worker reports the syntax error with its line number
    lines = source.splitlines(keepends=True)
    for node in tree.body:
        if _is_check_call(node):
            for lineno in range(node.lineno, node.end_lineno + 1):
                indent = len(lines[lineno - 1]) - len(lines[lineno - 1].lstrip())
                lines[lineno - 1] = " " * indent + "pass\n" if lineno == node.lineno else "\n"
    return "".join(lines)


def _is_check_call(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "check"
    )
