"""The shared argument checks: the right value passes through, a wrong one gets one clear message."""
import math

import numpy as np
import pytest

from course_lib import checks


def test_integers_pass_through_as_int():
    assert checks.positive_int("n", np.int64(3)) == 3
    assert type(checks.positive_int("n", np.int64(3))) is int
    assert checks.non_negative_int("seed", 0) == 0
    assert checks.integer("k", 8, minimum=1, maximum=8) == 8


@pytest.mark.parametrize("value, message", [
    (0, "n must be a positive integer, got 0"),
    (True, "n must be a positive integer, got True of type bool"),
    (2.0, "n must be a positive integer, got 2.0 of type float"),
    ("3", "n must be a positive integer, got '3' of type str"),
])
def test_positive_int_names_the_argument_and_the_value(value, message):
    with pytest.raises(checks.ArgumentError) as caught:
        checks.positive_int("n", value)
    assert str(caught.value) == message


def test_argument_error_is_both_type_and_value_error():
    with pytest.raises(TypeError):
        checks.positive_int("n", "x")
    with pytest.raises(ValueError):
        checks.positive_int("n", -1)


def test_integer_range_message():
    with pytest.raises(ValueError, match="k must be an integer from 1 to 8, got 9"):
        checks.integer("k", 9, minimum=1, maximum=8)


@pytest.mark.parametrize("value", [math.nan, math.inf, -0.5, 0.0, True, None])
def test_positive_number_rejects(value):
    with pytest.raises(checks.ArgumentError, match="lr must be a positive number"):
        checks.positive_number("lr", value)


def test_numbers_and_probabilities():
    assert checks.positive_number("lr", np.float32(0.5)) == 0.5
    assert checks.probability("p", 1) == 1.0
    with pytest.raises(ValueError, match="p must be a probability from 0 to 1, got 1.5"):
        checks.probability("p", 1.5)
    assert checks.number("x", math.inf, finite=False) == math.inf
    with pytest.raises(ValueError, match="x must be a finite number >= 0"):
        checks.number("x", -1, minimum=0)


def test_one_of_and_text():
    assert checks.one_of("cell", "gru", ("rnn", "lstm", "gru")) == "gru"
    with pytest.raises(ValueError, match="cell must be one of 'rnn', 'lstm', 'gru'; got 'cnn'"):
        checks.one_of("cell", "cnn", ("rnn", "lstm", "gru"))
    with pytest.raises(ValueError, match="must be one of"):
        checks.one_of("cell", ["unhashable"], {"rnn"})
    assert checks.text("name", "x") == "x"
    with pytest.raises(TypeError, match="name must be a str, got int: 3"):
        checks.text("name", 3)


def test_token_ids_become_a_1d_long_tensor():
    import torch

    assert torch.equal(checks.token_ids("ids", [3, 1, 2]), torch.tensor([3, 1, 2]))
    assert checks.token_ids("ids", np.array([4, 5], dtype=np.int32)).dtype == torch.long
    empty = checks.token_ids("ids", [])
    assert empty.dtype == torch.long and empty.shape == (0,)
    with pytest.raises(ValueError, match=r"ids must be a 1-D sequence of token ids, got shape \(2, 3\)"):
        checks.token_ids("ids", torch.zeros(2, 3, dtype=torch.long))
    for wrong in (torch.tensor([1.0, 2.0]), torch.tensor([True, False]), torch.tensor([1j])):
        with pytest.raises(TypeError, match="ids must be integer token ids, got dtype"):
            checks.token_ids("ids", wrong)
