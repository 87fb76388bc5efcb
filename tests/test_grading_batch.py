"""`course grade` on batches: folders and zip archives in, gradebook, feedback, Gradescope results and
class statistics out; malformed submissions get a zero and a message, misuse gets exit code 2."""
from __future__ import annotations

import csv
import io
import json
import stat
import zipfile
from pathlib import Path

import pytest

from course_lib.cli import main
from course_lib.grading.cases import load_assignment
from course_lib.grading.notebook import MAX_NOTEBOOK_BYTES
from submissions import EXERCISE, SOLUTION, function_cells, write_notebook

ITEMS = [item.name for item in load_assignment("ch01").case_sets]
FAST = ["--case-seconds", "2", "--item-seconds", "5", "--notebook-seconds", "10"]


def honest(path: Path, assignment: str | None = "ch01") -> Path:
    return write_notebook(path, function_cells(SOLUTION), assignment)


def untouched(path: Path) -> Path:
    return write_notebook(path, function_cells(EXERCISE))


def read_gradebook(folder: Path) -> dict[str, dict]:
    with open(folder / "gradebook.csv", newline="") as stream:
        return {row["submission"]: row for row in csv.DictReader(stream)}


def zip_bytes(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for info, data in members:
            bundle.writestr(info, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One batch: a folder (with a sub-folder and checkpoints to skip), a zip with unsafe members,
    malformed files; graded through the command line with two workers."""
    root = tmp_path_factory.mktemp("batch")
    folder = root / "class"
    (folder / "late" / ".ipynb_checkpoints").mkdir(parents=True)
    honest(folder / "alice_ch01.ipynb")
    untouched(folder / "bob_ch01.ipynb")
    honest(folder / "late" / "carol.ipynb")
    honest(folder / "late" / ".ipynb_checkpoints" / "carol-checkpoint.ipynb")
    (folder / "notes.txt").write_text("not a notebook, not graded")
    notebook_bytes = honest(root / "dave.ipynb").read_bytes()
    link = zipfile.ZipInfo("link_ch01.ipynb")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = root / "upload.zip"
    archive.write_bytes(zip_bytes([
        ("dave/ch01_ngrams.ipynb", notebook_bytes),
        ("../escaped_ch01.ipynb", notebook_bytes),
        ("/absolute_ch01.ipynb", notebook_bytes),
        (link, b"/etc/passwd"),
        ("bomb_ch01.ipynb", b"{" + b" " * (MAX_NOTEBOOK_BYTES + 10)),
        ("__MACOSX/._dave.ipynb", b"resource fork"),
        ("readme.txt", b"skipped"),
    ]))
    malformed = root / "malformed"
    malformed.mkdir()
    (malformed / "empty_ch01.ipynb").write_bytes(b"")
    (malformed / "latin1_ch01.ipynb").write_bytes("{\"cells\": \"café\"}".encode("latin-1"))
    (malformed / "v3_ch01.ipynb").write_text(json.dumps({"nbformat": 3, "worksheets": []}))
    (malformed / "huge_ch01.ipynb").write_bytes(b" " * (MAX_NOTEBOOK_BYTES + 1))
    (malformed / "bad_source_ch01.ipynb").write_text(json.dumps(
        {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "source": 42}]}))
    honest(malformed / "unknown_chapter.ipynb", assignment="ch99")
    honest(malformed / "no_assignment_named.ipynb", assignment=None)
    (root / "answers_ch01.py").write_text("def perplexity(logprobs):\n    return 1.0\n")
    out = root / "out"
    code = main(["grade", str(folder), str(archive), str(malformed), str(root / "answers_ch01.py"),
                 "--jobs", "2", "--out", str(out),
                 "--no-progress", *FAST])
    return {"root": root, "out": out, "code": code, "gradebook": read_gradebook(out)}


def test_a_batch_is_graded_completely_and_exits_zero(graded):
    assert graded["code"] == 0
    book = graded["gradebook"]
    assert len(book) == 3 + 5 + 7 + 1  # folder, archive members (the junk skipped), malformed, a .py
    assert not any("checkpoint" in name for name in book)


def test_the_gradebook_has_a_column_per_item_and_the_totals(graded):
    book, root = graded["gradebook"], graded["root"]
    alice = book[str(root / "class" / "alice_ch01.ipynb")]
    assert [alice[item] for item in ITEMS] == ["2", "2", "2", "1", "2"]
    assert (alice["total"], alice["max"], alice["error"]) == ("9", "9", "")
    assert book[str(root / "class" / "bob_ch01.ipynb")]["total"] == "0"
    # carol's notebook says ch01 in its metadata, not in its name
    assert book[str(root / "class" / "late" / "carol.ipynb")]["total"] == "9"


def test_archives_are_extracted_safely(graded):
    book, root = graded["gradebook"], graded["root"]
    assert book["upload.zip:dave/ch01_ngrams.ipynb"]["total"] == "9"
    assert "unsafe path" in book["upload.zip:../escaped_ch01.ipynb"]["error"]
    assert "unsafe path" in book["upload.zip:/absolute_ch01.ipynb"]["error"]
    assert "symbolic link" in book["upload.zip:link_ch01.ipynb"]["error"]
    assert "larger than 20 MB" in book["upload.zip:bomb_ch01.ipynb"]["error"]
    for member in ("../escaped_ch01.ipynb", "/absolute_ch01.ipynb", "link_ch01.ipynb"):
        assert book[f"upload.zip:{member}"]["total"] == "0"
    assert not (root.parent / "escaped_ch01.ipynb").exists()
    assert not Path("/absolute_ch01.ipynb").exists()


@pytest.mark.parametrize("name, words", [
    ("malformed/empty_ch01.ipynb", "not a valid notebook: JSON error"),
    ("malformed/latin1_ch01.ipynb", "not UTF-8"),
    ("malformed/v3_ch01.ipynb", "nbformat 3"),
    ("malformed/huge_ch01.ipynb", "over the 20 MB limit"),
    ("malformed/bad_source_ch01.ipynb", "malformed 'source'"),
    ("malformed/unknown_chapter.ipynb", "unknown assignment 'ch99'"),
    ("malformed/no_assignment_named.ipynb", "cannot tell which assignment"),
    ("answers_ch01.py", "not a valid notebook: JSON error"),
])
def test_malformed_submissions_get_zero_and_a_message_in_the_batch(graded, name, words):
    row = graded["gradebook"][str(graded["root"] / name)]
    assert row["total"] == "0" and words in row["error"]


def test_feedback_is_written_for_every_submission(graded):
    out = graded["out"]
    feedback = sorted((out / "feedback").glob("*.json"))
    assert len(feedback) == len(graded["gradebook"])
    bob = json.loads(next(p for p in feedback if p.name.endswith("bob_ch01.json")).read_text())
    assert bob["score"] == 0 and bob["max_score"] == 9
    assert bob["items"][0]["cases"][0]["reason"].startswith("not implemented yet")
    assert "private filesystem" in bob["sandbox"]["active"] or bob["sandbox"]["missing"]
    markdown = next(p for p in (out / "feedback").glob("*.md") if p.name.endswith("bob_ch01.md")).read_text()
    assert "**Score: 0 / 9**" in markdown and "not implemented yet" in markdown


def test_gradescope_results_follow_the_documented_schema(graded):
    files = sorted((graded["out"] / "gradescope").glob("*/results.json"))
    assert len(files) == len(graded["gradebook"])
    without_items = []
    for path in files:
        results = json.loads(path.read_text())
        assert set(results) == {"score", "execution_time", "output", "visibility", "tests"}
        assert results["visibility"] == "visible"  # no hidden items in this batch
        assert isinstance(results["score"], (int, float)) and isinstance(results["execution_time"], int)
        if not results["tests"]:  # no known assignment, no items to list
            without_items.append(results["output"])
            continue
        assert [test["name"] for test in results["tests"]] == ITEMS
        for test in results["tests"]:
            assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
            assert test["status"] == ("passed" if test["score"] == test["max_score"] else "failed")
            assert test["visibility"] == "visible"
        assert results["score"] == sum(test["score"] for test in results["tests"])
    assert len(without_items) == 2  # the notebook naming ch99, and the one naming no assignment
    assert any("unknown assignment 'ch99'" in text for text in without_items)


def test_item_statistics_give_the_class_mean_and_share_of_full_marks(graded):
    book = graded["gradebook"]
    with open(graded["out"] / "item_statistics.csv", newline="") as stream:
        rows = {row["item"]: row for row in csv.DictReader(stream)}
    assert list(rows) == ITEMS
    for item in ITEMS:
        points = [float(row[item]) for row in book.values() if row[item] != ""]
        full = max(points)
        assert float(rows[item]["mean_points"]) == pytest.approx(sum(points) / len(points), abs=1e-3)
        assert float(rows[item]["full_marks"]) == pytest.approx(points.count(full) / len(points), abs=1e-3)
        assert float(rows[item]["zero"]) == pytest.approx(points.count(0) / len(points), abs=1e-3)
    assert "| ch01.count_ngrams |" in (graded["out"] / "item_statistics.md").read_text()


def test_one_notebook_for_gradescope_with_hidden_cases(tmp_path, capsys):
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "ch01_more.py").write_text(
        "from course_lib import ngram\nfrom course_lib.grading.cases import Case, CaseSet\n"
        "CASE_SETS = [CaseSet(name='ch01.perplexity_more', function='perplexity', points=3,\n"
        "    make_cases=lambda: [Case('LABEL-NOT-FOR-STUDENTS', {'logprobs': [-0.5] * 4})],\n"
        "    reference=ngram.perplexity_from_logprobs)]\n")
    submission = tmp_path / "submission"
    submission.mkdir()
    honest(submission / "anything.ipynb")
    results_file = tmp_path / "results.json"
    assert main(["grade", str(submission), "--hidden-cases", str(hidden), "--gradescope", str(results_file),
                 *FAST]) == 0
    printed = capsys.readouterr().out
    assert "ch01.perplexity_more" in printed and "12 / 12" in printed
    results = json.loads(results_file.read_text())
    assert results["score"] == 12
    hidden_test = results["tests"][-1]
    assert hidden_test["name"] == "ch01.perplexity_more" and hidden_test["visibility"] == "after_published"
    assert "LABEL-NOT-FOR-STUDENTS" not in results_file.read_text() + printed


def test_gradescope_without_a_notebook_tells_the_student(tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "answers.py").write_text("print('hello')")
    results_file = tmp_path / "results.json"
    assert main(["grade", str(submission), "--assignment", "ch01", "--gradescope", str(results_file)]) == 0
    results = json.loads(results_file.read_text())
    assert results["score"] == 0 and "no notebook (.ipynb) was submitted" in results["output"]


@pytest.mark.parametrize("arguments, words", [
    (["{tmp}/nope.ipynb"], "no such file or folder"),
    (["{tmp}/folder"], "no notebooks (.ipynb) in the folder"),
    (["{solution}", "--assignment", "ch99"], "unknown assignment 'ch99'"),
    (["{solution}", "--jobs", "0"], "--jobs must be at least 1"),
    (["{solution}", "--hidden-cases", "{tmp}/nope"], "not a folder"),
    (["{solution}", "--hidden-cases", "{tmp}/folder"], "no chNN*.py files"),
    (["{solution}", "--hidden-cases", "{tmp}/bad_hidden"], "could not be loaded: SyntaxError"),
    (["{solution}", "--hidden-cases", "{tmp}/wrong_hidden"], "does not belong to ch01"),
])
def test_misuse_exits_2_with_a_message(tmp_path, capsys, arguments, words):
    (tmp_path / "folder").mkdir()
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    (tmp_path / "bad_hidden").mkdir()
    (tmp_path / "bad_hidden" / "ch01_x.py").write_text("CASE_SETS = [")
    (tmp_path / "wrong_hidden").mkdir()
    (tmp_path / "wrong_hidden" / "ch01_x.py").write_text(
        "from course_lib.grading.cases import Case, CaseSet\n"
        "CASE_SETS = [CaseSet('ch02.x', 'f', 1, lambda: [Case('c', {})], lambda: 1)]\n")
    filled = [a.replace("{tmp}", str(tmp_path)).replace("{solution}", str(SOLUTION)) for a in arguments]
    assert main(["grade", *filled]) == 2
    assert words in capsys.readouterr().err
