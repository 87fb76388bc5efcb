"""What ``course grade --out DIR`` writes: a gradebook, feedback per submission, Gradescope results
and class statistics per item.

    DIR/gradebook.csv                   one row per submission, one column per item, the total
    DIR/item_statistics.csv, .md        per item: mean points, share with full marks, share with none
    DIR/feedback/NAME.md                for the student: each item, each failing case and why, hints
    DIR/feedback/NAME.json              the same as data, with the sandbox's report for the instructor
    DIR/gradescope/NAME/results.json    Gradescope's autograder format (one file per submission)

Hidden items appear by name and points only, everywhere; before grades are published Gradescope
shows nothing of their result (their tests and the total are ``after_published``; the visible output
speaks of the public items alone). Every field a student controls (names, messages, metadata) is
one line of text here, escaped for spreadsheets in the CSV and shown as literal text in Markdown.
Writing the reports again into the same folder first removes the feedback of the earlier run.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from course_lib.grading.cases import ItemResult
from course_lib.grading.records import plain_text
from course_lib.grading.report import FAIL, PASS, format_item

if TYPE_CHECKING:
    from course_lib.grading.runner import SubmissionResult

# Gradescope's visibility of a test: public items at once; hidden items once grades are published.
VISIBLE, HIDDEN_VISIBILITY = "visible", "after_published"


def _points(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 2)


def spreadsheet_safe(text: object) -> object:
    """A cell a spreadsheet will not run as a formula (names, messages and metadata come from
    students); numbers pass unchanged."""
    if isinstance(text, (int, float)):
        return text
    text = plain_text(text, 2000)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r", "|", "%") else text


def markdown_literal(text: str) -> str:
    """``text`` as inline code, whatever backticks it holds: it renders as itself, never as markup."""
    text = plain_text(text, 1200)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}"


def public_score(result: SubmissionResult) -> tuple[float, float]:
    """Points and maximum over the public items only (what a student may see before publication)."""
    public = [item for item in result.items if not item.hidden]
    return sum(item.points for item in public), sum(item.max_points for item in public)


def item_json(item: ItemResult) -> dict:
    data = {"name": item.name, "points": _points(item.points), "max_points": _points(item.max_points),
            "hidden": item.hidden}
    if not item.hidden:
        data["cases"] = [{"label": v.label, "passed": v.passed, "reason": v.reason} for v in item.verdicts]
        data["hint"] = item.hint
    return data


def feedback_json(result: SubmissionResult) -> dict:
    return {
        "submission": result.name,
        "assignment": result.assignment,
        "score": _points(result.score),
        "max_score": _points(result.max_score),
        "error": result.error,
        "notes": list(result.notes),
        "flags": list(result.flags),
        "tampering": list(result.tampering),
        "items": [item_json(item) for item in result.items],
        "seconds": round(result.seconds, 2),
        "sandbox": result.protections.to_json() if result.protections else None,
    }


def feedback_markdown(result: SubmissionResult) -> str:
    lines = [f"# Feedback: {plain_text(result.assignment or 'unknown assignment', 40)}", "",
             f"Submission: {markdown_literal(result.name)}", "",
             f"**Score: {_points(result.score)} / {_points(result.max_score)}**", ""]
    if result.error:
        lines += [f"This notebook could not be graded: {markdown_literal(result.error)}", ""]
    if result.flags or result.tampering:
        lines += ["Flagged for the instructor:", ""]
        lines += [f"- {markdown_literal(flag)}" for flag in result.flags]
        lines += [f"- evidence of tampering with the grader: {markdown_literal(text)}" for text in result.tampering]
        lines += [""]
    if result.notes:
        lines += ["Problems while running the notebook (they cost no points by themselves):", ""]
        lines += [f"- {markdown_literal(note)}" for note in result.notes] + [""]
    for item in result.items:
        mark = PASS if item.points == item.max_points else FAIL
        lines += [f"## {mark} {item.name}: {_points(item.points)} / {_points(item.max_points)}", ""]
        if item.hidden:
            lines += ["Hidden cases: only the points are shown.", ""]
        elif item.points != item.max_points:
            lines += ["~~~~", format_item(item).replace("~~~~", "~~~"), "~~~~", ""]
    return "\n".join(lines)


def gradescope_results(result: SubmissionResult) -> dict:
    """Gradescope's results.json: total score, run time, overall output and one test per item.

    Before grades are published a student sees the public tests and the top-level output, which
    speaks of the public items only; a hidden item's test (and, Gradescope hiding the total while any
    test is hidden, the total) shows once grades are published."""
    tests = []
    for item in result.items:
        if item.hidden:
            output = "hidden cases: only the points are shown"
        else:
            output = "all cases passed" if item.points == item.max_points else format_item(item)
        tests.append({
            "name": item.name,
            "score": _points(item.points),
            "max_score": _points(item.max_points),
            "status": "passed" if item.points == item.max_points else "failed",
            "output": output,
            "visibility": HIDDEN_VISIBILITY if item.hidden else VISIBLE,
        })
    points, most = public_score(result)
    hidden = [item for item in result.items if item.hidden]
    output = [f"{plain_text(result.assignment or 'unknown assignment', 40)}: "
              f"{_points(points)} / {_points(most)} on the items shown now"]
    if hidden:
        output.append(f"{len(hidden)} more item(s) with hidden cases: their points show once grades are published")
    if result.error:
        output.append(f"This notebook could not be graded: {plain_text(result.error)}")
    output += [f"note: {plain_text(note)}" for note in result.notes]
    return {
        "score": _points(result.score),
        "execution_time": max(1, round(result.seconds)),
        "output": "\n".join(output),
        "visibility": HIDDEN_VISIBILITY if hidden else VISIBLE,
        "tests": tests,
    }


def item_names(results: list[SubmissionResult]) -> list[str]:
    names: dict[str, None] = {}
    for result in results:
        for item in result.items:
            names.setdefault(item.name, None)
    return list(names)


def write_gradebook(results: list[SubmissionResult], path: Path) -> None:
    names = item_names(results)
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as stream:
        writer = csv.writer(stream)
        writer.writerow(["submission", "assignment", *names, "total", "max", "error", "flags", "tampering"])
        for result in results:
            points = {item.name: _points(item.points) for item in result.items}
            row = [result.name, result.assignment or "", *[points.get(name, "") for name in names],
                   _points(result.score), _points(result.max_score), result.error or "",
                   "; ".join(result.flags), "; ".join(result.tampering)]
            writer.writerow([spreadsheet_safe(cell) for cell in row])


def item_statistics(results: list[SubmissionResult]) -> list[dict]:
    """Per item, over the submissions that have it: mean points, share with full marks and none."""
    rows = []
    for name in item_names(results):
        items = [item for result in results for item in result.items if item.name == name]
        n = len(items)
        rows.append({
            "item": name,
            "max_points": _points(items[0].max_points),
            "submissions": n,
            "mean_points": round(sum(i.points for i in items) / n, 3),
            "full_marks": round(sum(i.points == i.max_points for i in items) / n, 3),
            "zero": round(sum(i.points == 0 for i in items) / n, 3),
            "hidden": items[0].hidden,
        })
    return rows


def write_item_statistics(results: list[SubmissionResult], folder: Path) -> None:
    rows = item_statistics(results)
    columns = ["item", "max_points", "submissions", "mean_points", "full_marks", "zero", "hidden"]
    with open(folder / "item_statistics.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| item | points | mean | full marks | zero |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['item']}{' (hidden)' if row['hidden'] else ''} | {row['max_points']} | "
                     f"{row['mean_points']:.2f} | {row['full_marks']:.0%} | {row['zero']:.0%} |")
    (folder / "item_statistics.md").write_text("\n".join(lines) + "\n", encoding="utf-8", errors="backslashreplace")


def file_names(results: list[SubmissionResult]) -> list[str]:
    """A distinct, safe file name for each submission's feedback."""
    used: set[str] = set()
    names = []
    for result in results:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", result.name.removesuffix(".ipynb")).strip("._") or "submission"
        stem = stem[-120:]
        candidate, n = stem, 1
        while candidate in used:
            n += 1
            candidate = f"{stem}-{n}"
        used.add(candidate)
        names.append(candidate)
    return names


def write_reports(results: list[SubmissionResult], folder: str | Path) -> list[Path]:
    """Write every report of the batch into ``folder``; return the paths of the main ones. The
    feedback and Gradescope folders of an earlier run there are removed first."""
    folder = Path(folder)
    for stale in (folder / "feedback", folder / "gradescope"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale)
    (folder / "feedback").mkdir(parents=True, exist_ok=True)
    for result, name in zip(results, file_names(results)):
        _write_text(folder / "feedback" / f"{name}.md", feedback_markdown(result))
        _write_text(folder / "feedback" / f"{name}.json", json.dumps(feedback_json(result), indent=1))
        gradescope = folder / "gradescope" / name
        gradescope.mkdir(parents=True, exist_ok=True)
        write_gradescope(result, gradescope / "results.json")
    write_gradebook(results, folder / "gradebook.csv")
    write_item_statistics(results, folder)
    return [folder / "gradebook.csv", folder / "item_statistics.md", folder / "feedback", folder / "gradescope"]


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", errors="backslashreplace")


def write_gradescope(result: SubmissionResult, path: str | Path) -> None:
    _write_text(Path(path), json.dumps(gradescope_results(result), indent=1))
