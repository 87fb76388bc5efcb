"""Feedback text: one graded item for the in-notebook check, a whole submission for the grader."""
from __future__ import annotations

from typing import TYPE_CHECKING

from course_lib.grading.cases import NOT_IMPLEMENTED, ItemResult

if TYPE_CHECKING:
    from course_lib.grading.runner import SubmissionResult

PASS, FAIL = "✔", "✘"


def _points(value: float) -> str:
    return f"{value:g}"


def format_item(item: ItemResult, *, detailed: bool = True) -> str:
    total = len(item.verdicts)
    head = f"{item.name}: {item.passed}/{total} cases passed  [{_points(item.points)}/{_points(item.max_points)} points]"
    if item.passed == 0 and all(v.reason == NOT_IMPLEMENTED for v in item.verdicts):
        return f"{item.name}: {NOT_IMPLEMENTED}  [0/{_points(item.max_points)} points]"
    if item.passed == total:
        return f"{PASS} {head}"
    lines = [f"{FAIL} {head}"]
    if detailed:
        for verdict in item.verdicts:
            if item.hidden:
                break
            mark = PASS if verdict.passed else FAIL
            reason = "" if verdict.passed else f": {verdict.reason}"
            lines.append(f"    {mark} {verdict.label}{reason}")
        if item.hidden:
            lines.append(f"    (hidden cases: {total - item.passed} failed)")
    if item.hint:
        lines.append(f"    hint: {item.hint}")
    return "\n".join(lines)


def format_submission(result: SubmissionResult) -> str:
    lines = [f"{result.path}  ({result.assignment or 'unknown assignment'})"]
    if result.error:
        lines.append(f"  cannot be graded: {result.error}")
    for note in result.notes:
        lines.append(f"  note: {note}")
    width = max((len(item.name) for item in result.items), default=0)
    for item in result.items:
        status = "ok" if item.points == item.max_points else item.summary
        if item.hidden and item.points != item.max_points:
            status = f"{len(item.verdicts) - item.passed} hidden case(s) failed"
        lines.append(f"  {item.name:<{width}}  {_points(item.points):>5} / {_points(item.max_points):<4} {status}")
    lines.append(f"  {'total':<{width}}  {_points(result.score):>5} / {_points(result.max_score)}")
    return "\n".join(lines)
