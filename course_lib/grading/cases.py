"""Case sets: what one graded item of an assignment is, defined once.

A case set names the function a student writes, its points, a deterministic generator of test
inputs, the reference implementation, the tolerance of the comparison, the APIs the exercise
forbids and a hint. The in-notebook ``check`` and the ``course grade`` command run the same
case sets; only where the submission's code runs differs.
"""
from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from course_lib.checks import ArgumentError
from course_lib.grading import codec
from course_lib.grading.compare import Tolerance, compare, shape_note


@dataclass(frozen=True)
class Case:
    """One call of the student's function: keyword arguments and a short label for feedback."""

    label: str
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class CaseSet:
    name: str                           # "ch01.count_ngrams": assignment, dot, item
    function: str                       # the name the student's notebook defines
    points: float
    make_cases: Callable[[], list[Case]]
    reference: Callable[..., Any]
    tolerance: Tolerance = Tolerance()  # a preset of grading/policies.py, e.g. FLOAT64_SAME_ORDER
    forbidden: tuple[str, ...] = ()     # dotted names of APIs the exercise may not call: policies' groups
    hint: str = ""                      # what is wrong and the chapter's section to read; never the answer
    hidden: bool = False                # instructor-only: reported by name and points, never by inputs

    @property
    def assignment(self) -> str:
        return self.name.split(".", 1)[0]

    def cases(self) -> list[Case]:
        cases = self.make_cases()
        if not cases:
            raise ValueError(f"case set {self.name} generated no cases")
        return cases

    def expected(self, case: Case) -> Any:
        """The reference answer as it would arrive from a worker (encoded, then decoded)."""
        return codec.decode(codec.encode(self.reference(**copy.deepcopy(case.kwargs))))


def graded_item(name: str, *, points: float, make_cases: Callable[[], list[Case]],
                reference: Callable[..., Any], tolerance: Tolerance = Tolerance(),
                forbidden: tuple[str, ...] = (), hint: str = "", function: str | None = None,
                hidden: bool = False) -> CaseSet:
    """A case set as a chapter declares it: ``name`` is "chNN.item" and the student's function
    is called like the item unless ``function`` names it; ``hint`` is a paragraph whose line breaks
    and indentation fold to single spaces, so it can be written across lines like prose."""
    item = name.partition(".")[2]
    if not item:
        raise ArgumentError(f"a graded item is named like 'ch01.count_ngrams', got {name!r}")
    return CaseSet(name=name, function=function or item, points=points, make_cases=make_cases,
                   reference=reference, tolerance=tolerance, forbidden=forbidden,
                   hint=" ".join(hint.split()), hidden=hidden)


@dataclass(frozen=True)
class Assignment:
    name: str                           # "ch01"
    title: str
    case_sets: tuple[CaseSet, ...]
    reference_modules: tuple[str, ...]  # course_lib modules that solve the exercises: not importable while graded

    @property
    def max_points(self) -> float:
        return sum(item.points for item in self.case_sets)

    def case_set(self, name: str) -> CaseSet:
        for item in self.case_sets:
            if item.name == name or item.name.split(".", 1)[1] == name:
                return item
        known = ", ".join(item.name for item in self.case_sets)
        raise KeyError(f"no graded item {name!r} in {self.name}; the items are: {known}")


ASSIGNMENTS_FOLDER = Path(__file__).resolve().parent / "assignments"


def assignment_modules() -> dict[str, str]:
    """Assignment name -> module defining ``ASSIGNMENT``: one ``assignments/chNN_topic.py`` per chapter.

    Modules are imported only when needed: importing course_lib.grading must not import the
    reference implementations (a grading worker refuses them).
    """
    return {
        path.name[:4]: f"course_lib.grading.assignments.{path.stem}"
        for path in sorted(ASSIGNMENTS_FOLDER.glob("ch[0-9][0-9]_*.py"))
    }


