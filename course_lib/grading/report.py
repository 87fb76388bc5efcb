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
    points = f"[{_points(item.points)}/{_points(item.max_points)} points]"
    if item.hidden:  # by name and points alone: no case, input or expected value
        mark = PASS if item.points == item.max_points else FAIL
        return f"{mark} {item.name} (hidden cases): {points}"
    total = len(item.verdicts)
    head = f"{item.name}: {item.passed}/{total} cases passed  {points}"
    if item.passed == 0 and all(v.reason == NOT_IMPLEMENTED for v in item.verdicts):
        return f"{item.name}: {NOT_IMPLEMENTED}  [0/{_points(item.max_points)} points]"
    if item.passed == total:
        return f"{PASS} {head}"
    lines = [f"{FAIL} {head}"]
    if detailed:
        for verdict in item.verdicts:
            mark = PASS if verdict.passed else FAIL
            reason = "" if verdict.passed else f": {verdict.reason}"
            lines.append(f"    {mark} {verdict.label}{reason}")
    if item.hint:
        lines.append(f"    hint: {item.hint}")
    return "\n".join(lines)


def item_status(item: ItemResult) -> str:
    """One line on an item: ok, or the first failing case's reason (hidden items: no detail)."""
    if item.points == item.max_points:
        return "ok"
    if item.hidden:
        return "hidden cases failed"
    return item.summary


def format_submission(result: SubmissionResult) -> str:
    lines = [f"{result.name or result.path}  ({result.assignment or 'unknown assignment'})"]
    if result.error:
        lines.append(f"  cannot be graded: {result.error}")
    for note in result.notes:
        lines.append(f"  note: {note}")
    for flag in result.flags:
        lines.append(f"  flagged: {flag}")
    for evidence in result.tampering:
        lines.append(f"  tampering: {evidence}")
    width = max((len(item.name) for item in result.items), default=0)
    for item in result.items:
        lines.append(f"  {item.name:<{width}}  {_points(item.points):>5} / {_points(item.max_points):<4} "
                     f"{item_status(item)}")
    lines.append(f"  {'total':<{width}}  {_points(result.score):>5} / {_points(result.max_score)}")
    return "\n".join(lines)


def format_summary(results: list[SubmissionResult]) -> str:
    """The table printed at the end of a batch: one line per submission."""
    width = max([len("submission")] + [len(r.name) for r in results])
    lines = [f"{'submission':<{width}}  {'score':>11}  {'seconds':>7}  status",
             f"{'-' * width}  {'-' * 11}  {'-' * 7}  {'-' * 6}"]
    for result in results:
        if result.error:
            status = f"not graded: {result.error}"
        elif result.tampering:
            status = f"evidence of tampering ({len(result.tampering)})"
        elif result.flags:
            status = result.flags[0]
        elif result.notes:
            status = f"{len(result.notes)} cell problem(s)"
        else:
            status = "ok"
        score = f"{_points(result.score)} / {_points(result.max_score)}"
        lines.append(f"{result.name:<{width}}  {score:>11}  {result.seconds:>7.1f}  {status[:100]}")
    graded = [r for r in results if r.max_score and not any(f.startswith("assignment mismatch") for f in r.flags)]
    if graded:
        mean = sum(r.score for r in graded) / len(graded)
        lines.append(f"{len(results)} submission(s); mean score {mean:.2f} / {_points(graded[0].max_score)}")
    return "\n".join(lines)


def format_protections(results: list[SubmissionResult]) -> str:
    """What the sandbox did for this batch, and what it could not do here (and why)."""
    ran = [r.protections for r in results if r.protections is not None]
    if not ran:
        return "sandbox: no submission's code was run"
    active = [p for p in ran[0].active if all(p in other.active for other in ran)]
    missing: dict[str, str] = {}
    for protections in ran:
        missing.update(protections.missing)
    lines = [f"sandbox: {', '.join(active)}"]
    for key, reason in missing.items():
        lines.append(f"  not active: {key}: {reason}")
    return "\n".join(lines)
