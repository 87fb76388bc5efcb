"""``check`` in the notebook and ``course grade`` agree: a function the grader zeroes (a forbidden API,
a blocked module) fails ``check`` too, with the reason; after a time-out an item's other cases are
skipped at once. And the modules the grader blocks come from the package's import graph."""
from __future__ import annotations

import importlib
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib.grading.check import check
from course_lib.grading.import_graph import PACKAGE_DIR, blocked_modules, importers_of, module_files


def report(capsys, name, function) -> str:
    check(name, function)
    return capsys.readouterr().out


def test_a_forbidden_layer_fails_check_as_it_fails_grading(capsys):
    def rnn_cell(i_t, h_prev, W_hi, W_hh, b_h):
        cell = torch.nn.RNNCell(W_hi.shape[1], W_hi.shape[0]).double()
        with torch.no_grad():
            cell.weight_ih.copy_(torch.from_numpy(W_hi))
            cell.weight_hh.copy_(torch.from_numpy(W_hh))
            cell.bias_ih.copy_(torch.from_numpy(b_h))
            cell.bias_hh.zero_()
            return cell(torch.from_numpy(i_t), torch.from_numpy(h_prev)).numpy()

    out = report(capsys, "ch04.rnn_cell", rnn_cell)
    assert "[0/2 points]" in out and "forbidden API: torch.nn.RNN" in out, out


def test_the_functional_form_of_a_forbidden_layer_fails_too(capsys):
    def rnn_cell(i_t, h_prev, W_hi, W_hh, b_h):
        state = torch.rnn_tanh_cell(torch.from_numpy(i_t), torch.from_numpy(h_prev), torch.from_numpy(W_hi),
                                    torch.from_numpy(W_hh), torch.from_numpy(b_h), None)
        return state.numpy()

    out = report(capsys, "ch04.rnn_cell", rnn_cell)
    assert "[0/2 points]" in out and "forbidden API" in out, out


def test_a_correct_function_of_ones_own_passes_check_with_the_guards_armed(capsys):
    def rnn_cell(i_t, h_prev, W_hi, W_hh, b_h):
        return np.tanh(i_t @ W_hi.T + h_prev @ W_hh.T + b_h)

    assert report(capsys, "ch04.rnn_cell", rnn_cell).startswith("✔ ch04.rnn_cell")


def test_importing_the_reference_inside_the_function_fails_check(capsys):
    def count_ngrams(sequences, n):
        from course_lib.ngram import count_ngrams as reference

        return reference(sequences, n)

    out = report(capsys, "ch01.count_ngrams", count_ngrams)
    assert "[0/2 points]" in out and "cannot be imported while this assignment is graded" in out, out
    assert "course_lib.ngram" in sys.modules  # the kernel's own modules are put back


def test_using_a_reference_imported_in_the_kernel_fails_check(capsys):
    import course_lib.ngram as ngram

    def count_ngrams(sequences, n):
        return ngram.count_ngrams(sequences, n)

    out = report(capsys, "ch01.count_ngrams", count_ngrams)
    assert "[0/2 points]" in out and "uses course_lib.ngram" in out, out


def test_after_a_time_out_the_other_cases_are_skipped_at_once(capsys, monkeypatch):
    monkeypatch.setattr(importlib.import_module("course_lib.grading.check"), "CHECK_TIMEOUT_SECONDS", 0.3)

    def perplexity(logprobs):
        while True:
            pass

    started = time.monotonic()
    out = report(capsys, "ch01.perplexity", perplexity)
    assert time.monotonic() - started < 3
    assert out.count("time limit exceeded") == 1 and "not run: an earlier case of this item ran out of time" in out


# --- the blocked modules, from the import graph ------------------------------------------------------

def write_package(root: Path) -> Path:
    package = root / "toypkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    return 1\n")
    (package / "b.py").write_text("from toypkg.a import f\n")
    (package / "c.py").write_text("def g():\n    from . import b\n    return b\n")
    (package / "d.py").write_text("import os\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "e.py").write_text("from ..c import g\n")
    (package / "sub" / "f.py").write_text("import toypkg.d\n")
    return package


def test_grading_a_module_blocks_what_imports_it_transitively_and_nothing_else(tmp_path):
    package = write_package(tmp_path)
    assert importers_of(["toypkg.a"], package) == ["toypkg.a", "toypkg.b", "toypkg.c", "toypkg.sub.e"]
    assert importers_of(["toypkg.d"], package) == ["toypkg.d", "toypkg.sub.f"]


def test_on_the_real_package_whatever_imports_the_rnn_module_is_blocked():
    blocked = blocked_modules(("course_lib.rnn",))
    files = module_files(PACKAGE_DIR)
    direct = re.compile(r"^\s*(from course_lib(\.| import )rnn\b|import course_lib\.rnn\b|from \.rnn\b"
                        r"|from \. import .*\brnn\b)", re.MULTILINE)
    importers = {name for name, path in files.items() if name != "course_lib.rnn" and direct.search(path.read_text())}
    assert importers, "something in course_lib imports course_lib.rnn"
    assert {"course_lib.rnn", *importers} <= set(blocked)
    assert blocked[-1] == "course_lib.grading.assignments"
    assert "course_lib.ngram" not in blocked and "course_lib.grading.worker" not in blocked


@pytest.mark.parametrize("assignment", ["ch01", "ch04"])
def test_the_grader_blocks_what_check_blocks(assignment):
    from course_lib.grading.cases import load_assignment
    from course_lib.grading.runner import blocked_modules as grader_blocked

    spec = load_assignment(assignment)
    assert grader_blocked(spec) == blocked_modules(spec.reference_modules)
