"""course_lib.rnn against PyTorch's modules, autograd and finite differences."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_lib.lstm import LSTM, recurrent_layer
from course_lib.rnn import (
    RNN,
    RecurrentLM,
    RNNCell,
    clip_grad_norm,
    hidden_state_jacobian_norms,
    rnn_backward_numpy,
    rnn_forward_numpy,
    rnn_parameter_count,
    rnn_params_numpy,
)

GRAD_NAMES = ("W_hi", "W_hh", "b_h", "W_oh", "b_o", "h0")


def max_abs(a, b) -> float:
    return (torch.as_tensor(a) - torch.as_tensor(b)).abs().max().item()


# ---------------------------------------------------------------------------------------------
# The from-scratch layer equals nn.RNN
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("time", [1, 50])
@pytest.mark.parametrize("with_initial_state", [False, True])
def test_rnn_equals_torch(nonlinearity, num_layers, time, with_initial_state):
    torch.manual_seed(time + 7 * num_layers)
    reference = nn.RNN(5, 6, num_layers, nonlinearity=nonlinearity, batch_first=True)
    ours = RNN(5, 6, num_layers, nonlinearity)
    ours.load_state_dict(reference.state_dict())  # strict: the names and shapes are PyTorch's

    inputs = torch.randn(3, time, 5, requires_grad=True)
    h_0 = torch.randn(num_layers, 3, 6) if with_initial_state else None
    outputs, h_T = ours(inputs, h_0)
    expected_outputs, expected_h_T = reference(inputs, h_0)
    assert outputs.shape == (3, time, 6) and h_T.shape == (num_layers, 3, 6)
    assert max_abs(outputs, expected_outputs) <= 1e-5
    assert max_abs(h_T, expected_h_T) <= 1e-5

    # and so do the gradients
    weights = torch.randn_like(outputs)
    ours_grads = torch.autograd.grad((outputs * weights).sum() + h_T.sum(), [inputs, *ours.parameters()])
    torch_grads = torch.autograd.grad(
        (expected_outputs * weights).sum() + expected_h_T.sum(), [inputs, *reference.parameters()]
    )
    for mine, theirs in zip(ours_grads, torch_grads):
        assert max_abs(mine, theirs) <= 1e-5


def test_rnn_state_dict_names_match_torch_and_fused_path_is_the_same():
    torch.manual_seed(0)
    ours = RNN(4, 3, 2)
    assert list(ours.state_dict()) == list(nn.RNN(4, 3, 2).state_dict())
    inputs = torch.randn(2, 9, 4)
    outputs, h_T = ours(inputs)
    ours.fused = True
    fused_outputs, fused_h_T = ours(inputs)
    assert max_abs(outputs, fused_outputs) <= 1e-6 and max_abs(h_T, fused_h_T) <= 1e-6
    # the fused path trains the same parameters
    fused_outputs.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ours.parameters())


def test_rnn_cell_equals_torch_and_book_bias():
    torch.manual_seed(1)
    reference = nn.RNNCell(4, 5, nonlinearity="relu")
    ours = RNNCell(4, 5, "relu")
    ours.load_state_dict(reference.state_dict())
    i_t, h_prev = torch.randn(3, 4), torch.randn(3, 5)
    assert max_abs(ours(i_t, h_prev), reference(i_t, h_prev)) <= 1e-6
    assert max_abs(ours(i_t), reference(i_t)) <= 1e-6
    # the book's single bias b_h = b_ih + b_hh
    b_h = ours.bias_ih + ours.bias_hh
    book = torch.relu(i_t @ ours.weight_ih.T + h_prev @ ours.weight_hh.T + b_h)
    assert max_abs(ours(i_t, h_prev), book) <= 1e-6


def test_rnn_parameter_count_equals_torch():
    for d_in, d_hidden, num_layers in [(1, 1, 1), (7, 5, 1), (3, 8, 4)]:
        module = nn.RNN(d_in, d_hidden, num_layers)
        assert rnn_parameter_count(d_in, d_hidden, num_layers) == sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------------
# Hand-written BPTT
# ---------------------------------------------------------------------------------------------
def make_problem(T=7, d_in=3, d_hidden=4, d_out=5, seed=0):
    rng = np.random.default_rng(seed + 100)
    params = rnn_params_numpy(d_in, d_hidden, d_out, seed=seed)
    params = {name: value * 2.0 for name, value in params.items()}  # larger weights: less trivial gradients
    inputs = rng.normal(size=(T, d_in))
    targets = rng.integers(0, d_out, size=T)
    h0 = rng.normal(size=d_hidden) * 0.5
    return params, inputs, targets, h0


def autograd_gradients(params, inputs, targets, h0, activation="tanh", k=None):
    """The same model built from PyTorch modules, differentiated by autograd (float64).

    With ``k``, the hidden state is detached every k steps (after steps k, 2k, ...)."""
    d_hidden, d_in = params["W_hi"].shape
    cell = nn.RNNCell(d_in, d_hidden, nonlinearity=activation).double()
    readout = nn.Linear(d_hidden, params["W_oh"].shape[0]).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(params["W_hi"]))
        cell.weight_hh.copy_(torch.from_numpy(params["W_hh"]))
        cell.bias_ih.copy_(torch.from_numpy(params["b_h"]))
        cell.bias_hh.zero_()
        readout.weight.copy_(torch.from_numpy(params["W_oh"]))
        readout.bias.copy_(torch.from_numpy(params["b_o"]))
    h_0 = torch.tensor(h0, requires_grad=True)
    x = torch.from_numpy(inputs)
    y = torch.from_numpy(targets)
    h, loss = h_0.unsqueeze(0), 0.0
    for t in range(len(inputs)):
        if k is not None and t > 0 and t % k == 0:
            h = h.detach()
        h = cell(x[t : t + 1], h)
        loss = loss + F.cross_entropy(readout(h), y[t : t + 1], reduction="sum")
    loss.backward()
    grads = {
        "W_hi": cell.weight_ih.grad,
        "W_hh": cell.weight_hh.grad,
        "b_h": cell.bias_ih.grad,
        "W_oh": readout.weight.grad,
        "b_o": readout.bias.grad,
        "h0": h_0.grad,
    }
    return loss.item(), {name: grad.numpy() for name, grad in grads.items()}


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_bptt_equals_autograd(activation):
    params, inputs, targets, h0 = make_problem(T=9, seed=3)
    loss, cache = rnn_forward_numpy(params, inputs, targets, h0, activation)
    grads = rnn_backward_numpy(cache)
    expected_loss, expected = autograd_gradients(params, inputs, targets, h0, activation)
    assert abs(loss - expected_loss) <= 1e-9
    assert set(grads) == set(GRAD_NAMES)
    for name in GRAD_NAMES:
        assert grads[name].shape == expected[name].shape
        assert np.abs(grads[name] - expected[name]).max() <= 1e-6, name
    assert np.abs(grads["h0"]).max() > 1e-3  # the check above is not vacuous


def finite_difference_gradients(params, inputs, targets, h0, activation="tanh", eps=1e-6):
    """Central differences of the loss, one coordinate at a time."""
    arrays = {**{name: params[name].copy() for name in params}, "h0": h0.copy()}

    def loss_at():
        rest = {name: arrays[name] for name in params}
        return rnn_forward_numpy(rest, inputs, targets, arrays["h0"], activation)[0]

    grads = {}
    for name, array in arrays.items():
        grad = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + eps
            plus = loss_at()
            array[index] = saved - eps
            minus = loss_at()
            array[index] = saved
            grad[index] = (plus - minus) / (2 * eps)
        grads[name] = grad
    return grads


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_bptt_equals_finite_differences(activation):
    params, inputs, targets, h0 = make_problem(T=6, seed=5)
    grads = rnn_backward_numpy(rnn_forward_numpy(params, inputs, targets, h0, activation)[1])
    numeric = finite_difference_gradients(params, inputs, targets, h0, activation)
    for name in GRAD_NAMES:
        scale = max(1.0, np.abs(numeric[name]).max())
        assert np.abs(grads[name] - numeric[name]).max() <= 1e-6 * scale, name


@pytest.mark.parametrize("k", [1, 2, 3, 4, 8, 20])
def test_truncated_bptt_equals_autograd_with_detach_every_k_steps(k):
    params, inputs, targets, h0 = make_problem(T=8, seed=11)
    cache = rnn_forward_numpy(params, inputs, targets, h0)[1]
    grads = rnn_backward_numpy(cache, k=k)
    _, expected = autograd_gradients(params, inputs, targets, h0, k=k)
    for name in GRAD_NAMES:
        assert np.abs(grads[name] - expected[name]).max() <= 1e-6, (k, name)
    if k < 8:  # truncation changes the answer: it is not the full gradient
        full = rnn_backward_numpy(cache)
        assert np.abs(full["W_hh"] - grads["W_hh"]).max() > 1e-6


@settings(max_examples=15, deadline=None)
@given(
    T=st.integers(1, 6),
    d_in=st.integers(1, 3),
    d_hidden=st.integers(1, 4),
    d_out=st.integers(2, 4),
    seed=st.integers(0, 10_000),
)
def test_bptt_equals_autograd_for_any_size(T, d_in, d_hidden, d_out, seed):
    params, inputs, targets, h0 = make_problem(T, d_in, d_hidden, d_out, seed)
    grads = rnn_backward_numpy(rnn_forward_numpy(params, inputs, targets, h0)[1])
    _, expected = autograd_gradients(params, inputs, targets, h0)
    for name in GRAD_NAMES:
        assert np.abs(grads[name] - expected[name]).max() <= 1e-6


def test_truncation_longer_than_the_sequence_is_the_full_gradient():
    params, inputs, targets, h0 = make_problem(T=5, seed=2)
    cache = rnn_forward_numpy(params, inputs, targets, h0)[1]
    full, truncated = rnn_backward_numpy(cache), rnn_backward_numpy(cache, k=5)
    for name in GRAD_NAMES:
        np.testing.assert_array_equal(full[name], truncated[name])


# ---------------------------------------------------------------------------------------------
# Jacobian norms
# ---------------------------------------------------------------------------------------------
def autograd_jacobian_norms(W_hh, T, activation, h0, input_terms, norm):
    W = torch.from_numpy(W_hh)
    u = torch.from_numpy(input_terms)
    f = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda a: a}[activation]
    states = [torch.from_numpy(h0)]
    for t in range(T):
        states.append(f(W @ states[-1] + u[t]))

    def run_from(k):
        def h_T(h_k):
            h = h_k
            for t in range(k, T):
                h = f(W @ h + u[t])
            return h

        return h_T

    ord_ = 2 if norm == "spectral" else "fro"
    norms = []
    for k in range(T, -1, -1):
        jacobian = torch.autograd.functional.jacobian(run_from(k), states[k])
        norms.append(torch.linalg.matrix_norm(jacobian, ord=ord_).item())
    return np.array(norms)


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear"])
@pytest.mark.parametrize("norm", ["spectral", "frobenius"])
def test_jacobian_norms_equal_autograd(activation, norm):
    rng = np.random.default_rng(4)
    H, T = 5, 12
    W_hh = rng.normal(size=(H, H)) * 0.6
    h0 = rng.normal(size=H)
    input_terms = rng.normal(size=(T, H))
    ours = hidden_state_jacobian_norms(W_hh, T, activation, h0=h0, input_terms=input_terms, norm=norm)
    expected = autograd_jacobian_norms(W_hh, T, activation, h0, input_terms, norm)
    assert ours.shape == (T + 1,)
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(scale=st.floats(0.5, 1.5), T=st.integers(1, 30), seed=st.integers(0, 1000))
def test_linear_jacobian_norm_of_a_scaled_rotation_is_a_power(scale, T, seed):
    # W_hh = scale * Q with Q orthogonal: every singular value of W_hh^s is scale^s
    Q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(6, 6)))
    norms = hidden_state_jacobian_norms(scale * Q, T, "linear")
    np.testing.assert_allclose(norms, scale ** np.arange(T + 1), rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# Gradient clipping
# ---------------------------------------------------------------------------------------------
def twin_parameters(grad_scale, seed=0, with_missing_grad=False, zero=False):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (5,), (2, 2, 2)]
    pairs = []
    for index, shape in enumerate(shapes):
        a, b = torch.zeros(shape, requires_grad=True), torch.zeros(shape, requires_grad=True)
        if not (with_missing_grad and index == 1):
            grad = torch.zeros(shape) if zero else torch.randn(shape, generator=generator) * grad_scale
            a.grad, b.grad = grad.clone(), grad.clone()
        pairs.append((a, b))
    return [a for a, _ in pairs], [b for _, b in pairs]


@pytest.mark.parametrize(
    "grad_scale, max_norm, with_missing_grad, zero",
    [(10.0, 1.0, False, False), (0.01, 1.0, False, False), (3.0, 0.5, True, False), (1.0, 1.0, False, True)],
    ids=["clips", "no-clip", "missing-grad", "zero-grads"],
)
def test_clip_grad_norm_equals_torch(grad_scale, max_norm, with_missing_grad, zero):
    ours, theirs = twin_parameters(grad_scale, with_missing_grad=with_missing_grad, zero=zero)
    before = [None if p.grad is None else p.grad.clone() for p in ours]
    total = clip_grad_norm(ours, max_norm)
    expected_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
    assert torch.allclose(total, expected_total, rtol=1e-6, atol=0)
    for mine, reference in zip(ours, theirs):
        assert (mine.grad is None) == (reference.grad is None)
        if mine.grad is not None:
            assert torch.allclose(mine.grad, reference.grad, rtol=1e-6, atol=1e-9)
    new_norm = torch.sqrt(sum((p.grad**2).sum() for p in ours if p.grad is not None))
    if zero:
        assert total.item() == 0.0 and new_norm.item() == 0.0
    elif total > max_norm:
        assert abs(new_norm.item() - max_norm) <= 1e-4  # clipped to max_norm, direction kept
    else:
        assert all(b is None or torch.equal(p.grad, b) for p, b in zip(ours, before))


def test_clip_grad_norm_with_a_single_tensor_and_no_grads():
    tensor = torch.zeros(4, requires_grad=True)
    assert clip_grad_norm([tensor], 1.0).item() == 0.0  # no gradient at all: norm 0, nothing to do
    tensor.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])
    assert clip_grad_norm(tensor, 1.0).item() == pytest.approx(5.0)
    assert torch.allclose(tensor.grad, torch.tensor([0.6, 0.8, 0.0, 0.0]), atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(1e-3, 1e3), max_norm=st.floats(1e-2, 1e2), seed=st.integers(0, 1000))
def test_clipped_norm_never_exceeds_max_norm(scale, max_norm, seed):
    ours, _ = twin_parameters(scale, seed=seed)
    clip_grad_norm(ours, max_norm)
    assert torch.sqrt(sum((p.grad.double() ** 2).sum() for p in ours)).item() <= max_norm * (1 + 1e-5)


# ---------------------------------------------------------------------------------------------
# The recurrent language model: embedding, any recurrent layer, read-out
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_recurrent_lm_equals_torch_composition(cell):
    torch.manual_seed(2)
    model = RecurrentLM(11, recurrent_layer(cell, 4, 6, num_layers=2))
    recurrent = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](4, 6, 2, batch_first=True)
    recurrent.load_state_dict(model.rnn.state_dict())
    ids = torch.randint(0, 11, (3, 8))
    hidden, _ = recurrent(F.embedding(ids, model.embedding.weight))
    expected = F.linear(hidden, model.readout.weight, model.readout.bias)
    logits = model(ids)
    assert logits.shape == (3, 8, 11)
    assert max_abs(logits, expected) <= 1e-5
    model.fused = True
    assert max_abs(model(ids), expected) <= 1e-5

    # carrying the state across two halves gives the same logits as one pass
    model.fused = False
    first, state = model.forward_with_state(ids[:, :5])
    second = model(ids[:, 5:], state)
    assert max_abs(torch.cat([first, second], dim=1), logits) <= 1e-5


def test_recurrent_lm_state_dict_is_the_same_fused_or_not():
    torch.manual_seed(3)
    scratch = RecurrentLM(7, LSTM(3, 5))
    fused = RecurrentLM(7, LSTM(3, 5, fused=True))
    assert list(scratch.state_dict()) == list(fused.state_dict())
    fused.load_state_dict(scratch.state_dict())
    ids = torch.randint(0, 7, (2, 6))
    assert max_abs(scratch(ids), fused(ids)) <= 1e-5


# ---------------------------------------------------------------------------------------------
# Bad input gets a clear error
# ---------------------------------------------------------------------------------------------
def test_rnn_layer_errors():
    layer = RNN(4, 3, num_layers=2)
    with pytest.raises(ValueError, match=r"\(batch, time, d_in\).*unsqueeze"):
        layer(torch.randn(5, 4))
    with pytest.raises(ValueError, match="d_in = 5.*d_in = 4"):
        layer(torch.randn(2, 5, 5))
    with pytest.raises(ValueError, match="length 0"):
        layer(torch.randn(2, 0, 4))
    with pytest.raises(ValueError, match=r"initial state h_0 must have shape .* = \(2, 2, 3\)"):
        layer(torch.randn(2, 5, 4), torch.zeros(1, 2, 3))
    with pytest.raises(TypeError, match="float64.*float32"):
        layer(torch.randn(2, 5, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating-point.*embedding"):
        layer(torch.ones(2, 5, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        layer(np.zeros((2, 5, 4)))
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(4, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="d_hidden must be a positive integer"):
        RNN(4, 0)
    with pytest.raises(TypeError, match="num_layers must be a positive integer"):
        RNN(4, 3, num_layers=1.5)
    with pytest.raises(ValueError, match=r"\(batch, d_in\)"):
        RNNCell(4, 3)(torch.randn(4))


def test_numpy_bptt_errors():
    params, inputs, targets, h0 = make_problem(T=4)
    with pytest.raises(ValueError, match="targets must lie in"):
        rnn_forward_numpy(params, inputs, targets + 10, h0)
    with pytest.raises(ValueError, match="targets must be integer"):
        rnn_forward_numpy(params, inputs, targets.astype(float), h0)
    with pytest.raises(ValueError, match="length 0"):
        rnn_forward_numpy(params, inputs[:0], targets[:0], h0)
    with pytest.raises(ValueError, match=r"inputs must have shape \(time, d_in\)"):
        rnn_forward_numpy(params, inputs[:, :2], targets, h0)
    with pytest.raises(ValueError, match="missing"):
        rnn_forward_numpy({"W_hi": params["W_hi"]}, inputs, targets, h0)
    with pytest.raises(ValueError, match="h0 must have shape"):
        rnn_forward_numpy(params, inputs, targets, h0[:2])
    cache = rnn_forward_numpy(params, inputs, targets, h0)[1]
    with pytest.raises(ValueError, match="k \\(truncation length\\) must be a positive integer"):
        rnn_backward_numpy(cache, k=0)
    with pytest.raises(TypeError, match="cache"):
        rnn_backward_numpy({"loss": 1.0})


def test_jacobian_clip_and_language_model_errors():
    with pytest.raises(ValueError, match="square"):
        hidden_state_jacobian_norms(np.zeros((2, 3)), 4)
    with pytest.raises(ValueError, match="input_terms must have shape"):
        hidden_state_jacobian_norms(np.eye(2), 4, input_terms=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="activation"):
        hidden_state_jacobian_norms(np.eye(2), 4, "sigmoid")
    parameter = torch.zeros(3, requires_grad=True)
    parameter.grad = torch.ones(3)
    for bad in (0.0, -1.0, float("inf"), "1"):
        with pytest.raises(ValueError, match="max_norm must be a positive finite number"):
            clip_grad_norm([parameter], bad)
    parameter.grad = torch.tensor([float("inf"), 0.0, 0.0])
    with pytest.raises(RuntimeError, match="total gradient norm is inf"):
        clip_grad_norm([parameter], 1.0, error_if_nonfinite=True)

    model = RecurrentLM(5, RNN(2, 3))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, vocab_size\) = \[0, 5\)"):
        model(torch.tensor([[0, 5]]))
    with pytest.raises(TypeError, match="integer tensor"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        model(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="cell must be one of"):
        recurrent_layer("transformer", 2, 3)
    with pytest.raises(TypeError, match="layer must be a RecurrentLayer"):
        RecurrentLM(5, nn.RNN(2, 3))
