"""Hidden case sets: instructor-only tests that live outside the repository.

``course grade --hidden-cases DIR`` reads every ``DIR/chNN*.py``. Each file is ordinary Python that
defines ``CASE_SETS``, a list of ``CaseSet`` for assignment ``chNN``, for example::

    # hidden/ch01_extra.py
    from course_lib import ngram
    from course_lib.grading.cases import Case, CaseSet

    CASE_SETS = [
        CaseSet(
            name="ch01.perplexity_long", function="perplexity", points=1,
            make_cases=lambda: [Case("a long text", {"logprobs": [-2.0] * 5000})],
            reference=ngram.perplexity_from_logprobs,
        ),
    ]

The files are imported by the grader only, never by a worker (whose sandbox does not even show the
folder). Their items are graded after the public ones and reported by name and points alone: no
case label, input or expected value reaches the student.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from course_lib.grading.cases import Assignment, CaseSet


class HiddenCasesError(ValueError):
    """A hidden-cases folder or file the grader cannot use; the message says what to fix."""


def load_hidden_case_sets(folder: str | Path) -> dict[str, tuple[CaseSet, ...]]:
    """Assignment name -> the hidden case sets defined for it in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HiddenCasesError(f"--hidden-cases {folder}: not a folder")
    found: dict[str, list[CaseSet]] = {}
    files = sorted(folder.glob("ch[0-9][0-9]*.py"))
    if not files:
        raise HiddenCasesError(f"--hidden-cases {folder}: no chNN*.py files in it")
    for path in files:
        assignment = path.name[:4]
        for case_set in _case_sets_of(path):
            if case_set.assignment != assignment:
                raise HiddenCasesError(f"{path}: case set {case_set.name!r} does not belong to {assignment} "
                                       f"(its name should start with '{assignment}.')")
            found.setdefault(assignment, []).append(dataclasses.replace(case_set, hidden=True))
    return {name: tuple(sets) for name, sets in found.items()}


def _case_sets_of(path: Path) -> list[CaseSet]:
    spec = importlib.util.spec_from_file_location(f"course_lib_hidden_cases_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # SystemExit too: a hidden-cases file must not end the grader
        raise HiddenCasesError(f"{path}: could not be loaded: {type(error).__name__}: {error}") from None
    case_sets = getattr(module, "CASE_SETS", None)
    if not isinstance(case_sets, (list, tuple)) or not all(isinstance(c, CaseSet) for c in case_sets):
        raise HiddenCasesError(f"{path}: must define CASE_SETS, a list of CaseSet")
    return list(case_sets)


def with_hidden(assignment: Assignment, hidden: tuple[CaseSet, ...]) -> Assignment:
    """The assignment with its hidden case sets added after the public ones."""
    public = {item.name for item in assignment.case_sets}
    clashes = sorted(public & {item.name for item in hidden})
    if clashes:
        raise HiddenCasesError(f"hidden case sets reuse the names of public ones: {', '.join(clashes)}; "
                               "give them names of their own")
    names = [item.name for item in hidden]
    if len(set(names)) != len(names):
        raise HiddenCasesError(f"hidden case sets of {assignment.name} have duplicate names")
    return dataclasses.replace(assignment, case_sets=assignment.case_sets + tuple(hidden))
