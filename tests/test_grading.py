"""`course grade` end to end: the solution gets full marks, the untouched exercise zero, and each
kind of broken submission gets a clear message and loses only what it should."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from course_lib.cli import main
from course_lib.grading.cases import NOT_IMPLEMENTED, load_assignment
from course_lib.grading.runner import Limits, grade_notebook

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "ch01_ngrams.ipynb"
EXERCISE = ROOT / "exercises" / "ch01_ngrams.ipynb"
MAX = load_assignment("ch01").max_points
FAST = Limits(case_seconds=2, item_seconds=5, notebook_seconds=10)


def points(result) -> dict[str, float]:
    return {item.name: item.points for item in result.items}


def variant(tmp_path: Path, name: str, edit) -> Path:
    """The solution notebook with ``edit(cells)`` applied to its list of code-cell sources."""
    notebook = nbformat.read(SOLUTION, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    sources = [cell.source for cell in code]
    edit(sources)
    for cell, source in zip(code, sources):
        cell.source = source
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


def replace_in(sources: list[str], old: str, new: str) -> None:
    index = next(i for i, s in enumerate(sources) if old in s)
    sources[index] = sources[index].replace(old, new)


def test_the_solution_gets_full_marks():
    result = grade_notebook(SOLUTION)
    assert result.error is None and result.notes == []
    assert result.score == MAX == 9
    assert all(item.points == item.max_points for item in result.items)


def test_the_untouched_exercise_gets_zero_with_not_implemented_for_each_item():
    result = grade_notebook(EXERCISE)
    assert result.score == 0
    assert len(result.items) == len(load_assignment("ch01").case_sets)
    for item in result.items:
        assert item.summary == NOT_IMPLEMENTED


def test_a_wrong_answer_loses_exactly_the_points_of_its_item(tmp_path):
    path = variant(tmp_path, "forgot_k_times_v", lambda s: replace_in(
        s, "(context_count + k * vocab_size)", "(context_count + vocab_size)"))
    result = grade_notebook(path)
    lost = {name: load_assignment("ch01").case_set(name).points - got for name, got in points(result).items()}
    assert lost["ch01.add_k_probability"] > 0
    # every case but the Laplace ones (k = 1) fails, so only part of the item's points remain
    assert {name for name, value in lost.items() if value} == {"ch01.add_k_probability"}
    wrong_everywhere = variant(tmp_path, "wrong_everywhere", lambda s: replace_in(
        s, "return (ngram_counts.get(tuple(ngram), 0) + k)", "return 0.5 + 0 * (ngram_counts.get(tuple(ngram), 0) + k)"))
    result = grade_notebook(wrong_everywhere)
    assert result.score == MAX - 2
    assert points(result)["ch01.add_k_probability"] == 0


def test_feedback_names_the_failing_case_and_the_difference(tmp_path):
    path = variant(tmp_path, "no_end_symbol", lambda s: replace_in(s, ' + ["</s>"]', ""))
    item = next(i for i in grade_notebook(path).items if i.name == "ch01.count_ngrams")
    assert item.points == 0
    assert "missing" in item.summary and "</s>" in item.summary


def test_a_failing_cell_costs_only_the_items_it_defines(tmp_path):
    path = variant(tmp_path, "syntax_error", lambda s: replace_in(s, "def perplexity(logprobs):", "def perplexity(logprobs)"))
    result = grade_notebook(path)
    assert result.score == MAX - 1
    assert any("SyntaxError" in note for note in result.notes)
    assert "no function named `perplexity`" in next(i for i in result.items if i.name == "ch01.perplexity").summary


def test_importing_the_reference_module_is_refused(tmp_path):
    def use_reference(sources):
        replace_in(sources, "    ### BEGIN SOLUTION\n    counts = Counter()",
                   "    from course_lib.ngram import count_ngrams as reference\n    return reference(sequences, n)\n"
                   "    ### BEGIN SOLUTION\n    counts = Counter()")
    result = grade_notebook(variant(tmp_path, "imports_reference", use_reference))
    item = next(i for i in result.items if i.name == "ch01.count_ngrams")
    assert item.points == 0
    assert "cannot be imported while this assignment is graded" in item.summary
    assert result.score == MAX - 2


def test_check_calls_are_not_run_and_printed_scores_count_for_nothing(tmp_path):
    def forge(sources):
        sources.append("print('ch01 total 9 / 9')\nimport sys\nsys.stdout.write('{\"kind\": \"done\"}\\n')")
        replace_in(sources, "def perplexity(logprobs):\n", "def perplexity(logprobs):\n    return -1.0\n")
    result = grade_notebook(variant(tmp_path, "forger", forge))
    assert result.score == MAX - 1


def test_exit_and_hang_cost_only_their_own_items(tmp_path):
    def sabotage(sources):
        replace_in(sources, "def perplexity(logprobs):\n", "def perplexity(logprobs):\n    import os; os._exit(3)\n")
        replace_in(sources, "def continuation_probability(bigram_counts):\n",
                   "def continuation_probability(bigram_counts):\n    while True: pass\n")
    result = grade_notebook(variant(tmp_path, "saboteur", sabotage), limits=FAST)
    assert points(result)["ch01.perplexity"] == 0
    assert points(result)["ch01.continuation_probability"] == 0
    assert result.score == MAX - 3
    summaries = {item.name: item.summary for item in result.items}
    assert "ended the process" in summaries["ch01.perplexity"]
    assert "time limit" in summaries["ch01.continuation_probability"]


@pytest.mark.parametrize("content, words", [
    (b"{not json", "not a valid notebook: JSON error"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (json.dumps({"nbformat": 3, "worksheets": []}).encode(), "nbformat 3"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}).encode(), "no code cells"),
    (b"[1, 2, 3]", "not a Jupyter notebook"),
])
def test_malformed_files_get_a_clear_message_and_zero(tmp_path, content, words):
    path = tmp_path / "ch01_submission.ipynb"
    path.write_bytes(content)
    result = grade_notebook(path)
    assert result.score == 0 and words in result.error
    assert len(result.items) == len(load_assignment("ch01").case_sets)


def test_cli_grades_and_prints_a_total(capsys):
    assert main(["grade", str(SOLUTION)]) == 0
    out = capsys.readouterr().out
    assert "ch01.count_ngrams" in out and "total" in out and "9 / 9" in out


def test_cli_misuse_exits_non_zero_with_a_message(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "nope.ipynb")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["grade", str(SOLUTION), "--assignment", "ch99"]) == 2
    assert "unknown assignment" in capsys.readouterr().err
