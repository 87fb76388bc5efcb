"""The plain-data codec between a grading worker and the grader."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from course_lib.grading import codec

plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=5) | st.integers() | st.tuples(st.text(max_size=3)), children, max_size=4)
    ),
    max_leaves=20,
)


@given(plain_values)
def test_round_trip_through_json_preserves_values_and_types(value):
    wire = json.dumps(codec.encode(value), allow_nan=False)  # strictly valid JSON
    back = codec.decode(json.loads(wire))
    assert back == value
    assert type(back) is type(value)


def test_non_finite_floats_and_big_integers_survive_strict_json():
    value = [math.inf, -math.inf, 2**80]
    back = codec.decode(json.loads(json.dumps(codec.encode(value), allow_nan=False)))
    assert back[:2] == [math.inf, -math.inf] and back[2] == 2**80
    nan = codec.decode(json.loads(json.dumps(codec.encode(float("nan")), allow_nan=False)))
    assert math.isnan(nan)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint8, np.bool_, np.complex64])
def test_arrays_round_trip_bit_for_bit(dtype):
    array = (np.arange(24).reshape(2, 3, 4) % 5).astype(dtype)
    back = codec.decode(json.loads(json.dumps(codec.encode(array))))
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array)
    assert back.source == "numpy"


def test_torch_tensors_arrive_as_arrays_that_remember_they_were_tensors():
    tensor = torch.randn(3, 2, requires_grad=True)
    back = codec.decode(codec.encode(tensor))
    assert back.source == "torch" and back.device == "cpu"
    assert np.array_equal(back, tensor.detach().numpy())


def test_a_dict_that_looks_like_a_tag_is_still_a_dict():
    value = {"t": "array", "data": "AAAA", "dtype": "<f8", "shape": [1]}
    assert codec.decode(codec.encode(value)) == value


@pytest.mark.parametrize("value, words", [
    (object(), "type object"),
    (lambda x: x, "type function"),
    (np.array(["a", "b"]), "dtype <U1"),
    (np.array([object()]), "dtype object"),
])
def test_values_that_cannot_be_graded_are_refused_by_name(value, words):
    with pytest.raises(codec.CodecError, match=words):
        codec.encode(value)


def test_enormous_and_deep_values_are_refused():
    with pytest.raises(codec.CodecError, match="too large"):
        codec.encode(np.zeros(codec.MAX_ELEMENTS + 1))
    deep: list = []
    for _ in range(codec.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(codec.CodecError, match="nested"):
        codec.encode(deep)


@pytest.mark.parametrize("wire", [
    {"t": "array", "dtype": "|O", "shape": [1], "data": ""},
    {"t": "array", "dtype": "<f8", "shape": [2], "data": "AAAA"},
    {"t": "pickle", "v": "gASV"},
    {"t": "float", "v": "__import__('os')"},
    [1, 2],
    {"no": "tag"},
])
def test_malformed_or_hostile_wire_data_is_refused(wire):
    with pytest.raises(codec.CodecError):
        codec.decode(wire)
