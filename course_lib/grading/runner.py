"""``course grade``: grade submitted notebooks against their assignment's case sets.

Each submission's code runs in a worker forked from a fork server (``zygote``) and sandboxed
(``sandbox``); only plain JSON comes back; each verdict is computed here, against reference answers
computed once per batch in this process. Submissions are graded in parallel, one worker each.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from course_lib.checks import integer, number
from course_lib.grading import codec
from course_lib.grading.cases import Assignment, Case, ItemResult, Outcome, judge, load_assignment
from course_lib.grading.hidden import load_hidden_case_sets, with_hidden
from course_lib.grading import import_graph
from course_lib.grading.notebook import (
    Submission, SubmissionError, assignment_from_filename, read_submission, runnable_source,
)
from course_lib.grading.records import plain_text
from course_lib.grading.sandbox import (
    Protections, SandboxSpec, filtered_package_copy, readable_directories, remove_group,
)
from course_lib.grading.session import Collected, ItemCases, WorkerSession
from course_lib.grading.zygote import Zygote, ZygoteError, shared_zygote, worker_environment

PACKAGE_DIR = Path(__file__).resolve().parent.parent   # the course_lib folder
MAX_SECONDS = 86_400.0          # a day: any limit above is a mistake (and would overflow the timers)
MAX_MEMORY_MB = 1 << 20         # a terabyte
WORKER_HEADROOM_MB = 256        # above the fork server's own size, for the worker to run at all


class PreparationError(ValueError):
    """An assignment (with its hidden case sets) that cannot be graded: the message says what to fix."""


@dataclass(frozen=True)
class Limits:
    case_seconds: float = 10.0        # one call of the student's function (wall time)
    item_seconds: float = 60.0        # all the cases of one item (wall and CPU time)
    notebook_seconds: float = 120.0   # running the notebook's cells (wall and CPU time)
    memory_mb: float = 4096           # address space of each process of the submission
    max_processes: int = 64           # processes and threads of a submission
    max_file_mb: float = 16           # largest file it may write
    tmp_mb: float = 64                # its writable /tmp (with a private filesystem)
    namespaces: bool = True           # use Linux namespaces where the platform allows

    def __post_init__(self) -> None:
        for name in ("case_seconds", "item_seconds", "notebook_seconds"):
            number(name, getattr(self, name), above=0.0, maximum=MAX_SECONDS)
        number("memory_mb", self.memory_mb, above=0.0, maximum=MAX_MEMORY_MB)
        number("max_file_mb", self.max_file_mb, above=0.0, maximum=MAX_MEMORY_MB)
        number("tmp_mb", self.tmp_mb, above=0.0, maximum=MAX_MEMORY_MB)
        integer("max_processes", self.max_processes, minimum=4, maximum=100_000)

    def to_json(self) -> dict:
        return {"case_seconds": self.case_seconds, "item_seconds": self.item_seconds,
                "notebook_seconds": self.notebook_seconds, "memory_mb": self.memory_mb,
                "max_processes": self.max_processes}

    def budget(self, items: int) -> float:
        """Wall time after which the grader stops a worker, whatever it is doing: fixed before the
        worker starts, from these limits alone (no record from the worker extends it)."""
        cells = (self.notebook_seconds + 2) * 4   # the first run, and re-runs without a crashing cell
        return cells + (self.item_seconds + 2) * items + 10


@dataclass
class SubmissionResult:
    path: Path | None
    assignment: str | None
    items: list[ItemResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # problems in the notebook that cost no points by themselves
    error: str | None = None                         # why the submission could not be graded at all
    seconds: float = 0.0
    name: str = ""                                   # how reports name it
    protections: Protections | None = None           # the sandbox the code ran in (None: it did not run)
    tampering: list[str] = field(default_factory=list)  # evidence of tampering with the grader, for the instructor
    flags: list[str] = field(default_factory=list)   # for the instructor: graded, but look (assignment mismatch)

    @property
    def score(self) -> float:
        return round(sum(item.points for item in self.items), 2)

    @property
    def max_score(self) -> float:
        return sum(item.max_points for item in self.items)


@dataclass
class PreparedAssignment:
    """An assignment's cases, their encoded inputs and the reference answers, computed once."""

    assignment: Assignment
    cases: dict[str, list[Case]]
    encoded: dict[str, list[Any]]
    expected: dict[str, list[Any]]
    overlay: Path
    blocked: list[str]      # modules the worker may neither import nor read


