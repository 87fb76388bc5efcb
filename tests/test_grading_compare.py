"""Comparisons give the first difference in words a student can act on."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.grading import codec
from course_lib.grading.compare import Tolerance, compare


def wire(value):
    return codec.decode(codec.encode(value))


def test_equal_values_pass():
    assert compare({("a", "b"): 2, ("b",): 0.5}, {("b",): 0.5, ("a", "b"): 2}) is None
    assert compare(wire(np.ones((2, 3))), wire(np.ones((2, 3)) + 1e-12)) is None


def test_numbers_within_and_outside_tolerance():
    tolerance = Tolerance(rtol=1e-6, atol=0)
    assert compare(1.0, 1.0 + 1e-7, tolerance) is None
    reason = compare(1.0, 1.001, tolerance)
    assert "expected 1" in reason and "got 1.001" in reason and "abs error 0.001" in reason


def test_dict_keys_missing_and_extra_are_named():
    reason = compare({("the", "cat"): 1, ("a", "dog"): 2}, {("the", "cat"): 1, ("the", "dog"): 2})
    assert "missing 1" in reason and "('a', 'dog')" in reason
    assert "unexpected 1" in reason and "('the', 'dog')" in reason


def test_the_failing_key_is_named():
    reason = compare({("the", "cat"): 1, ("a", "dog"): 2}, {("the", "cat"): 1, ("a", "dog"): 3})
    assert "('a', 'dog')" in reason and "expected 2" in reason and "got 3" in reason


def test_wrong_type_is_named():
    assert "expected a number" in compare(0.5, "0.5")
    assert "expected a dict" in compare({"a": 1}, [("a", 1)])
    assert "expected a number" in compare(1.0, True)


def test_array_shape_dtype_and_max_error():
    expected = wire(np.zeros((2, 3)))
    assert "wrong shape" in compare(expected, wire(np.zeros((3, 2))))
    assert "wrong dtype" in compare(expected, wire(np.zeros((2, 3), dtype=np.int64)))
    actual = np.zeros((2, 3))
    actual[1, 2] = 0.5
    reason = compare(expected, wire(actual))
    assert "1 of 6 elements" in reason and "max abs error 0.5" in reason and "(1, 2)" in reason


def test_nan_where_a_number_was_expected_is_reported():
    actual = np.zeros(3)
    actual[1] = np.nan
    assert "NaN" in compare(wire(np.zeros(3)), wire(actual))
    assert compare(float("nan"), float("nan")) is None
    assert "expected 0" in compare(0.0, float("nan"))


def test_tensor_expected_but_array_returned():
    reason = compare(wire(torch.zeros(2)), wire(np.zeros(2, dtype=np.float32)))
    assert "expected a torch tensor" in reason and "NumPy array" in reason


@pytest.mark.parametrize("expected, actual", [([1, 2], [1, 2, 3]), ((1, 2), (1,))])
def test_sequence_lengths(expected, actual):
    assert "items" in compare(expected, actual)


def test_a_tensor_on_another_device_is_named():
    expected = codec.TaggedArray.wrap(np.zeros(3), "torch", "cpu")
    actual = codec.TaggedArray.wrap(np.zeros(3), "torch", "cuda:0")
    assert compare(expected, actual) == "wrong device: expected a tensor on cpu, got one on cuda:0"
    assert compare(expected, codec.TaggedArray.wrap(np.zeros(3), "torch", "cpu")) is None
