"""Every assignment, both ends: its solution notebook gets full marks and its untouched exercise
notebook zero, with "not implemented" for each item; every case set's reference passes its own
cases, which are the same on every call; every case set follows the shared policies (forbidden
names that exist, named tolerances); and every hint points to its chapter without the solution."""
from __future__ import annotations

import ast
import importlib
import re
import textwrap
from pathlib import Path

import nbformat
import pytest

from course_lib.grading import codec, policies
from course_lib.grading.cases import NOT_IMPLEMENTED, assignment_modules, judge, load_assignment
from course_lib.grading.compare import Tolerance
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


# ------------------------------------------------------------------ shared policies


def resolve(dotted_name: str) -> object:
    """The object a dotted name such as ``torch._VF.lstm_cell`` names: the longest importable module
    prefix, then attributes (AttributeError or ImportError when it names nothing)."""
    parts = dotted_name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            owner = getattr(owner, part)
        return owner
    raise ImportError(f"no module found for {dotted_name!r}")


FORBIDDEN_NAMES = sorted({name for group in policies.FORBIDDEN_GROUPS.values() for name in group}
                         | {name for case_set in CASE_SETS for name in case_set.forbidden})


@pytest.mark.parametrize("name", FORBIDDEN_NAMES)
def test_every_forbidden_name_resolves_to_a_real_object(name):
    # A misspelt name would be guarded nowhere and forbid nothing.
    assert callable(resolve(name)), name


@pytest.mark.parametrize("group", sorted(policies.FORBIDDEN_GROUPS))
def test_no_two_names_of_a_group_are_the_same_object(group):
    # The worker guards an object everywhere it is found; a second name for it would wrap the guard.
    objects = {}
    for name in policies.FORBIDDEN_GROUPS[group]:
        assert id(resolve(name)) not in objects, f"{name} is {objects.get(id(resolve(name)))}"
        objects[id(resolve(name))] = name


def test_case_sets_take_their_forbidden_apis_and_tolerances_from_the_shared_policies():
    groups = set(policies.FORBIDDEN_GROUPS.values())
    presets = set(policies.TOLERANCES.values())
    unique_tolerances = {("ch04.clip_by_global_norm", Tolerance(rtol=1e-5, atol=1e-12))}  # see ch04_rnn.py
    for case_set in CASE_SETS:
        if case_set.forbidden:
            covered = {name for group in groups if set(group) <= set(case_set.forbidden) for name in group}
            assert covered == set(case_set.forbidden), case_set.name
        assert case_set.tolerance in presets or (case_set.name, case_set.tolerance) in unique_tolerances, \
            case_set.name
    import torch

    recurrent = {resolve(name) for name in policies.RECURRENT_LAYERS}
    functional = [torch.lstm_cell, torch.gru_cell, torch.rnn_tanh_cell, torch.rnn_relu_cell, torch.lstm,
                  torch.gru, torch.rnn_tanh, torch._VF.lstm_cell, torch._VF.gru]
    assert all(entry in recurrent for entry in functional)
    assert {"torch.func.grad", "torch.func.jacrev", "torch.autograd.functional.jacobian"} <= set(policies.AUTOGRAD)


# ------------------------------------------------------------------ hints teach without giving the answer

# A hint names what is wrong (one sentence) and the section to read (one sentence, with a heading
# of up to 60 characters): 220 characters, two and a half lines of the 88-column page. The hints
# that spelled out an algorithm step by step ran to 250-330 characters; that does not fit.
HINT_LIMIT = 220
SECTION = re.compile(r'See "([^"]+)" in Chapter (\d+)\.')
SOLUTION_BLOCK = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
OPERATORS = set("()[]@*+-/=<>")


def squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def solution_fragments(assignment: str) -> set[str]:
    """Every line of the solution code, and every expression inside it (``h_prev @ W_hh.T``,
    ``z.max(dim=-1, keepdim=True).values``), without whitespace; trivial ones (short, or a bare
    name) left out."""
    fragments = set()
    for cell in nbformat.read(notebook("solutions", assignment), as_version=4).cells:
        for block in SOLUTION_BLOCK.findall(cell.source if cell.cell_type == "code" else ""):
            code = textwrap.dedent(block)
            pieces = [line.split("#", 1)[0] for line in code.splitlines()]
            pieces += [ast.get_source_segment(code, node) or "" for node in ast.walk(ast.parse(code))
                       if isinstance(node, ast.expr)]
            fragments |= {squeezed(piece) for piece in pieces
                          if len(squeezed(piece)) >= 10 and OPERATORS & set(piece)}
    return fragments


def solution_lines_in(hint: str, fragments: set[str]) -> list[str]:
    return [fragment for fragment in fragments if fragment in squeezed(hint)]


def book_headings(chapter: int) -> set[str]:
    paths = sorted((ROOT / "book").glob(f"{chapter:02d}_*.ipynb"))
    if len(paths) != 1:
        pytest.fail(f"Chapter {chapter} needs one book notebook book/{chapter:02d}_*.ipynb for its hints "
                    f"to point into, found {len(paths)}")
    (path,) = paths
    cells = nbformat.read(path, as_version=4).cells
    return {line.lstrip("#").strip() for cell in cells if cell.cell_type == "markdown"
            for line in cell.source.splitlines() if line.startswith("#")}


@pytest.mark.parametrize("case_set", CASE_SETS, ids=lambda case_set: case_set.name)
def test_each_hint_points_to_a_section_of_its_chapter_and_holds_no_solution_line(case_set):
    hint = case_set.hint
    assert 0 < len(hint) <= HINT_LIMIT, f"{len(hint)} characters"
    assert solution_lines_in(hint, solution_fragments(case_set.assignment)) == []
    section = SECTION.search(hint)
    assert section, "the hint names no section: end it with 'See \"HEADING\" in Chapter N.'"
    heading, chapter = section.group(1), int(section.group(2))
    assert chapter == int(case_set.assignment[2:])
    assert heading in book_headings(chapter)


def test_the_hint_check_catches_a_hint_that_gives_the_solution_away():
    fragments = solution_fragments("ch04")
    assert solution_lines_in("one row per example: h_t = np.tanh(i_t @ W_hi.T + h_prev @ W_hh.T + b_h)", fragments)
    assert solution_lines_in("scale = min(1.0, max_norm / (total_norm + 1e-6))", fragments)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_untouched_exercise_runs_top_to_bottom_without_a_traceback(assignment):
    # Run All before any item is done: every check says "not implemented" and the closing cell
    # says what it needs, instead of a NotImplementedError traceback.
    from nbclient import NotebookClient

    from course_lib.notebooks import merge_streams

    exercise = nbformat.read(notebook("exercises", assignment), as_version=4)
    NotebookClient(exercise, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    # a kernel may send one print in several stream messages: join them as the stored notebooks do
    merge_streams(exercise)
    outputs = [output for cell in exercise.cells if cell.cell_type == "code" for output in cell.outputs]
    errors = [f"{output.ename}: {output.evalue}" for output in outputs if output.output_type == "error"]
    assert errors == []
    items = len(load_assignment(assignment).case_sets)
    assert f"finish items 1 to {items} first" in outputs[-1].get("text", "")
