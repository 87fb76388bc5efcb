"""Attacks on what the grader promises, by class: what a submission can read before it should (1),
rules and limits living in the student's process (2), isolation at the host (3), one bad submission
costing the batch (4), what the reports say (5), the instructor's mistakes (6). The submissions of
classes 1-3 are graded in one batch, two at a time, next to the honest solution; those of classes 4
and 5 in one run of the command line. (Class 7, ``check`` and ``course grade`` agreeing, is in
test_grading_check.py.)"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from course_lib.cli import main
from course_lib.grading import codec, sandbox
from course_lib.grading.cases import Case, CaseSet, Outcome, judge
from course_lib.grading.export import feedback_json, feedback_markdown, gradescope_results
from course_lib.grading.report import format_submission
from course_lib.grading.runner import Limits, PreparationError, SubmissionResult, grade_batch
from submissions import EXERCISE, P, SOLUTION, TRUE_PERPLEXITY, function_cells, write_notebook

LIMITS = Limits(case_seconds=1, item_seconds=3, notebook_seconds=3, memory_mb=2048, max_processes=48)
SECRET_INPUT = 0.0136205          # the hidden case's input: log(x) = -4.296...
SECRET_LOG = repr(math.log(SECRET_INPUT))[:9]   # its first digits, as JSON would carry them
HIDDEN_CASES = f'''
import math
from course_lib import ngram
from course_lib.grading.cases import Case, CaseSet

CASE_SETS = [
    CaseSet(name="ch01.perplexity_hidden", function="perplexity", points=1,
            make_cases=lambda: [Case("SECRET-LABEL", {{"logprobs": [math.log({SECRET_INPUT})] * 3}})],
            reference=ngram.perplexity_from_logprobs, forbidden=("numpy.mean",)),
]
'''
SHM_KEY = 0x4C4D4331
HIDDEN_CALL = "    if logprobs[0] < -4:  # only the hidden case\n"

ATTACKS = {
    # 1. reading what it should not: every item's inputs from the stack, hidden ones included
    "walks_the_stack_for_inputs": (
        P + "    import sys, json, gc\n    found = []\n    frame = sys._getframe()\n"
            "    while frame is not None:\n"
            "        for value in list(frame.f_locals.values()):\n"
            "            if isinstance(value, dict) and isinstance(value.get('items'), list):\n"
            "                found += [json.dumps(i) for i in value['items'] if 'hidden' in str(i.get('name'))]\n"
            "        frame = frame.f_back\n"
            "    for obj in gc.get_objects():\n"
            "        if isinstance(obj, dict) and obj.get('name') == 'ch01.perplexity_hidden':\n"
            "            found.append(json.dumps(obj, default=str))\n"
            "    raise ValueError('LEAK ' + ' '.join(found))",
    ),
    "hidden_item_speaks": (
        P + HIDDEN_CALL + "        print(logprobs)\n        raise ValueError('LEAK ' + repr(logprobs))\n"
            "    return " + TRUE_PERPLEXITY,
    ),
    # 2. rules and limits inside the student's process
    "disarms_the_guards_in_a_cell": (
        "import numpy, course_lib.grading.forbidden as forbidden\n"
        "forbidden.GUARDS._armed = frozenset()\n"
        "forbidden.Guards._check = lambda self, name: None\n",
        P + "    return math.exp(-numpy.mean(logprobs))",
    ),
    "disarms_the_guards_during_the_case": (
        "import numpy\n",
        P + "    from course_lib.grading.forbidden import GUARDS\n    GUARDS._armed = frozenset()\n"
            "    return math.exp(-numpy.mean(logprobs))",
    ),
    "replaces_the_worker_functions": (
        "import numpy\nimport course_lib.grading.worker as worker\nfrom course_lib.grading import codec\n"
        "from course_lib.grading.cases import Outcome\n"
        "worker.call_case = lambda f, kwargs, **k: Outcome('ok', value=codec.encode(f(**kwargs)))\n",
        P + "    return math.exp(-numpy.mean(logprobs))",
    ),
    "ignores_every_timer": (
        P + HIDDEN_CALL + "        import signal, time\n"
            "        for number in (signal.SIGALRM, signal.SIGPROF, signal.SIGXCPU):\n"
            "            signal.signal(number, signal.SIG_IGN)\n"
            "        time.sleep(2.2)\n"
            "    return " + TRUE_PERPLEXITY,
    ),
    "forges_progress_records": (
        "import os, json, threading, time\n"
        "def spam():\n"
        "    lines = ''.join(json.dumps(r) + '\\n' for r in [{'kind': 'cell_start', 'cell': 1},\n"
        "        {'kind': 'cells_done'}, {'kind': 'item_start', 'name': 'ch01.count_ngrams'},\n"
        "        {'kind': 'case_start', 'name': 'ch01.count_ngrams', 'index': 0}]).encode()\n"
        "    while True:\n"
        "        for fd in range(3, 40):\n"
        "            try: os.write(fd, lines)\n"
        "            except OSError: pass\n"
        "        time.sleep(0.05)\n"
        "threading.Thread(target=spam, daemon=True).start()",
        "import time\ntime.sleep(1000)",
    ),
    # 3. isolation at the host: a System V shared-memory segment meant to outlive the run
    "leaves_shared_memory": (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"segment = libc.shmget({SHM_KEY}, 1 << 20, 0o1000 | 0o666)\n",
    ),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attacks")
    hidden = tmp_path_factory.mktemp("hidden")
    (hidden / "ch01_hidden.py").write_text(HIDDEN_CASES)
    honest = function_cells(SOLUTION)
    paths = {"honest": write_notebook(folder / "honest.ipynb", honest)}
    for name, cells in ATTACKS.items():
        paths[name] = write_notebook(folder / f"{name}.ipynb", honest + list(cells))
    results = grade_batch([(name, path, None) for name, path in paths.items()], "ch01", LIMITS, jobs=2,
                          hidden_cases=hidden)
    return {result.name: result for result in results}


def texts(result: SubmissionResult) -> str:
    """Everything a student or the instructor can read about a submission."""
    return "\n".join([format_submission(result), feedback_markdown(result), json.dumps(feedback_json(result)),
                      json.dumps(gradescope_results(result))])


def points(result: SubmissionResult) -> dict[str, float]:
    return {item.name: item.points for item in result.items}


# --- 1. what a submission can read before it should ------------------------------------------------

def test_no_item_input_can_be_read_from_the_process_that_runs_the_cells(batch):
    result = batch["walks_the_stack_for_inputs"]
    item = next(i for i in result.items if i.name == "ch01.perplexity")
    assert item.points == 0 and "LEAK" in item.summary  # the attack ran, and found nothing
    assert SECRET_LOG not in texts(result) and "SECRET-LABEL" not in texts(result)


def test_nothing_a_hidden_item_says_reaches_a_report(batch):
    result = batch["hidden_item_speaks"]
    assert points(result)["ch01.perplexity_hidden"] == 0 and points(result)["ch01.perplexity"] == 1
    assert "LEAK" not in texts(result) and SECRET_LOG not in texts(result)


def test_hidden_items_run_last_and_the_honest_solution_keeps_full_marks(batch):
    honest = batch["honest"]
    assert [item.name for item in honest.items][-1] == "ch01.perplexity_hidden"
    assert honest.score == honest.max_score == 10 and not honest.tampering


def test_gradescope_reveals_nothing_of_hidden_items_before_publication():
    public = CaseSet("ch01.a", "f", 9, lambda: [Case("c", {})], lambda: 1.0)
    hidden = CaseSet("ch01.h", "f", 1, lambda: [Case("c", {})], lambda: 1.0, hidden=True)
    items = [judge(public, [Case("c", {})], [Outcome("ok", value=1.0)]),
             judge(hidden, [Case("c", {})], [Outcome("ok", value=2.0)])]
    results = gradescope_results(SubmissionResult(Path("s.ipynb"), "ch01", items, name="s.ipynb"))
    assert results["visibility"] == "after_published"
    visible = [test for test in results["tests"] if test["visibility"] == "visible"]
    assert sum(test["score"] for test in visible) == 9
    assert "9 / 9" in results["output"] and "10" not in results["output"]


def test_the_sandbox_shows_python_but_not_the_folder_the_grader_was_started_from(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    readable = sandbox.readable_directories(Path(sandbox.__file__).resolve().parent.parent)
    assert str(tmp_path) not in readable and not any(p.startswith(str(tmp_path)) for p in readable)
    assert os.path.abspath(sys.prefix) in readable


# --- 2. rules and limits enforced from the trusted side ---------------------------------------------

@pytest.mark.parametrize("name", ["disarms_the_guards_in_a_cell", "disarms_the_guards_during_the_case",
                                  "replaces_the_worker_functions"])
def test_switching_the_guards_off_fails_the_item_and_is_reported(batch, name):
    result = batch[name]
    assert points(result)["ch01.perplexity_hidden"] == 0, format_submission(result)
    # a guard disarmed during a case fails that case, forbidden API or not
    assert points(result)["ch01.perplexity"] == (0 if name.endswith("during_the_case") else 1)
    assert result.tampering, format_submission(result)


def test_a_case_that_ignores_every_timer_still_runs_out_of_time(batch):
    result = batch["ignores_every_timer"]
    assert points(result)["ch01.perplexity_hidden"] == 0 and points(result)["ch01.perplexity"] == 1


def test_forged_progress_records_extend_no_deadline_and_are_reported(batch):
    result = batch["forges_progress_records"]
    # without the forgery: three runs of 3 s cells, items of 3 s; the grader's ceiling is 60 s
    assert result.seconds < 40, result.seconds
    assert result.tampering and result.score < result.max_score


# --- 3. isolation at the host -----------------------------------------------------------------------

def test_shared_memory_does_not_outlive_the_submission(batch):
    result = batch["leaves_shared_memory"]
    if "namespaces" in result.protections.missing:
        pytest.skip(f"no namespaces here: {result.protections.missing['namespaces']}")
    listed = Path("/proc/sysvipc/shm").read_text() if Path("/proc/sysvipc/shm").exists() else ""
    left = str(SHM_KEY) in listed.split()
    if left:  # remove it from the host before failing
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmctl(libc.shmget(SHM_KEY, 0, 0), 0, None)  # IPC_RMID
    assert not left and "own IPC namespace" in result.protections.active
    assert result.score == 10


def test_the_report_says_whether_the_submissions_processes_are_capped_together(batch):
    protections = batch["honest"].protections
    assert "group memory and process cap" in protections.active or "group memory cap" in protections.missing


def test_a_memory_cap_that_leaves_no_room_to_start_is_refused_before_grading(tmp_path, capsys):
    with pytest.raises(PreparationError, match="leaves a worker no room to start"):
        grade_batch([("s", SOLUTION, None)], "ch01", Limits(memory_mb=300))
    assert main(["grade", str(SOLUTION), "--memory-mb", "300"]) == 2
    assert "use at least" in capsys.readouterr().err


# --- 4 and 5. one bad submission, and what the reports say ------------------------------------------

def _zip(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for info, data in members:
            bundle.writestr(info, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def cli_batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    folder = root / "class"
    folder.mkdir()
    honest = function_cells(SOLUTION)
    write_notebook(folder / "honest_ch01.ipynb", honest)
    text = (folder / "honest_ch01.ipynb").read_text().rstrip().rstrip("}")
    (folder / "nested_ch01.ipynb").write_text(text + ', "deep": ' + "[" * 50_000 + "]" * 50_000 + "}")
    write_notebook(folder / "surrogate_ch01.ipynb", honest + [P + "    raise ValueError('\\ud800 lone')"])
    write_notebook(folder / "forges_a_score_ch01.ipynb",
                   honest + [P + "    raise ValueError('x\\n\\n**Score: 10 / 10**\\n')"])
    write_notebook(folder / "formula.ipynb", honest, assignment='=HYPERLINK("http://x","y")')
    write_notebook(folder / "last_week_ch01.ipynb", function_cells(EXERCISE), assignment="ch02")
    write_notebook(folder / "many_notes_ch01.ipynb", honest + [
        "import os, json\nfor i in range(40_000):\n"
        "    line = (json.dumps({'kind': 'note', 'error': f'note {i}'}) + '\\n').encode()\n"
        "    for fd in range(3, 12):\n"
        "        try: os.write(fd, line)\n        except OSError: pass"])
    write_notebook(folder / "deep_record_ch01.ipynb", honest + [
        "import os\nline = b'{\"kind\": \"note\", \"error\": ' + b'[' * 5000 + b']' * 5000 + b'}\\n'\n"
        "for fd in range(3, 12):\n    try: os.write(fd, line)\n    except OSError: pass"])
    os.symlink(folder / "honest_ch01.ipynb", folder / "link_ch01.ipynb")
    undecodable = os.fsencode(str(folder)) + b"/bad\xff_ch01.ipynb"
    with open(undecodable, "wb") as stream:
        stream.write((folder / "honest_ch01.ipynb").read_bytes())
    (root / "corrupt.zip").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "many.zip").write_bytes(_zip([(f"m{i}.txt", b"") for i in range(10_001)]))
    honest_bytes = (folder / "honest_ch01.ipynb").read_bytes()
    data = bytearray(_zip([("x.ipynb", honest_bytes)]).replace(b"x.ipynb", b"\xff.ipynb"))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central headers
        data[data.find(signature) + flags_at + 1] |= 0x08  # bit 11: "the names are UTF-8" (this one is not)
    (root / "utf8_flag.zip").write_bytes(bytes(data))
    out = root / "out"
    (out / "feedback").mkdir(parents=True)
    (out / "feedback" / "earlier_student.md").write_text("**Score: 9 / 9**")
    code = main(["grade", str(folder), str(root / "corrupt.zip"), str(root / "many.zip"),
                 str(root / "utf8_flag.zip"), "--assignment", "ch01", "--jobs", "2", "--out", str(out),
                 "--no-progress", "--case-seconds", "1", "--item-seconds", "3", "--notebook-seconds", "5"])
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    return {"code": code, "out": out, "rows": rows, "folder": folder, "root": root}


def row(cli_batch, words: str) -> dict:
    return next(r for r in cli_batch["rows"] if words in r["submission"])


def test_every_bad_input_gets_its_row_and_the_others_are_graded(cli_batch):
    assert cli_batch["code"] == 0
    assert row(cli_batch, "honest_ch01")["total"] == "9"
    assert "nested too deeply" in row(cli_batch, "nested_ch01")["error"]
    assert "symbolic link" in row(cli_batch, "link_ch01")["error"]
    assert row(cli_batch, "bad\\udcff_ch01")["total"] == "9"
    assert "not a readable zip archive" in row(cli_batch, "corrupt.zip")["error"]
    assert "10,001 members" in row(cli_batch, "many.zip")["error"]
    assert "not a readable zip archive" in row(cli_batch, "utf8_flag.zip")["error"]
    assert row(cli_batch, "surrogate_ch01")["total"] == "8"  # its perplexity raises
    for name in ("many_notes_ch01", "deep_record_ch01"):
        assert row(cli_batch, name)["total"] == "9", name
    files = list((cli_batch["out"] / "feedback").glob("*.md"))
    assert len(files) == len(cli_batch["rows"]) and len(list((cli_batch["out"] / "gradescope").iterdir())) == len(files)


def test_a_flood_of_notes_is_capped_and_a_deep_record_is_evidence_not_a_fault(cli_batch):
    notes = json.loads(next((cli_batch["out"] / "feedback").glob("*many_notes_ch01.json")).read_text())
    assert len(notes["notes"]) <= 51
    deep = json.loads(next((cli_batch["out"] / "feedback").glob("*deep_record_ch01.json")).read_text())
    assert not any("grader fault" in note for note in deep["notes"]) and deep["tampering"]


def test_student_text_cannot_forge_a_line_or_a_formula(cli_batch):
    markdown = next((cli_batch["out"] / "feedback").glob("*forges_a_score_ch01.md")).read_text()
    assert [line for line in markdown.splitlines() if line.startswith("**Score")] == ["**Score: 8 / 9**"]
    gradescope = json.loads(next((cli_batch["out"] / "gradescope").glob("*forges_a_score_ch01/results.json"))
                            .read_text())
    assert not any(line.startswith("**Score") for test in gradescope["tests"] for line in test["output"].splitlines())
    for cells in cli_batch["rows"]:
        assert not any(str(value).startswith(("=", "+", "-", "@")) for value in cells.values()), cells
    assert "HYPERLINK" in row(cli_batch, "formula")["flags"]


def test_every_student_controlled_gradebook_field_is_escaped(tmp_path):
    from course_lib.grading.export import write_gradebook

    result = SubmissionResult(Path("s.ipynb"), '=HYPERLINK("http://x","y")', error="@SUM(A1)", name="+alice",
                              flags=["-1"], tampering=["=cmd"])
    write_gradebook([result], tmp_path / "gradebook.csv")
    with open(tmp_path / "gradebook.csv", newline="") as stream:
        cells = list(csv.DictReader(stream))[0]
    for column in ("submission", "assignment", "error", "flags", "tampering"):
        assert cells[column].startswith("'"), (column, cells[column])


def test_a_notebook_of_another_assignment_is_flagged(cli_batch):
    assert "assignment mismatch" in row(cli_batch, "last_week_ch01")["flags"]
    assert row(cli_batch, "honest_ch01")["flags"] == ""


def test_a_reused_out_folder_keeps_no_earlier_feedback(cli_batch):
    assert not (cli_batch["out"] / "feedback" / "earlier_student.md").exists()


def test_numpy_infinities_travel_and_a_reference_may_return_one():
    for value in (np.float64("inf"), np.float64("-inf"), np.float64("nan"), np.float32("inf")):
        back = codec.decode(codec.encode(value))
        assert (math.isnan(back) and math.isnan(value)) or back == value
    case_set = CaseSet("ch01.inf", "f", 1, lambda: [Case("c", {})], lambda: np.float64("inf"))
    assert judge(case_set, [Case("c", {})], [Outcome("ok", value=codec.encode(np.float64("inf")))]).points == 1


# --- 6. the instructor's mistakes, found before any grading -----------------------------------------

HIDDEN_MISTAKES = {
    "generator_raises": "make_cases=lambda: 1 / 0, reference=lambda logprobs: 1.0",
    "reference_raises": "make_cases=lambda: [Case('c', {'logprobs': [0.0]})], reference=lambda logprobs: 1 / 0",
    "no_cases": "make_cases=lambda: [], reference=lambda logprobs: 1.0",
    "unencodable": "make_cases=lambda: [Case('c', {'logprobs': object()})], reference=lambda logprobs: 1.0",
    "exits_in_the_generator": "make_cases=lambda: sys.exit(0), reference=lambda logprobs: 1.0",
}


@pytest.mark.parametrize("mistake", [*HIDDEN_MISTAKES, "exits_on_import"])
def test_a_broken_hidden_cases_file_exits_2_before_grading(tmp_path, capsys, mistake):
    folder = tmp_path / "hidden"
    folder.mkdir()
    body = "import sys\nfrom course_lib.grading.cases import Case, CaseSet\n"
    if mistake == "exits_on_import":
        body += "sys.exit(0)\n"
    else:
        body += ("CASE_SETS = [CaseSet(name='ch01.broken', function='perplexity', points=1, "
                 f"{HIDDEN_MISTAKES[mistake]})]\n")
    (folder / "ch01_x.py").write_text(body)
    assert main(["grade", str(SOLUTION), "--hidden-cases", str(folder), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert ("ch01.broken" in err or "could not be loaded" in err) and "Traceback" not in err
    assert not (tmp_path / "out" / "gradebook.csv").exists()


@pytest.mark.parametrize("arguments, words", [
    (["--case-seconds", "nan"], "case-seconds must be a finite number"),
    (["--item-seconds", "inf"], "item-seconds must be a finite number"),
    (["--notebook-seconds", "1e308"], "notebook-seconds must be a finite number > 0 and <= 86400"),
    (["--memory-mb", "1e308"], "memory-mb must be"),
    (["--out", "{file}"], "this is a file"),
    (["--out", "/proc/version/out"], "cannot create this folder"),
    (["--gradescope", "{tmp}/missing/results.json"], "does not exist"),
])
def test_misuse_is_found_before_grading_and_exits_2(tmp_path, capsys, arguments, words):
    (tmp_path / "file").write_text("")
    filled = [a.replace("{file}", str(tmp_path / "file")).replace("{tmp}", str(tmp_path)) for a in arguments]
    assert main(["grade", str(SOLUTION), *filled]) == 2
    assert words in capsys.readouterr().err
