"""The adversarial suite: each submission in ``tests/submissions`` tries one attack or fault, and all of
them are graded in one batch, two at a time, next to the honest solution. Each gets exactly the points
and the message it should; the honest one gets full marks; the grader and its files are untouched."""
from __future__ import annotations

import hashlib
import math
import os
import sys

import pytest

from course_lib.grading.cases import NOT_IMPLEMENTED, load_assignment
from course_lib.grading.export import feedback_json, feedback_markdown, gradescope_results
from course_lib.grading.report import format_submission
from course_lib.grading.runner import Limits, grade_batch
from submissions import ATTACKS, PACKAGE, ROOT, write_attacks

LIMITS = Limits(case_seconds=1, item_seconds=3, notebook_seconds=3, memory_mb=2048, max_processes=48)
SECRET_LABEL = "SECRET-LABEL-7731"
SECRET_INPUT = 0.0136205  # its perplexity 1/x = 73.4187 is a number no path or score contains
HIDDEN_CASES = f'''
import math
from course_lib import ngram
from course_lib.grading.cases import Case, CaseSet

CASE_SETS = [
    CaseSet(name="ch01.perplexity_hidden", function="perplexity", points=1,
            make_cases=lambda: [Case("{SECRET_LABEL}", {{"logprobs": [math.log({SECRET_INPUT})] * 3}})],
            reference=ngram.perplexity_from_logprobs,
            forbidden=("numpy.mean", "torch.nn.LSTM")),
]
'''
GUARDED_FILES = [PACKAGE / "grading" / "compare.py", PACKAGE / "grading" / "cases.py",
                 ROOT / "tests" / "test_grading.py"]
PUBLIC = {item.name: item.points for item in load_assignment("ch01").case_sets}
ALL_ITEMS = {**PUBLIC, "ch01.perplexity_hidden": 1}


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    hidden = tmp_path_factory.mktemp("hidden")
    (hidden / "ch01_hidden.py").write_text(HIDDEN_CASES)
    sentinel = tmp_path_factory.mktemp("grader") / "unpickled"
    paths = write_attacks(folder, {"hidden": str(hidden), "sentinel": str(sentinel)})
    before = {path: digest(path) for path in GUARDED_FILES}
    os.environ["LM_COURSE_GRADER_SECRET"] = "a token the submissions must not see"
    try:
        results = grade_batch([(name, path, None) for name, path in paths.items()], "ch01", LIMITS,
                              jobs=2, hidden_cases=hidden)
    finally:
        del os.environ["LM_COURSE_GRADER_SECRET"]
    return {"results": {r.name: r for r in results}, "before": before, "sentinel": sentinel}


def needs(result, protection: str | None) -> None:
    if protection and protection not in result.protections.active:
        pytest.skip(f"'{protection}' is not available here: {result.protections.missing}")


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda attack: attack.name)
def test_each_submission_gets_exactly_its_points_and_message(batch, attack):
    result = batch["results"][attack.name]
    needs(result, attack.needs)
    assert result.error is None
    got = {item.name: item.points for item in result.items}
    if attack.base == "exercise":
        assert got == dict.fromkeys(ALL_ITEMS, 0)
        assert all(item.summary == NOT_IMPLEMENTED for item in result.items)
        return
    expected = {name: attack.expected.get(name, (full, ""))[0] for name, full in ALL_ITEMS.items()}
    if "ch01.perplexity" in attack.expected:  # the hidden item calls the same function
        expected["ch01.perplexity_hidden"] = 0
    assert got == expected, format_submission(result)
    for item in result.items:
        words = attack.expected.get(item.name, (None, ""))[1]
        assert words in item.summary, (item.name, item.summary)
    if attack.note:
        assert any(attack.note in note for note in result.notes), result.notes


def test_feedback_stays_short_whatever_a_submission_prints_raises_or_returns(batch):
    for result in batch["results"].values():
        for item in result.items:
            assert all(len(verdict.reason) <= 600 for verdict in item.verdicts), (result.name, item.name)
        assert all(len(note) <= 1200 for note in result.notes)


def test_the_honest_solution_gets_full_marks_in_the_same_batch(batch):
    honest = batch["results"]["honest"]
    assert honest.score == honest.max_score == 10
    assert honest.notes == [] and honest.error is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the namespaces are Linux's")
def test_the_sandbox_reports_what_was_active(batch):
    protections = batch["results"]["honest"].protections
    assert {"separate process", "memory cap", "file size cap", "no core dumps"} <= set(protections.active)
    if "namespaces" in protections.missing:
        pytest.skip(f"namespaces unavailable here: {protections.missing['namespaces']}")
    assert {"network cut off", "own process-id namespace", "private filesystem", "no new privileges",
            "process cap"} <= set(protections.active), protections
    if os.geteuid() == 0:
        assert "unprivileged uid 65534" in protections.active


def test_tampering_leaves_the_grader_files_as_they_were(batch):
    assert {path: digest(path) for path in GUARDED_FILES} == batch["before"]


def test_the_grader_never_unpickles_what_a_submission_returns(batch):
    assert not batch["sentinel"].exists()


def test_hidden_cases_show_only_their_name_and_points(batch):
    expected_answer = f"{1 / SECRET_INPUT:.6g}"
    for name in ("calls_a_forbidden_api", "reads_the_hidden_cases", "honest"):
        result = batch["results"][name]
        texts = [format_submission(result), feedback_markdown(result), str(feedback_json(result)),
                 str(gradescope_results(result))]
        for text in texts:
            assert "ch01.perplexity_hidden" in text
            for secret in (SECRET_LABEL, str(SECRET_INPUT)[:8], f"{math.log(SECRET_INPUT):.6}", expected_answer):
                assert secret not in text, (name, secret)


def test_submissions_graded_alongside_the_attacks_keep_full_marks(batch):
    results = list(batch["results"].values())
    # graded two at a time next to fork and memory bombs, crashes and hangs: nothing of theirs was lost
    assert sum(r.score for r in results if r.name in ("honest", "leaves_a_process_behind",
                                                       "reads_the_grader_environment")) == 30


def test_without_namespaces_the_reference_stays_out_of_reach(tmp_path):
    """Where the platform has no namespaces the grader still runs and still keeps the reference
    unimportable (the import blocker, and course_lib's path pointing at the copy without it)."""
    paths = write_attacks(tmp_path, {"hidden": str(tmp_path), "sentinel": str(tmp_path / "s")})
    chosen = ["honest", "removes_the_import_blocker", "imports_the_case_sets"]
    limits = Limits(case_seconds=2, item_seconds=5, notebook_seconds=10, namespaces=False)
    results = grade_batch([(name, paths[name], None) for name in chosen], "ch01", limits, jobs=2)
    assert [r.score for r in results] == [9, 8, 8]
    assert "No module named 'course_lib.ngram'" in results[1].items[3].summary
    for result in results:
        assert "namespaces" in result.protections.missing
        assert "network cut off" not in result.protections.active