class Grader:
    """Grades notebooks; holds what is shared between the submissions of a batch."""

    def __init__(self, limits: Limits = Limits(), hidden_cases: str | Path | None = None,
                 zygote: Zygote | None = None) -> None:
        self.limits = limits
        self.hidden = load_hidden_case_sets(hidden_cases) if hidden_cases is not None else {}
        self.zygote = zygote
        self.prepared: dict[str, PreparedAssignment] = {}
        self.lock = threading.Lock()
        self.scratch = Path(tempfile.mkdtemp(prefix="lm-course-grader-"))
        os.chmod(self.scratch, 0o755)  # the unprivileged worker reads the course_lib copy in it

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> "Grader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def assignment(self, name: str | Assignment) -> PreparedAssignment:
        """Load (once) the assignment, with its hidden case sets; KeyError if unknown."""
        key = name if isinstance(name, str) else name.name
        with self.lock:
            if key not in self.prepared:
                spec = load_assignment(name) if isinstance(name, str) else name
                if spec.name in self.hidden:
                    spec = with_hidden(spec, self.hidden[spec.name])
                self.prepared[key] = self._prepare(spec)
            return self.prepared[key]

    def _prepare(self, assignment: Assignment) -> PreparedAssignment:
        cases, encoded, expected = {}, {}, {}
        for item in assignment.case_sets:
            cases[item.name] = _prepared(item.name, "its case generator", lambda: item.cases())
            if not isinstance(cases[item.name], list) or not cases[item.name]:
                raise PreparationError(f"{item.name}: the case generator produced no cases; it must return a "
                                       "non-empty list of Case")
            encoded[item.name] = [_prepared(item.name, f"the inputs of case {case.label!r}",
                                            lambda case=case: codec.encode(case.kwargs))
                                  for case in cases[item.name]]
            expected[item.name] = [_prepared(item.name, f"the reference on case {case.label!r}",
                                             lambda case=case: item.expected(case))
                                   for case in cases[item.name]]
        overlay_root = self.scratch / f"overlay-{assignment.name}"
        blocked = blocked_modules(assignment)
        filtered_package_copy(PACKAGE_DIR, overlay_root, blocked)
        for folder in [overlay_root, *overlay_root.rglob("*")]:
            os.chmod(folder, 0o755 if folder.is_dir() else 0o644)
        return PreparedAssignment(assignment, cases, encoded, expected, overlay_root / PACKAGE_DIR.name, blocked)

    def grade(self, path: str | Path, assignment: str | Assignment | None = None, name: str = "") -> SubmissionResult:
        """Grade one notebook. A broken submission gets a result with an ``error`` and zero points,
        never an exception; only the grader's own misuse (an unknown assignment given) raises."""
        started = time.monotonic()
        path = Path(path)
        try:
            result = self._grade_file(path, assignment)
        except KeyError:
            raise
        except Exception as error:  # a fault of the grader's: this submission's row says so, the batch goes on
            result = SubmissionResult(path, assignment if isinstance(assignment, str) else None,
                                      error=plain_text(f"grader fault: {type(error).__name__}: {error}", 500))
        result.seconds = time.monotonic() - started
        result.name = display_name(name or str(path))
        return result

    def _grade_file(self, path: Path, assignment: str | Assignment | None) -> SubmissionResult:
        try:
            submission = read_submission(path)
        except SubmissionError as error:
            return self._zero(path, assignment or assignment_from_filename(path), str(error))
        chosen = assignment or submission.assignment
        if chosen is None:
            return self._zero(path, None, "cannot tell which assignment this is: pass --assignment chNN")
        try:
            prepared = self.assignment(chosen)
        except KeyError as error:
            if assignment is not None:
                raise
            return SubmissionResult(path, plain_text(chosen, 40),
                                    error=plain_text(f"the notebook names {error.args[0]}"))
        result = self._grade(submission, prepared)
        named = submission.assignment
        if named is not None and named != prepared.assignment.name:
            result.flags.append(plain_text(f"assignment mismatch: the notebook says {named}, "
                                           f"graded as {prepared.assignment.name}", 200))
        return result

    def unreadable(self, name: str, problem: str, assignment: str | None) -> SubmissionResult:
        """The result of a submission that could not even be extracted."""
        result = self._zero(None, assignment or assignment_from_filename(Path(name)), problem)
        result.name = display_name(name)
        return result

    def _zero(self, path: Path | None, assignment: str | Assignment | None, error: str) -> SubmissionResult:
        items = []
        name = assignment if isinstance(assignment, str) or assignment is None else assignment.name
        if assignment is not None:
            try:
                prepared = self.assignment(assignment)
            except KeyError:
                return SubmissionResult(path, name, error=error)
            for item in prepared.assignment.case_sets:
                cases = prepared.cases[item.name]
                items.append(judge(item, cases, [Outcome("missing", message=error)] * len(cases),
                                   prepared.expected[item.name]))
        return SubmissionResult(path, name, items, error=error)

    def _grade(self, submission: Submission, prepared: PreparedAssignment) -> SubmissionResult:
        assignment = prepared.assignment
        workdir = Path(tempfile.mkdtemp(prefix="submission-", dir=self.scratch))
        try:
            job, items = self._job(submission, prepared, workdir)
            collected = self._run_worker(job, items, self.limits.budget(len(assignment.case_sets)))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        result = SubmissionResult(submission.path, assignment.name, protections=collected.protections,
                                  notes=collected.notes, tampering=collected.tampering)
        if collected.notes_withheld:
            result.notes.append(f"{collected.notes_withheld} more problem(s) not shown")
        for item in assignment.case_sets:
            cases = prepared.cases[item.name]
            item_outcomes = collected.outcomes.get(item.name)
            if item_outcomes is None or len(item_outcomes) != len(cases):
                item_outcomes = [Outcome("crashed", message=f"not graded: {collected.ending}")] * len(cases)
            result.items.append(judge(item, cases, item_outcomes, prepared.expected[item.name]))
        return result

    def _job(self, submission: Submission, prepared: PreparedAssignment, workdir: Path) -> tuple[dict, list[ItemCases]]:
        """The job the worker gets (no case inputs), and the items' cases in the order they run:
        public items first, hidden ones last."""
        limits, assignment = self.limits, prepared.assignment
        spec = SandboxSpec(
            workdir=str(workdir), package_dir=str(PACKAGE_DIR), overlay_dir=str(prepared.overlay),
            readable=readable_directories(PACKAGE_DIR), memory_bytes=int(limits.memory_mb * 2**20),
            max_processes=limits.max_processes, max_file_bytes=int(limits.max_file_mb * 2**20),
            tmp_bytes=int(limits.tmp_mb * 2**20), namespaces=limits.namespaces,
        )
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            os.chown(workdir, spec.uid, spec.uid)  # used as is when there is no private filesystem
        ordered = sorted(assignment.case_sets, key=lambda item: item.hidden)
        job = {
            "cells": [{"index": c.index, "source": runnable_source(c.source)} for c in submission.cells],
            "items": [
                {"name": item.name, "function": item.function, "cases": len(prepared.encoded[item.name]),
                 "forbidden": list(item.forbidden), "hidden": item.hidden}
                for item in ordered
            ],
            "blocked_modules": prepared.blocked,
            "limits": limits.to_json(),
            "sandbox": spec.to_json(),
            "environment": worker_environment(),
        }
        return job, [ItemCases(item.name, item.hidden, prepared.encoded[item.name], tuple(item.forbidden))
                     for item in ordered]

    def _run_worker(self, job: dict, items: list[ItemCases], seconds: float) -> Collected:
        """Run one job in a fresh worker; what it reported, checked, and, if it ended badly, why."""
        zygote = self.zygote or shared_zygote()
        try:
            pid, job_fd, result_fd = zygote.start_worker()
        except ZygoteError as error:
            return Collected(ending=str(error))
        session = WorkerSession(pid, job_fd, result_fd, items, ceiling=seconds, item_seconds=self.limits.item_seconds)
        try:
            return session.run(job)
        finally:
            remove_group(pid)