def load_assignment(name: str) -> Assignment:
    modules = assignment_modules()
    if name not in modules:
        known = ", ".join(sorted(modules))
        raise KeyError(f"unknown assignment {name!r}; the assignments are: {known}")
    return importlib.import_module(modules[name]).ASSIGNMENT


def find_case_set(name: str) -> CaseSet:
    assignment, _, item = name.partition(".")
    if not item:
        raise KeyError(f"a graded item is named like 'ch01.count_ngrams', got {name!r}")
    return load_assignment(assignment).case_set(name)


# --- Outcomes: what running one case produced, as plain data -------------------------------------

@dataclass(frozen=True)
class Outcome:
    """What a call of the student's function did. ``status`` is one of: ok, not_implemented,
    error, missing, timeout, crashed, forbidden, unencodable, memory, processes."""

    status: str
    value: Any = None          # encoded return value when status == "ok"
    message: str = ""

    def to_json(self) -> dict:
        return {"status": self.status, "value": self.value, "message": self.message}

    @classmethod
    def from_json(cls, data: Any) -> "Outcome":
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            return cls("crashed", message="the worker sent a malformed result")
        return cls(data["status"], data.get("value"), str(data.get("message", ""))[:2000])


@dataclass(frozen=True)
class CaseVerdict:
    label: str
    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class ItemResult:
    name: str
    points: float
    max_points: float
    verdicts: tuple[CaseVerdict, ...]
    hint: str = ""
    hidden: bool = False

    @property
    def passed(self) -> int:
        return sum(v.passed for v in self.verdicts)

    @property
    def summary(self) -> str:
        failed = [v for v in self.verdicts if not v.passed]
        return failed[0].reason if failed else "all cases passed"


def judge(case_set: CaseSet, cases: list[Case], outcomes: list[Outcome],
          expected: list[Any] | None = None) -> ItemResult:
    """Score an item from the outcomes of its cases: points in proportion to the cases passed.

    The verdict is computed here, against the reference run in this process (``expected``, the
    reference answers when already computed): the outcomes carry only what the submission's
    function returned.
    """
    if expected is None:
        expected = [_NOT_COMPUTED] * len(cases)
    verdicts = []
    for case, outcome, answer in zip(cases, outcomes, expected, strict=True):
        verdicts.append(CaseVerdict(case.label, *_verdict(case_set, case, outcome, answer)))
    passed = sum(v.passed for v in verdicts)
    points = round(case_set.points * passed / len(verdicts), 2)
    return ItemResult(case_set.name, points, case_set.points, tuple(verdicts), case_set.hint, case_set.hidden)


NOT_IMPLEMENTED = "not implemented yet: replace `raise NotImplementedError` with your code"


_NOT_COMPUTED = object()


def _verdict(case_set: CaseSet, case: Case, outcome: Outcome, expected: Any) -> tuple[bool, str]:
    if outcome.status == "not_implemented":
        return False, NOT_IMPLEMENTED
    if outcome.status == "missing":
        return False, outcome.message or f"no function named `{case_set.function}` was defined"
    if outcome.status == "error" and not case_set.hidden:  # a hidden case's inputs stay secret
        return False, outcome.message + shape_note(outcome.message, case.kwargs)
    if outcome.status != "ok":
        return False, outcome.message or outcome.status
    try:
        actual = codec.decode(outcome.value)
    except Exception as error:  # whatever the worker sent, the grader must not fail on it
        return False, f"the answer could not be read: {error}"[:500]
    if expected is _NOT_COMPUTED:
        expected = case_set.expected(case)
    try:
        reason = compare(expected, actual, case_set.tolerance)
    except Exception as error:
        reason = f"the answer could not be compared with the expected one: {type(error).__name__}: {error}"[:500]
    return (reason is None), (reason or "")


def max_points(items: list[ItemResult]) -> float:
    return sum(item.max_points for item in items)
