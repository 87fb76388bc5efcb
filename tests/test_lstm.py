"""course_lib.lstm against torch.nn.LSTM / nn.GRU (outputs, states, gradients) and the gate equations."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_lib.lstm import (
    GRU,
    LSTM,
    GRUCell,
    LSTMCell,
    gru_parameter_count,
    lstm_cell_update,
    lstm_gates,
    lstm_parameter_count,
    gru_book_to_pytorch,
    gru_pytorch_to_book,
    lstm_book_to_pytorch,
    lstm_pytorch_to_book,
)
from course_lib.rnn import rnn_parameter_count

TOLERANCE = 1e-5


def max_abs(a, b) -> float:
    return (a - b).abs().max().item()


def random_state(kind, num_layers, batch, d_hidden):
    if kind == "lstm":
        return torch.randn(num_layers, batch, d_hidden), torch.randn(num_layers, batch, d_hidden)
    return torch.randn(num_layers, batch, d_hidden)


def flat(state):
    return list(state) if isinstance(state, tuple) else [state]


# ---------------------------------------------------------------------------------------------
# Layers equal PyTorch's, forward and backward
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("time", [1, 30])
@pytest.mark.parametrize("with_initial_state", [False, True])
def test_layer_equals_torch(kind, num_layers, time, with_initial_state):
    torch.manual_seed(11 * num_layers + time)
    ours_class, torch_class = {"lstm": (LSTM, nn.LSTM), "gru": (GRU, nn.GRU)}[kind]
    reference = torch_class(5, 7, num_layers, batch_first=True)
    ours = ours_class(5, 7, num_layers)
    ours.load_state_dict(reference.state_dict())  # strict: PyTorch's names and shapes

    inputs = torch.randn(3, time, 5, requires_grad=True)
    state = random_state(kind, num_layers, 3, 7) if with_initial_state else None
    if state is not None:
        for tensor in flat(state):
            tensor.requires_grad_()
    outputs, final = ours(inputs, state)
    expected_outputs, expected_final = reference(inputs, state)
    assert outputs.shape == (3, time, 7)
    assert max_abs(outputs, expected_outputs) <= TOLERANCE
    assert len(flat(final)) == len(flat(expected_final))
    for mine, theirs in zip(flat(final), flat(expected_final)):
        assert mine.shape == (num_layers, 3, 7)
        assert max_abs(mine, theirs) <= TOLERANCE

    # gradients of a loss touching the outputs and every final state
    weights = torch.randn_like(outputs)
    differentiate = [inputs, *(flat(state) if state is not None else [])]

    def loss(outs, fin):
        return (outs * weights).sum() + sum((s**2).sum() for s in flat(fin))

    ours_grads = torch.autograd.grad(loss(outputs, final), differentiate + list(ours.parameters()))
    torch_grads = torch.autograd.grad(
        loss(expected_outputs, expected_final), differentiate + list(reference.parameters())
    )
    for mine, theirs in zip(ours_grads, torch_grads):
        assert max_abs(mine, theirs) <= TOLERANCE


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_fused_path_runs_torch_on_the_same_parameters(kind):
    torch.manual_seed(5)
    ours_class, torch_class = {"lstm": (LSTM, nn.LSTM), "gru": (GRU, nn.GRU)}[kind]
    ours = ours_class(4, 6, 2)
    assert list(ours.state_dict()) == list(torch_class(4, 6, 2).state_dict())
    assert [p.shape for p in ours.parameters()] == [p.shape for p in torch_class(4, 6, 2).parameters()]
    inputs = torch.randn(2, 10, 4)
    state = random_state(kind, 2, 2, 6)
    outputs, final = ours(inputs, state)
    scratch_grads = torch.autograd.grad(outputs.sum(), list(ours.parameters()))
    ours.fused = True
    fused_outputs, fused_final = ours(inputs, state)
    fused_grads = torch.autograd.grad(fused_outputs.sum(), list(ours.parameters()))
    assert max_abs(outputs, fused_outputs) <= TOLERANCE
    for mine, theirs in zip(flat(final), flat(fused_final)):
        assert max_abs(mine, theirs) <= TOLERANCE
    for mine, theirs in zip(scratch_grads, fused_grads):
        assert max_abs(mine, theirs) <= TOLERANCE


def test_float64_layers_match_torch_closely():
    torch.manual_seed(8)
    reference = nn.LSTM(3, 4, 2, batch_first=True).double()
    ours = LSTM(3, 4, 2).double()
    ours.load_state_dict(reference.state_dict())
    inputs = torch.randn(2, 12, 3, dtype=torch.float64)
    assert max_abs(ours(inputs)[0], reference(inputs)[0]) <= 1e-12
    ours.fused = True
    assert max_abs(ours(inputs)[0], reference(inputs)[0]) <= 1e-12


# ---------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------
def test_lstm_cell_equals_torch():
    torch.manual_seed(2)
    reference = nn.LSTMCell(4, 5)
    ours = LSTMCell(4, 5)
    ours.load_state_dict(reference.state_dict())
    i_t, h_prev, C_prev = torch.randn(3, 4), torch.randn(3, 5), torch.randn(3, 5)
    for state in [(h_prev, C_prev), None]:
        h, C = ours(i_t, state)
        expected_h, expected_C = reference(i_t, state)
        assert max_abs(h, expected_h) <= 1e-6 and max_abs(C, expected_C) <= 1e-6


def test_gru_cell_equals_torch():
    torch.manual_seed(3)
    reference = nn.GRUCell(4, 5)
    ours = GRUCell(4, 5)
    ours.load_state_dict(reference.state_dict())
    i_t, h_prev = torch.randn(3, 4), torch.randn(3, 5)
    assert max_abs(ours(i_t, h_prev), reference(i_t, h_prev)) <= 1e-6
    assert max_abs(ours(i_t), reference(i_t)) <= 1e-6


def test_book_gates_map_onto_torch_chunks():
    # The book's A/B/Ĉ/D written with the documented slices of PyTorch's weights reproduce nn.LSTMCell.
    torch.manual_seed(4)
    reference = nn.LSTMCell(3, 4)
    H = 4
    i_t, h_prev, C_prev = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)

    def gate(chunk, squash):
        rows = slice(chunk * H, (chunk + 1) * H)
        W = torch.cat([reference.weight_hh[rows], reference.weight_ih[rows]], dim=1)  # W [h_{t-1}, i_t]
        b = reference.bias_ih[rows] + reference.bias_hh[rows]
        return squash(torch.cat([h_prev, i_t], dim=1) @ W.T + b)

    B, A, C_hat, D = gate(0, torch.sigmoid), gate(1, torch.sigmoid), gate(2, torch.tanh), gate(3, torch.sigmoid)
    C = A * C_prev + B * C_hat
    h = D * torch.tanh(C)
    expected_h, expected_C = reference(i_t, (h_prev, C_prev))
    assert max_abs(h, expected_h) <= 1e-6 and max_abs(C, expected_C) <= 1e-6

    preactivations = (
        i_t @ reference.weight_ih.T + reference.bias_ih + h_prev @ reference.weight_hh.T + reference.bias_hh
    )
    gates = lstm_gates(preactivations)
    for ours_gate, book_gate in zip(gates, (A, B, C_hat, D)):
        assert max_abs(ours_gate, book_gate) <= 1e-6


def test_the_gate_map_writes_the_books_lstm_into_pytorch_and_back():
    torch.manual_seed(5)
    H, d_in = 4, 3
    book = {f"W_{g}": torch.randn(H, H + d_in, dtype=torch.float64) for g in "ABCD"}
    book |= {f"b_{g}": torch.randn(H, dtype=torch.float64) for g in "ABCD"}
    reference = nn.LSTMCell(d_in, H).double()
    reference.load_state_dict(lstm_book_to_pytorch(book))
    i_t, h_prev, C_prev = (torch.randn(2, n, dtype=torch.float64) for n in (d_in, H, H))
    h_i = torch.cat([h_prev, i_t], dim=1)  # [h_{t-1}, i_t]
    A, B, D = (torch.sigmoid(h_i @ book[f"W_{g}"].T + book[f"b_{g}"]) for g in "ABD")
    C = A * C_prev + B * torch.tanh(h_i @ book["W_C"].T + book["b_C"])
    with torch.no_grad():
        expected_h, expected_C = reference(i_t, (h_prev, C_prev))
    assert max_abs(D * torch.tanh(C), expected_h) <= 1e-12 and max_abs(C, expected_C) <= 1e-12
    back = lstm_pytorch_to_book(reference.state_dict())
    assert sorted(back) == sorted(book) and all(torch.allclose(back[k], book[k]) for k in book)
    layer = LSTM(d_in, H, forget_bias=1.0).double()  # a layer's names end in _l0; its two biases add up
    assert torch.equal(lstm_pytorch_to_book(layer.state_dict(), layer=0)["b_A"], torch.ones(H, dtype=torch.float64))


def test_the_gru_map_names_pytorchs_chunks_and_inverts():
    torch.manual_seed(6)
    reference = nn.GRUCell(3, 4).double()
    named = gru_pytorch_to_book(reference.state_dict())
    assert sorted(named) == sorted(f"{p}{g}" for p in ("W_i", "W_h", "b_i", "b_h") for g in "rzn")
    x_t, h_prev = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    r = torch.sigmoid(x_t @ named["W_ir"].T + named["b_ir"] + h_prev @ named["W_hr"].T + named["b_hr"])
    z = torch.sigmoid(x_t @ named["W_iz"].T + named["b_iz"] + h_prev @ named["W_hz"].T + named["b_hz"])
    n = torch.tanh(x_t @ named["W_in"].T + named["b_in"] + r * (h_prev @ named["W_hn"].T + named["b_hn"]))
    with torch.no_grad():
        assert max_abs((1 - z) * n + z * h_prev, reference(x_t, h_prev)) <= 1e-12
    rebuilt = gru_book_to_pytorch(named)
    assert all(torch.equal(rebuilt[k], v) for k, v in reference.state_dict().items())


# ---------------------------------------------------------------------------------------------
# The gradient highway
# ---------------------------------------------------------------------------------------------
def test_direct_path_derivative_of_the_cell_is_the_forget_gate():
    torch.manual_seed(6)
    cell = LSTMCell(3, 5).double()
    i_t, h_prev, C_prev = (torch.randn(1, n, dtype=torch.float64) for n in (3, 5, 5))

    # gates held fixed: h_{t-1} and i_t are constants, only C_{t-1} varies
    jacobian = torch.autograd.functional.jacobian(lambda C: cell(i_t, (h_prev, C))[1], C_prev)[0, :, 0, :]
    W = torch.cat([cell.weight_hh[5:10], cell.weight_ih[5:10]], dim=1)
    A_t = torch.sigmoid(torch.cat([h_prev, i_t], dim=1) @ W.T + cell.bias_ih[5:10] + cell.bias_hh[5:10])[0]
    assert torch.allclose(jacobian, torch.diag(A_t), atol=1e-12)

    # same with PyTorch's own cell holding the same weights
    reference = nn.LSTMCell(3, 5).double()
    reference.load_state_dict(cell.state_dict())
    torch_jacobian = torch.autograd.functional.jacobian(lambda C: reference(i_t, (h_prev, C))[1], C_prev)[0, :, 0, :]
    assert torch.allclose(torch_jacobian, torch.diag(A_t), atol=1e-12)


def test_direct_path_over_many_steps_is_the_product_of_forget_gates():
    torch.manual_seed(7)
    T, H = 12, 4
    preactivations = [torch.randn(1, 4 * H, dtype=torch.float64) for _ in range(T)]
    C_0 = torch.randn(1, H, dtype=torch.float64)

    def C_T(C):
        for pre in preactivations:
            _, C = lstm_cell_update(pre, C)
        return C

    jacobian = torch.autograd.functional.jacobian(C_T, C_0)[0, :, 0, :]
    forget_gates = torch.stack([torch.sigmoid(pre[0, H : 2 * H]) for pre in preactivations])
    assert torch.allclose(jacobian, torch.diag(forget_gates.prod(dim=0)), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Initialisation and parameter counts
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("forget_bias", [1.0, 0.0, 2.5])
def test_forget_gate_bias_initialisation(forget_bias):
    torch.manual_seed(0)
    H = 6
    layer = LSTM(3, H, num_layers=2, forget_bias=forget_bias)
    bound = 1 / math.sqrt(H)
    for index in range(2):
        _, _, bias_ih, bias_hh = layer.layer_parameters(index)
        b_A = bias_ih[H : 2 * H] + bias_hh[H : 2 * H]
        assert torch.allclose(b_A, torch.full((H,), forget_bias))
        others = torch.cat([bias_ih[:H], bias_ih[2 * H :], bias_hh[:H], bias_hh[2 * H :]])
        assert others.abs().max() <= bound and others.std() > 0.1 * bound  # still PyTorch's uniform
    cell = LSTMCell(3, H, forget_bias=forget_bias)
    assert torch.allclose(cell.bias_ih[H : 2 * H] + cell.bias_hh[H : 2 * H], torch.full((H,), forget_bias))
    # a fresh LSTM therefore starts with its forget gates mostly open when forget_bias = 1
    if forget_bias == 1.0:
        outputs = torch.randn(4, 3)
        pre = outputs @ cell.weight_ih.T + cell.bias_ih + cell.bias_hh
        assert lstm_gates(pre).A.mean() > 0.6


@settings(max_examples=20, deadline=None)
@given(d_in=st.integers(1, 40), d_hidden=st.integers(1, 40), num_layers=st.integers(1, 4))
def test_parameter_counts_equal_torch(d_in, d_hidden, num_layers):
    def count(module):
        return sum(p.numel() for p in module.parameters())

    assert lstm_parameter_count(d_in, d_hidden, num_layers) == count(nn.LSTM(d_in, d_hidden, num_layers, device="meta"))
    assert gru_parameter_count(d_in, d_hidden, num_layers) == count(nn.GRU(d_in, d_hidden, num_layers, device="meta"))
    assert rnn_parameter_count(d_in, d_hidden, num_layers) == count(nn.RNN(d_in, d_hidden, num_layers, device="meta"))


def test_our_modules_have_the_counted_parameters():
    def count(module):
        return sum(p.numel() for p in module.parameters())

    assert count(LSTM(7, 9, 3)) == lstm_parameter_count(7, 9, 3)
    assert count(GRU(7, 9, 3)) == gru_parameter_count(7, 9, 3)


# ---------------------------------------------------------------------------------------------
# Bad input gets a clear error
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fused", [False, True])
def test_layer_errors(fused):
    lstm, gru = LSTM(4, 3, num_layers=2, fused=fused), GRU(4, 3, fused=fused)
    good = torch.randn(2, 5, 4)
    for layer in (lstm, gru):
        with pytest.raises(ValueError, match=r"\(batch, time, d_in\), got a 2-D tensor"):
            layer(torch.randn(5, 4))
        with pytest.raises(ValueError, match=r"\(batch, time, d_in\), got a 4-D tensor"):
            layer(torch.randn(1, 2, 5, 4))
        with pytest.raises(ValueError, match="d_in = 6.*d_in = 4"):
            layer(torch.randn(2, 5, 6))
        with pytest.raises(ValueError, match="length 0"):
            layer(torch.randn(2, 0, 4))
    with pytest.raises(ValueError, match=r"h_0 must have shape \(num_layers, batch, d_hidden\) = \(2, 2, 3\)"):
        lstm(good, (torch.zeros(2, 3), torch.zeros(2, 2, 3)))
    with pytest.raises(ValueError, match=r"initial state C_0 must have shape .* = \(2, 2, 3\)"):
        lstm(good, (torch.zeros(2, 2, 3), torch.zeros(2, 2, 4)))
    with pytest.raises(TypeError, match=r"pair \(h_0, C_0\)"):
        lstm(good, torch.zeros(2, 2, 3))
    with pytest.raises(ValueError, match=r"initial state h_0 must have shape .* = \(1, 2, 3\)"):
        gru(good, torch.zeros(2, 2, 3))


def test_cell_and_constructor_errors():
    with pytest.raises(ValueError, match=r"\(batch, d_in\) = \(batch, 4\)"):
        LSTMCell(4, 3)(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"C_prev must have shape \(batch, d_hidden\) = \(2, 3\)"):
        LSTMCell(4, 3)(torch.randn(2, 4), (torch.zeros(2, 3), torch.zeros(3, 3)))
    with pytest.raises(TypeError, match=r"pair \(h_prev, C_prev\)"):
        LSTMCell(4, 3)(torch.randn(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"h_prev must have shape"):
        GRUCell(4, 3)(torch.randn(2, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="forget_bias must be a finite number"):
        LSTM(4, 3, forget_bias=float("nan"))
    with pytest.raises(ValueError, match="d_in must be a positive integer"):
        GRU(0, 3)
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        lstm_parameter_count(4, 3, 0)
