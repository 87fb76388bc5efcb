"""``course grade``: grade a submitted notebook against its assignment's case sets.

The submission's code runs in a worker process (``course_lib.grading.worker``) with a fresh
working directory and a scrubbed environment; only plain JSON comes back; each verdict is
computed here, against the reference answers computed in this process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.grading import codec
from course_lib.grading.cases import Assignment, ItemResult, Outcome, judge, load_assignment
from course_lib.grading.notebook import (
    Submission,
    SubmissionError,
    assignment_from_filename,
    read_submission,
    runnable_source,
)

MAX_RESULT_BYTES = 256_000_000


@dataclass(frozen=True)
class Limits:
    case_seconds: float = 10.0        # one call of the student's function
    item_seconds: float = 60.0        # all the cases of one item
    notebook_seconds: float = 120.0   # running the notebook's cells


@dataclass
class SubmissionResult:
    path: Path
    assignment: str | None
    items: list[ItemResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # problems in the notebook that cost no points by themselves
    error: str | None = None                         # why the submission could not be graded at all
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return round(sum(item.points for item in self.items), 2)

    @property
    def max_score(self) -> float:
        return sum(item.max_points for item in self.items)


def grade_notebook(path: str | Path, assignment: str | None = None, limits: Limits = Limits()) -> SubmissionResult:
    """Grade one notebook. A broken submission gets a result with an ``error`` and zero points,
    never an exception; only the grader's own misuse (an unknown assignment) raises."""
    started = time.monotonic()
    path = Path(path)
    try:
        submission = read_submission(path)
    except SubmissionError as error:
        result = _zero(path, assignment or assignment_from_filename(path), str(error))
    else:
        name = assignment or submission.assignment
        if name is None:
            result = _zero(path, None, "cannot tell which assignment this is: pass --assignment chNN")
        else:
            result = _grade(submission, load_assignment(name), limits)
    result.seconds = time.monotonic() - started
    return result


def _zero(path: Path, assignment: str | None, error: str) -> SubmissionResult:
    items = []
    if assignment is not None:
        spec = load_assignment(assignment)
        items = [judge(cs, cs.cases(), [Outcome("missing", message=error)] * len(cs.cases()))
                 for cs in spec.case_sets]
    return SubmissionResult(path, assignment, items, error=error)


def _grade(submission: Submission, assignment: Assignment, limits: Limits) -> SubmissionResult:
    cases = {item.name: item.cases() for item in assignment.case_sets}
    job = {
        "cells": [{"index": c.index, "source": runnable_source(c.source)} for c in submission.cells],
        "items": [
            {"name": item.name, "function": item.function,
             "cases": [codec.encode(case.kwargs) for case in cases[item.name]]}
            for item in assignment.case_sets
        ],
        "blocked_modules": list(assignment.reference_modules) + ["course_lib.grading.assignments"],
        "case_seconds": limits.case_seconds,
        "item_seconds": limits.item_seconds,
        "notebook_seconds": limits.notebook_seconds,
    }
    budget = limits.notebook_seconds + limits.item_seconds * len(assignment.case_sets) + 30
    records, exit_note = _run_worker(job, budget)

    result = SubmissionResult(submission.path, assignment.name)
    outcomes = {}
    for record in records:
        if record.get("kind") == "cell_error":
            result.notes.append(f"cell {record.get('cell')}: {record.get('error')}")
        elif record.get("kind") == "item" and isinstance(record.get("outcomes"), list):
            outcomes[record.get("name")] = [Outcome.from_json(o) for o in record["outcomes"]]
    for item in assignment.case_sets:
        item_outcomes = outcomes.get(item.name)
        if item_outcomes is None or len(item_outcomes) != len(cases[item.name]):
            item_outcomes = [Outcome("crashed", message=f"not graded: {exit_note}")] * len(cases[item.name])
        result.items.append(judge(item, cases[item.name], item_outcomes))
    return result


def _worker_environment(home: str) -> dict[str, str]:
    """Only what Python needs; nothing of the grader's own environment (tokens, paths) leaks in."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _run_worker(job: dict, seconds: float) -> tuple[list[dict], str]:
    """Run the worker on ``job``; return its result records and, if it ended badly, why."""
    read_end, write_end = os.pipe()
    with tempfile.TemporaryDirectory(prefix="lm-course-grade-") as workdir:
        process = subprocess.Popen(
            [sys.executable, "-I", "-m", "course_lib.grading.worker", "--result-fd", str(write_end)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(write_end,), cwd=workdir, env=_worker_environment(workdir),
            start_new_session=True,
        )
        os.close(write_end)
        received = bytearray()
        reader = threading.Thread(target=_drain, args=(read_end, received), daemon=True)
        reader.start()
        try:
            process.stdin.write(json.dumps(job).encode())
            process.stdin.close()
        except BrokenPipeError:
            pass
        try:
            process.wait(timeout=seconds)
            note = f"the worker stopped early (exit code {process.returncode})"
        except subprocess.TimeoutExpired:
            _kill_group(process)
            note = f"the submission ran past the grader's limit of {seconds:g} s"
        reader.join(timeout=5)
        _kill_group(process)  # whatever the submission left running in its session goes too
    records = []
    for line in bytes(received).decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records, note


def _drain(fd: int, into: bytearray) -> None:
    with os.fdopen(fd, "rb") as stream:
        while chunk := stream.read(1 << 20):
            if len(into) + len(chunk) > MAX_RESULT_BYTES:
                break
            into.extend(chunk)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
