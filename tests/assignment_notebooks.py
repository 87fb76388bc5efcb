"""Helpers for the chapters' assignment tests: what an assignment declares, scores by item, solution
notebooks with one piece of code changed (a plausible wrong answer), the check that such a change costs
its own item only, and the check that references leave the caller's random numbers alone."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import nbformat
import torch


def assert_declares(assignment, functions: list[str], reference_modules: set[str], max_points: float) -> None:
    """``assignment`` grades ``functions`` in this order, is worth ``max_points`` and keeps
    ``reference_modules`` out of the worker."""
    assert [item.function for item in assignment.case_sets] == functions
    assert assignment.max_points == max_points
    assert set(assignment.reference_modules) == reference_modules


def assert_random_numbers_untouched(*calls: tuple[Callable[..., Any], Any]) -> None:
    """Each ``(reference, case)`` call leaves torch's global generator where it was: ``check`` runs
    the references in the student's kernel, whose seeded runs must not change."""
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for reference, case in calls:
        reference(**case.kwargs)
    assert torch.equal(torch.rand(3), expected)


def points_earned(assignment, name: str, wrong: Callable[..., Any]) -> float:
    """The points ``wrong`` earns on the cases of ``assignment``'s item ``name``, judged as ``check`` does."""
    from course_lib.grading.cases import judge
    from course_lib.grading.execution import call_case

    item = assignment.case_set(name)
    cases = item.cases()
    return judge(item, cases, [call_case(wrong, case.kwargs) for case in cases]).points


def points(result) -> dict[str, float]:
    return {item.name: item.points for item in result.items}


def assert_only_item_lost(result, assignment, item: str, reason: str | None = None) -> None:
    """``result`` lost every point of ``item`` and no other point; ``reason``, if given, is in its summary."""
    assert points(result)[item] == 0, item
    assert result.score == assignment.max_points - assignment.case_set(item).points, item
    if reason is not None:
        summary = next(graded for graded in result.items if graded.name == item).summary
        assert reason in summary, summary


def solution_variant(solution: Path, tmp_path: Path, name: str, old: str, new: str) -> Path:
    """``solution`` with ``old`` replaced by ``new`` (``old`` must occur in exactly one code cell, once)."""
    notebook = nbformat.read(solution, as_version=4)
    hits = [cell for cell in notebook.cells if cell.cell_type == "code" and old in cell.source]
    assert len(hits) == 1 and hits[0].source.count(old) == 1, f"{old!r} must occur once in {solution.name}"
    hits[0].source = hits[0].source.replace(old, new)
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path
