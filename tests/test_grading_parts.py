"""The grader's parts on their own: forbidden-API guards, the sandbox's file views, safe archive
paths, the reports, and a grader that never fails on what a worker sends back."""
from __future__ import annotations

import errno
import io
import os
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.grading import codec, sandbox
from course_lib.grading.cases import Case, CaseSet, Outcome, graded_item, judge, load_assignment
from course_lib.grading.execution import call_case
from course_lib.grading.export import (
    file_names, gradescope_results, item_statistics, spreadsheet_safe,
)
from course_lib.grading.forbidden import ForbiddenCall, Guards, resolve_owner
from course_lib.grading.hidden import HiddenCasesError, with_hidden
from course_lib.grading.inputs import _TooLarge, _extract_member, _safe_parts
from course_lib.grading.runner import PACKAGE_DIR, SubmissionResult

# --- forbidden APIs ------------------------------------------------------------------------------


@pytest.fixture
def library():
    """A small library module with a function, a class and an alias of the function elsewhere."""
    module = types.ModuleType("toylib")
    exec("def fast_sum(xs):\n    return sum(xs)\n"
         "class Engine:\n    def __init__(self, n):\n        self.n = n\n", module.__dict__)
    other = types.ModuleType("toylib_user")
    other.total = module.fast_sum
    sys.modules.update(toylib=module, toylib_user=other)
    yield module, other
    del sys.modules["toylib"], sys.modules["toylib_user"]


def test_a_guard_passes_calls_through_until_it_is_armed(library):
    module, other = library
    guards = Guards()
    assert guards.install(["toylib.fast_sum", "toylib.Engine"]) == {}
    assert module.fast_sum([1, 2]) == 3 and other.total([1, 2]) == 3 and module.Engine(4).n == 4
    with guards.armed(["toylib.fast_sum"]):
        with pytest.raises(ForbiddenCall, match="forbidden API: toylib.fast_sum"):
            other.total([1])  # an alias made before the guard was installed
        assert module.Engine(1).n == 1  # not forbidden for this item
    assert guards.calls == ["toylib.fast_sum"]


def test_a_forbidden_class_is_caught_through_its_subclasses(library):
    module, _ = library
    guards = Guards()
    guards.install(["toylib.Engine"])

    class Tuned(module.Engine):
        pass

    with guards.armed(["toylib.Engine"]), pytest.raises(ForbiddenCall):
        Tuned(3)
    assert isinstance(Tuned(3), module.Engine)  # the class itself is unchanged otherwise


def test_names_that_cannot_be_guarded_are_reported(library):
    problems = Guards().install(["toylib.nothing_here", "no_such_module_at_all.f", "torch.nn.LSTM"])
    assert set(problems) == {"toylib.nothing_here", "no_such_module_at_all.f"}
    with pytest.raises(ValueError, match="dotted name"):
        resolve_owner("LSTM")


def test_a_forbidden_call_fails_the_case_even_when_swallowed(library):
    module, _ = library
    guards = Guards()
    guards.install(["toylib.fast_sum"])

    def sneaky(xs):
        try:
            return module.fast_sum(xs)
        except BaseException:
            return 0

    outcome = call_case(sneaky, {"xs": [1, 2]}, around=lambda: guards.armed(["toylib.fast_sum"]))
    assert outcome.status == "ok" and guards.calls == ["toylib.fast_sum"]  # the worker turns this into a failure


# --- the outcomes of a call ------------------------------------------------------------------------

def test_limits_and_strange_answers_get_their_own_status():
    def hoards():
        raise MemoryError()

    def fake_fork():
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    def forks():
        fake_fork()

    class Slippery(list):
        def __iter__(self):
            raise RuntimeError("cannot iterate me")

    assert call_case(hoards, {}).status == "memory"
    assert call_case(forks, {}).status == "processes"
    unreadable = call_case(lambda: Slippery([1]), {})
    assert unreadable.status == "unencodable" and "cannot iterate me" in unreadable.message


def test_a_case_has_a_cpu_time_limit_as_well_as_a_wall_time_one():
    def spins():
        while True:
            pass

    outcome = call_case(spins, {}, timeout=30, cpu_timeout=0.2)
    assert outcome.status == "timeout" and "CPU time limit exceeded" in outcome.message


def test_case_inputs_come_back_as_the_types_they_were_sent_as():
    sent = {"z": torch.arange(6, dtype=torch.float64).reshape(2, 3), "a": np.arange(3, dtype=np.int16),
            "nested": [(torch.tensor([True, False]),)], "n": 3}
    received = codec.to_native(codec.decode(codec.encode(sent)))
    assert isinstance(received["z"], torch.Tensor) and received["z"].dtype == torch.float64
    assert torch.equal(received["z"], sent["z"])
    assert type(received["a"]) is np.ndarray and received["a"].dtype == np.int16
    assert torch.equal(received["nested"][0][0], sent["nested"][0][0]) and received["n"] == 3


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(value=json_values, tag=st.sampled_from(["list", "dict", "bigint", "array", "scalar", "float", "set", "x"]))
def test_the_grader_never_fails_on_what_a_worker_sends(value, tag):
    case_set = load_assignment("ch01").case_set("perplexity")
    cases = case_set.cases()[:1]
    for sent in (value, {"t": tag, "v": value}, {"t": tag, "dtype": value, "shape": value, "data": value}):
        result = judge(case_set, cases, [Outcome.from_json({"status": "ok", "value": sent})])
        assert result.points == 0 or sent == codec.encode(case_set.expected(cases[0]))


