"""Feedback that teaches: a forgotten return, a less precise dtype and a shape error inside the
student's code are each named for what they are."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from course_lib.grading import codec
from course_lib.grading.cases import find_case_set, judge
from course_lib.grading.compare import RETURNED_NONE, compare, is_shape_error, shape_note
from course_lib.grading.execution import call_case


def wire(value):
    return codec.decode(codec.encode(value))


def run_item(case_set, function):
    cases = case_set.cases()
    return judge(case_set, cases, [call_case(function, case.kwargs) for case in cases])


def test_a_function_that_returns_none_is_asked_whether_it_forgot_return():
    assert compare(wire(np.ones(3)), wire(None)) == RETURNED_NONE
    assert compare(wire(0.5), wire(None)) == RETURNED_NONE
    assert compare(wire({"a": 1}), wire(None)) == RETURNED_NONE
    assert "did you forget `return`" in RETURNED_NONE
    assert compare(wire((np.ones(2), 1.0)), wire((np.ones(2), None))) == "expected a number at [1], got None"
    assert compare(None, None) is None


def test_a_float32_answer_where_float64_is_expected_fails_and_names_both_dtypes():
    for expected, actual in ((np.ones(3), np.ones(3, dtype=np.float32)), (1.0, np.float32(1.0)),
                             (torch.ones(2, dtype=torch.float64), torch.ones(2))):
        reason = compare(wire(expected), wire(actual))
        assert reason.startswith("wrong dtype") and "expected float64, got float32" in reason, reason
    assert "expected float32, got float16" in compare(wire(torch.ones(2)), wire(torch.ones(2, dtype=torch.float16)))


def test_an_answer_at_least_as_precise_as_the_reference_is_judged_on_its_values():
    assert compare(wire(torch.ones(2)), wire(torch.ones(2, dtype=torch.float64))) is None
    assert compare(wire(torch.tensor(0.25)), wire(0.25)) is None  # a Python float for a float32 scalar
    assert compare(wire(np.float32(0.5)), wire(np.float64(0.5))) is None
    assert "values differ" in compare(wire(torch.ones(2)), wire(torch.full((2,), 2.0, dtype=torch.float64)))


def test_a_shape_error_inside_the_students_code_names_the_shapes_that_went_in():
    def rnn_cell(i_t, h_prev, W_hi, W_hh, b_h):  # forgets a transpose
        return np.tanh(i_t @ W_hi + h_prev @ W_hh.T + b_h)

    result = run_item(find_case_set("ch04.rnn_cell"), rnn_cell)
    reason = result.verdicts[0].reason
    assert reason.startswith("raised ValueError: matmul") and "(in rnn_cell, line" in reason
    assert "it was called with i_t (1, 3), h_prev (1, 4), W_hi (4, 3), W_hh (4, 4), b_h (4,)" in reason


def test_shapes_inside_dicts_and_lists_are_named():
    def lstm_cell_forward(i_t, h_prev, C_prev, params):  # the input first: [i, h] instead of [h, i]
        z = np.concatenate([i_t, h_prev], axis=0)
        return z @ params["W_A"].T, C_prev

    reason = run_item(find_case_set("ch05.lstm_cell_forward"), lstm_cell_forward).verdicts[0].reason
    assert "params['W_A'] (3, 5)" in reason and "i_t (1, 2)" in reason
    message = "raised ValueError: operands could not be broadcast together with shapes (3,4) (2,)"
    assert "grads[1] (2,)" in shape_note(message, {"grads": [np.ones((3, 4)), np.ones(2)], "max_norm": 1.0})


def test_other_errors_and_hidden_cases_get_no_shape_sentence():
    kwargs = {"x": np.ones(3)}
    assert shape_note("raised ZeroDivisionError: division by zero (in f, line 2)", kwargs) == ""
    assert shape_note("raised KeyError: 'W_A' (in f, line 2)", kwargs) == ""
    assert shape_note("raised ValueError: operands could not be broadcast together", {"n": 3}) == ""
    assert is_shape_error("raised RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)")
    assert is_shape_error("raised RuntimeError: The size of tensor a (3) must match the size of tensor b (4)")

    def rnn_cell(i_t, h_prev, W_hi, W_hh, b_h):
        return np.tanh(i_t @ W_hi + h_prev @ W_hh.T + b_h)

    hidden = dataclasses.replace(find_case_set("ch04.rnn_cell"), hidden=True)
    assert "called with" not in run_item(hidden, rnn_cell).verdicts[0].reason