def _prepared(item: str, what: str, action: Callable[[], Any]) -> Any:
    """``action()``, or a PreparationError naming the item and what failed (an instructor's case set
    that raises, exits, or makes inputs the grader cannot send)."""
    try:
        return action()
    except KeyboardInterrupt:
        raise
    except codec.CodecError as error:
        raise PreparationError(f"{item}: {what} cannot be sent to a worker: {error}") from None
    except BaseException as error:  # SystemExit included: an instructor's file must not end the grader
        raise PreparationError(f"{item}: {what} failed: {type(error).__name__}: {error}") from None


def check_memory_room(limits: Limits, zygote: Zygote) -> None:
    """Refuse a memory cap that leaves a worker no room to start (every student would get zero)."""
    zygote.wait_ready()
    if zygote.address_space_mb is None:
        return
    needed = int(zygote.address_space_mb + WORKER_HEADROOM_MB + 0.999)
    if limits.memory_mb < needed:
        raise PreparationError(f"--memory-mb {limits.memory_mb:g} leaves a worker no room to start: Python with "
                               f"PyTorch already takes {zygote.address_space_mb:.0f} MB of address space; "
                               f"use at least {needed}")


def blocked_modules(assignment: Assignment) -> list[str]:
    """Modules a worker must not import nor read: the graded concept's modules, every module of
    course_lib that imports one of them (found in the import graph, transitively), and the case sets."""
    return import_graph.blocked_modules(assignment.reference_modules)


