"""``check(name, fn)``: instant feedback in the student's own notebook.

It runs the same case sets as ``course grade``, in the student's kernel, and prints a report.
It never raises into the notebook: whatever goes wrong is reported as text.
"""
from __future__ import annotations

from typing import Any, Callable

from course_lib.grading.cases import find_case_set, judge
from course_lib.grading.execution import call_case
from course_lib.grading.report import format_item

CHECK_TIMEOUT_SECONDS = 20.0


def check(name: str, function: Callable[..., Any]) -> None:
    """Run the graded item ``name`` (e.g. ``"ch01.count_ngrams"``) against ``function`` and print the result."""
    try:
        print(_check(name, function))
    except KeyboardInterrupt:
        raise
    except Exception as error:  # a checker bug must not look like the student's mistake
        print(f"check({name!r}) could not run: {type(error).__name__}: {error}. "
              "This is a problem in the course's checker, not in your code; please report it.")


def _check(name: str, function: Callable[..., Any]) -> str:
    try:
        case_set = find_case_set(name)
    except KeyError as error:
        return f"check: {error.args[0]}"
    if not callable(function):
        return (f"check({name!r}, ...): the second argument must be your function "
                f"`{case_set.function}`, got a {type(function).__name__}")
    cases = case_set.cases()
    outcomes = []
    for case in cases:
        outcome = call_case(function, case.kwargs, timeout=CHECK_TIMEOUT_SECONDS)
        outcomes.append(outcome)
        if outcome.status == "not_implemented":  # no point calling a stub again
            outcomes.extend([outcome] * (len(cases) - len(outcomes)))
            break
    return format_item(judge(case_set, cases, outcomes))
