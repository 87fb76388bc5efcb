"""Exercise notebooks, generated from the solution notebooks.

``solutions/chNN_topic.ipynb`` is the single source of each exercise set. Solution code sits
between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (the nbgrader convention); the exercise
keeps everything else and puts a stub that raises ``NotImplementedError`` in its place, with
outputs cleared. ``course exercises check`` fails when ``exercises/`` is not what ``build``
would write.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("Replace this line with your code")'
SOLUTION_NAME = re.compile(r"^(ch\d\d)_[a-z0-9_]+\.ipynb$")


class ExerciseError(ValueError):
    """A solution notebook that cannot be turned into an exercise, with the place to fix."""


def strip_solution(source: str, where: str = "cell") -> str:
    """Replace each BEGIN/END SOLUTION region (markers included) by a stub at the marker's indentation."""
    out, inside, indent = [], False, ""
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ExerciseError(f"{where}, line {number}: {BEGIN} inside another solution region")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{STUB}\n")
        elif marker == END:
            if not inside:
                raise ExerciseError(f"{where}, line {number}: {END} without a {BEGIN} before it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ExerciseError(f"{where}: {BEGIN} is never closed by {END}")
    return "".join(out).rstrip("\n")


def exercise_from_solution(solution: nbformat.NotebookNode, assignment: str) -> nbformat.NotebookNode:
    exercise = copy.deepcopy(solution)
    for index, cell in enumerate(exercise.cells, start=1):
        cell.pop("id", None)
        if cell.cell_type == "code":
            cell.source = strip_solution(cell.source, where=f"cell {index}")
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
    exercise.metadata = nbformat.from_dict({
        "kernelspec": solution.metadata.get("kernelspec", {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}),
        "language_info": {"name": "python"},
        "lm_course": {"assignment": assignment},
    })
    exercise.nbformat, exercise.nbformat_minor = 4, 4
    return exercise


def render(notebook: nbformat.NotebookNode) -> str:
    return json.dumps(notebook, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


@dataclass(frozen=True)
class Generated:
    path: Path
    text: str


def generate(solutions: Path, exercises: Path) -> list[Generated]:
    generated = []
    for path in sorted(solutions.glob("ch*.ipynb")):
        match = SOLUTION_NAME.match(path.name)
        if not match:
            raise ExerciseError(f"{path}: solution notebooks are named chNN_topic.ipynb")
        solution = nbformat.read(path, as_version=4)
        if not any(BEGIN in cell.source for cell in solution.cells if cell.cell_type == "code"):
            raise ExerciseError(f"{path}: no {BEGIN} region, so there is nothing for a student to write")
        try:
            exercise = exercise_from_solution(solution, match.group(1))
        except ExerciseError as error:
            raise ExerciseError(f"{path}: {error}") from None
        generated.append(Generated(exercises / path.name, render(exercise)))
    return generated


def build(solutions: Path, exercises: Path) -> list[Path]:
    exercises.mkdir(parents=True, exist_ok=True)
    written = []
    for item in generate(solutions, exercises):
        item.path.write_text(item.text, encoding="utf-8")
        written.append(item.path)
    return written


def stale(solutions: Path, exercises: Path) -> list[str]:
    """What is out of date in ``exercises/``: one line per file, empty when all is in sync."""
    problems = []
    expected = generate(solutions, exercises)
    for item in expected:
        if not item.path.exists():
            problems.append(f"{item.path} is missing")
        elif item.path.read_text(encoding="utf-8") != item.text:
            problems.append(f"{item.path} differs from what {solutions / item.path.name} generates")
    extra = {p.name for p in exercises.glob("*.ipynb")} - {item.path.name for item in expected}
    problems += [f"{exercises / name} has no solution notebook" for name in sorted(extra)]
    return problems