# --- the sandbox's view of the files ---------------------------------------------------------------

def test_the_course_lib_copy_leaves_out_the_reference_and_compiled_files(tmp_path):
    copy = sandbox.filtered_package_copy(PACKAGE_DIR, tmp_path, ["course_lib.ngram", "course_lib.grading.assignments",
                                                                 "course_lib.bpe"])
    assert (copy / "__init__.py").is_file() and (copy / "grading" / "worker.py").is_file()
    assert not (copy / "ngram.py").exists() and not (copy / "bpe").exists()
    assert not (copy / "grading" / "assignments").exists()
    assert not list(copy.rglob("__pycache__")) and not list(copy.rglob("*.pyc"))


def test_the_worker_reads_python_but_not_the_course_checkout():
    readable = sandbox.readable_directories(PACKAGE_DIR)
    checkout = str(PACKAGE_DIR.parent)
    assert os.path.abspath(sys.prefix) in readable
    for path in readable:
        inside_checkout = path == checkout or path.startswith(checkout + "/")
        assert not inside_checkout or path.startswith(os.path.abspath(sys.prefix)), path
        assert not checkout.startswith(path.rstrip("/") + "/"), path  # no folder that holds the checkout


def test_only_the_outermost_folders_are_bound():
    assert sandbox._outermost(["/usr", "/usr/lib", "/etc", "/nonexistent-folder"]) == ["/etc", "/usr"]


# --- archives --------------------------------------------------------------------------------------

@given(st.text(alphabet="ab./\\:\x00", max_size=12))
def test_a_safe_archive_name_always_stays_inside_the_destination(name):
    parts = _safe_parts(name)
    if parts is not None:
        base = Path("/srv/extract")
        assert base in (base.joinpath(*parts)).resolve().parents


