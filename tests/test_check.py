"""The in-notebook check: a clear report, never an exception into the student's notebook."""
from __future__ import annotations

import importlib

from course_lib.grading import check
from course_lib.ngram import count_ngrams as reference_count_ngrams


def report(capsys, name, function) -> str:
    check(name, function)
    return capsys.readouterr().out


def test_a_correct_function_passes_every_case(capsys):
    out = report(capsys, "ch01.count_ngrams", reference_count_ngrams)
    assert out.startswith("✔ ch01.count_ngrams: 5/5 cases passed  [2/2 points]")


def test_a_stub_is_reported_as_not_implemented(capsys):
    def count_ngrams(sequences, n):
        raise NotImplementedError("Replace this line with your code")

    assert "not implemented yet" in report(capsys, "ch01.count_ngrams", count_ngrams)


def test_a_wrong_function_gets_the_failing_cases_with_reasons_and_the_hint(capsys):
    def count_ngrams(sequences, n):  # forgets the end symbol
        counts = {}
        for tokens in sequences:
            padded = ["<s>"] * (n - 1) + list(tokens)
            for i in range(len(padded) - n + 1):
                counts[tuple(padded[i:i + n])] = counts.get(tuple(padded[i:i + n]), 0) + 1
        return counts

    out = report(capsys, "ch01.count_ngrams", count_ngrams)
    assert out.startswith("✘ ch01.count_ngrams: 0/5 cases passed  [0/2 points]")
    assert "✘ bigrams of the toy corpus: keys differ: missing" in out and "'</s>'" in out
    assert "hint: The padding decides the first and last n-grams" in out


def test_an_exception_names_its_type_message_and_line(capsys):
    def perplexity(logprobs):
        total = 0
        return total / 0

    out = report(capsys, "ch01.perplexity", perplexity)
    assert "raised ZeroDivisionError: division by zero (in perplexity, line" in out


def test_wrong_signature_says_what_the_function_should_accept(capsys):
    def perplexity(values):
        return 1.0

    assert "should accept (logprobs)" in report(capsys, "ch01.perplexity", perplexity)


def test_returning_something_ungradable_is_explained(capsys):
    def perplexity(logprobs):
        return object()

    assert "cannot be graded" in report(capsys, "ch01.perplexity", perplexity)


def test_misuse_is_reported_not_raised(capsys):
    assert "unknown assignment 'ch99'" in report(capsys, "ch99.nothing", print)
    assert "no graded item 'ch01.nothing'" in report(capsys, "ch01.nothing", print)
    assert "must be your function" in report(capsys, "ch01.perplexity", 3.0)


def test_an_endless_loop_is_stopped(capsys, monkeypatch):
    check_module = importlib.import_module("course_lib.grading.check")  # the module, not the function
    monkeypatch.setattr(check_module, "CHECK_TIMEOUT_SECONDS", 0.2)

    def perplexity(logprobs):
        while True:
            pass

    assert "time limit exceeded" in report(capsys, "ch01.perplexity", perplexity)