def display_name(name: str) -> str:
    """A submission's name as reports show it: any undecodable byte of a file name escaped."""
    return plain_text(name, 300)


def grade_notebook(path: str | Path, assignment: str | Assignment | None = None, limits: Limits = Limits(),
                   hidden_cases: str | Path | None = None) -> SubmissionResult:
    """Grade one notebook (see ``Grader.grade``); PreparationError for limits or hidden cases that
    cannot work."""
    with Grader(limits, hidden_cases) as grader:
        check_memory_room(limits, grader.zygote or shared_zygote())
        return grader.grade(path, assignment)


def grade_batch(submissions: Iterable[tuple[str, Path | None, str | None]], assignment: str | Assignment | None = None,
                limits: Limits = Limits(), jobs: int | None = None, hidden_cases: str | Path | None = None,
                on_result: Callable[[SubmissionResult], None] = lambda result: None) -> list[SubmissionResult]:
    """Grade ``(name, path, problem)`` submissions with ``jobs`` workers at a time; results in
    the order given. ``problem`` (with ``path`` None) marks one that could not be extracted."""
    submissions = list(submissions)
    jobs = max(1, jobs or default_jobs())
    with Grader(limits, hidden_cases) as grader:
        # everything the instructor chose is checked here, before any work: PreparationError, KeyError
        check_memory_room(limits, grader.zygote or shared_zygote())
        if isinstance(assignment, str):
            grader.assignment(assignment)  # an unknown assignment fails here
        for name in grader.hidden:
            grader.assignment(name)

        def grade_one(entry: tuple[str, Path | None, str | None]) -> SubmissionResult:
            name, path, problem = entry
            named = assignment if isinstance(assignment, str) else None
            try:
                if path is None:
                    return grader.unreadable(name, problem or "could not be read", named)
                return grader.grade(path, assignment, name)
            except KeyError:
                raise
            except Exception as error:  # this submission's row says so; the batch goes on
                result = SubmissionResult(path, named, error=plain_text(f"grader fault: {type(error).__name__}: "
                                                                        f"{error}", 500))
                result.name = display_name(name)
                return result

        results: list[SubmissionResult | None] = [None] * len(submissions)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(grade_one, entry): index for index, entry in enumerate(submissions)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                on_result(results[futures[future]])
    flag_other_assignments(results)
    return results


def flag_other_assignments(results: list[SubmissionResult]) -> None:
    """Flag each submission graded as another assignment than most of its batch (last week's
    notebook handed in again): it stays in the gradebook, marked, and out of the batch's mean."""
    counts: dict[str, int] = {}
    for result in results:
        if result.assignment:
            counts[result.assignment] = counts.get(result.assignment, 0) + 1
    if len(counts) < 2:
        return
    usual = max(counts, key=lambda name: counts[name])
    for result in results:
        if result.assignment and result.assignment != usual:
            result.flags.append(f"assignment mismatch: graded as {result.assignment}, "
                                f"while this batch is {usual}")


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
