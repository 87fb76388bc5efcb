"""Helpers for the chapters' assignment tests: scores by item, solution notebooks with one piece of
code changed (a plausible wrong answer), and the check that such a change costs its own item only."""
from __future__ import annotations

from pathlib import Path

import nbformat


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