def test_extraction_stops_at_the_limit_and_leaves_nothing_behind(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("a.ipynb", b" " * 5000)
    with zipfile.ZipFile(buffer) as bundle:
        member = bundle.infolist()[0]
        with pytest.raises(_TooLarge):
            _extract_member(bundle, member, tmp_path / "a.ipynb", limit=1000)
        true_size, member.file_size = member.file_size, 10  # an archive that lies about the size:
        with pytest.raises(zipfile.BadZipFile):                # the inflated data fails its check
            _extract_member(bundle, member, tmp_path / "a.ipynb", limit=1000)
        member.file_size = true_size
        assert _extract_member(bundle, member, tmp_path / "b.ipynb", limit=5000) == 5000
    assert not (tmp_path / "a.ipynb").exists() and (tmp_path / "b.ipynb").stat().st_size == 5000


# --- reports ---------------------------------------------------------------------------------------

def result_with(points: list[tuple[float, float]], name: str = "s.ipynb",
                hidden_last: bool = False) -> SubmissionResult:
    items = []
    for index, (got, full) in enumerate(points):
        hidden = hidden_last and index == len(points) - 1
        case_set = CaseSet(f"ch01.item{index}", "f", full, lambda: [Case("c", {})], lambda: 1.0, hidden=hidden)
        outcome = Outcome("ok", value=1.0 if got == full else 2.0)
        items.append(judge(case_set, [Case("c", {})], [outcome]))
    return SubmissionResult(Path(name), "ch01", items, name=name)


def test_item_statistics_are_means_and_shares():
    results = [result_with([(1, 1), (0, 2)]), result_with([(1, 1), (2, 2)]), result_with([(0, 1), (2, 2)])]
    rows = {row["item"]: row for row in item_statistics(results)}
    assert rows["ch01.item0"]["mean_points"] == pytest.approx(2 / 3, abs=1e-3)
    assert rows["ch01.item1"]["full_marks"] == pytest.approx(2 / 3, abs=1e-3)
    assert rows["ch01.item1"]["zero"] == pytest.approx(1 / 3, abs=1e-3)


def test_gradescope_shows_hidden_items_after_publication_without_detail():
    results = gradescope_results(result_with([(1, 1), (0, 2)], hidden_last=True))
    assert results["score"] == 1
    public, hidden = results["tests"]
    assert (public["visibility"], hidden["visibility"]) == ("visible", "after_published")
    assert hidden["status"] == "failed" and "only the points" in hidden["output"]


def test_names_from_students_are_safe_in_spreadsheets_and_file_systems():
    assert spreadsheet_safe("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert spreadsheet_safe("alice.ipynb") == "alice.ipynb"
    names = file_names([result_with([], name=n) for n in ["../../etc/passwd", "a b.ipynb", "a_b.ipynb", ""]])
    assert len(set(names)) == 4 and all("/" not in n and not n.startswith(".") for n in names)


def test_hidden_case_sets_may_not_take_public_names():
    assignment = load_assignment("ch01")
    clash = CaseSet("ch01.perplexity", "perplexity", 1, lambda: [Case("c", {})], lambda: 1.0)
    with pytest.raises(HiddenCasesError, match="reuse the names"):
        with_hidden(assignment, (clash,))


# --- guards that cannot quietly go, and text that cannot forge a line --------------------------------

GUARDED_ENTRY_POINTS = """
import pytest, torch
from course_lib.grading.forbidden import ForbiddenCall, Guards
guards = Guards()
assert guards.install(["torch.lstm_cell"]) == {}
x, cell = torch.zeros(1, 2), torch.nn.LSTMCell(2, 2)
calls = [lambda: torch.lstm_cell(x, (x, x), cell.weight_ih, cell.weight_hh),
         lambda: torch._VF.lstm_cell(x, (x, x), cell.weight_ih, cell.weight_hh),
         lambda: torch.ops.aten.lstm_cell(x, [x, x], cell.weight_ih, cell.weight_hh),
         lambda: cell(x)]  # the layer calls torch._VF.lstm_cell
for index, call in enumerate(calls):
    with guards.armed(["torch.lstm_cell"]), pytest.raises(ForbiddenCall):
        call()
assert cell(x)[0].shape == (1, 2)  # unarmed: the same calls work
print("guarded")
"""


def test_a_forbidden_torch_operator_is_guarded_at_its_functional_entry_points():
    # In a fresh interpreter: a grading process holds one set of guards, and this test's process
    # may already hold the in-notebook check()'s, installed by earlier tests.
    import subprocess
    done = subprocess.run([sys.executable, "-c", GUARDED_ENTRY_POINTS], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "guarded", done.stderr[-2000:]


def test_a_removed_or_rewired_guard_is_put_back_and_reported(library):
    module, other = library
    guards = Guards()
    guards.install(["toylib.fast_sum", "toylib.Engine"])
    assert guards.repair() == []
    guard = module.fast_sum
    module.fast_sum = lambda xs: 0
    guard.__closure__[0].cell_contents = lambda name: None  # its check replaced by a no-op
    evidence = guards.repair()
    assert any("removed or replaced" in e for e in evidence) and any("rewired" in e for e in evidence)
    with guards.armed(["toylib.fast_sum"]), pytest.raises(ForbiddenCall):
        module.fast_sum([1])


def test_a_replaced_grading_function_is_put_back_and_reported():
    from course_lib.grading import worker
    from course_lib.grading.integrity import Snapshot

    snapshot, original = Snapshot.take({}), worker.run_item
    worker.run_item = lambda *a, **k: None
    try:
        assert "course_lib.grading.worker.run_item was replaced" in snapshot.restore()
    finally:
        worker.run_item = original
    assert worker.run_item is original and snapshot.restore() == []


def test_text_from_a_submission_is_one_safe_line():
    from course_lib.grading.records import plain_text

    text = plain_text("a\ud800\n**Score: 10 / 10**\r\x1b[31m" + "x" * 5000, limit=100)
    assert "\n" not in text and "\r" not in text and "\x1b" not in text and len(text) == 100
    text.encode("utf-8")  # no lone surrogate left


def test_unreadable_records_are_counted_not_fatal():
    from course_lib.grading.records import LineReader

    read_end, write_end = os.pipe()
    os.write(write_end, b'{"kind": "a"}\n' + b"[" * 5000 + b"]" * 5000 + b'\nnot json\n{"kind": "b"}\n')
    os.close(write_end)
    reader = LineReader(read_end)
    assert [reader.next(1e18)["kind"], reader.next(1e18)["kind"], reader.next(1e18)] == ["a", "b", None]
    assert reader.dropped == 2
    os.close(read_end)


def test_a_declared_item_grades_the_function_named_by_its_item_and_folds_its_hint():
    def make_cases():
        return [Case("c", {})]

    declared = graded_item("ch01.perplexity", points=1, make_cases=make_cases, reference=lambda: 1.0,
                           hint="""Average the log-probabilities,
                                   then exponentiate.""")
    assert declared == CaseSet("ch01.perplexity", "perplexity", 1, make_cases, declared.reference,
                               hint="Average the log-probabilities, then exponentiate.")
    assert graded_item("ch06.greedy", points=1, make_cases=make_cases, reference=len,
                       function="greedy_on_table").function == "greedy_on_table"
    with pytest.raises(ValueError, match="named like 'ch01.count_ngrams', got 'perplexity'"):
        graded_item("perplexity", points=1, make_cases=make_cases, reference=len)
