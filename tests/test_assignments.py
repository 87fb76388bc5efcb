"""Every assignment, both ends: its solution notebook gets full marks and its untouched exercise
notebook zero, with "not implemented" for each item; and every case set's reference passes its own
cases, which are the same on every call."""
from __future__ import annotations

from pathlib import Path

import pytest

from course_lib.grading import codec
from course_lib.grading.cases import NOT_IMPLEMENTED, assignment_modules, judge, load_assignment
from course_lib.grading.execution import call_case
from course_lib.grading.runner import grade_notebook

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = sorted(assignment_modules())


def notebook(folder: str, assignment: str) -> Path:
    (path,) = (ROOT / folder).glob(f"{assignment}_*.ipynb")
    return path


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_solution_gets_full_marks(assignment):
    result = grade_notebook(notebook("solutions", assignment))
    assert result.error is None and result.notes == []
    assert result.score == load_assignment(assignment).max_points > 0
    assert all(item.points == item.max_points for item in result.items)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_untouched_exercise_gets_zero_with_not_implemented_for_each_item(assignment):
    result = grade_notebook(notebook("exercises", assignment))
    assert result.score == 0
    assert [item.name for item in result.items] == [item.name for item in load_assignment(assignment).case_sets]
    for item in result.items:
        assert item.summary == NOT_IMPLEMENTED


CASE_SETS = [case_set for assignment in ASSIGNMENTS for case_set in load_assignment(assignment).case_sets]


@pytest.mark.parametrize("case_set", CASE_SETS, ids=lambda case_set: case_set.name)
def test_each_reference_passes_its_own_cases(case_set):
    cases = case_set.cases()
    result = judge(case_set, cases, [call_case(case_set.reference, case.kwargs) for case in cases])
    assert result.points == case_set.points and result.passed == len(cases), result.summary


@pytest.mark.parametrize("case_set", CASE_SETS, ids=lambda case_set: case_set.name)
def test_cases_are_the_same_on_every_call(case_set):
    first, second = case_set.cases(), case_set.cases()
    assert [codec.encode(case.kwargs) for case in first] == [codec.encode(case.kwargs) for case in second]
