"""Chapter 4 exercises: the recurrent network, backpropagation through time, and gradient clipping.

Every item works on NumPy float64 arrays drawn from a seeded generator, so the cases are the same on
every run and the tolerances can be tight. The references are :mod:`course_lib.rnn`: the PyTorch
modules ``RNNCell`` and ``RNN`` (run in float64 on the given weights), the hand-written BPTT
``rnn_backward_numpy``, ``hidden_state_jacobian_norms`` and ``clip_grad_norm``.
"""
from __future__ import annotations

import numpy as np
import torch

from course_lib import rnn
from course_lib.grading.cases import Assignment, Case, graded_item
from course_lib.grading.compare import Tolerance
from course_lib.grading.policies import (
    AUTOGRAD, CLIPPING, FLOAT64_SAME_ORDER, RECURRENT_LAYERS, RELATIVE_ONLY,
)



def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_weights(d_in: int, d_hidden: int, seed: int, scale: float = 0.5) -> dict[str, np.ndarray]:
    """``W_hi (d_hidden, d_in)``, ``W_hh (d_hidden, d_hidden)``, ``b_h (d_hidden,)``, Gaussian times ``scale``."""
    rng = _rng(seed)
    return {"W_hi": scale * rng.standard_normal((d_hidden, d_in)),
            "W_hh": scale * rng.standard_normal((d_hidden, d_hidden)),
            "b_h": scale * rng.standard_normal(d_hidden)}


# --------------------------------------------------------------------------- references


def _layer_with(module: torch.nn.Module, W_hi: np.ndarray, W_hh: np.ndarray, b_h: np.ndarray,
                suffix: str) -> torch.nn.Module:
    """``module`` in float64 holding the book's weights; PyTorch's second bias is zero (b_h = b_ih + b_hh)."""
    module = module.double()
    with torch.no_grad():
        getattr(module, f"weight_ih{suffix}").copy_(torch.from_numpy(np.asarray(W_hi, dtype=np.float64)))
        getattr(module, f"weight_hh{suffix}").copy_(torch.from_numpy(np.asarray(W_hh, dtype=np.float64)))
        getattr(module, f"bias_ih{suffix}").copy_(torch.from_numpy(np.asarray(b_h, dtype=np.float64)))
        getattr(module, f"bias_hh{suffix}").zero_()
    return module


def rnn_cell_reference(i_t: np.ndarray, h_prev: np.ndarray, W_hi: np.ndarray, W_hh: np.ndarray,
                       b_h: np.ndarray) -> np.ndarray:
    d_hidden, d_in = np.shape(W_hi)
    with torch.random.fork_rng(devices=[]):  # leave the caller's generator as it was (check runs in a kernel)
        cell = _layer_with(rnn.RNNCell(d_in, d_hidden), W_hi, W_hh, b_h, "")
    with torch.no_grad():
        return cell(torch.from_numpy(i_t), torch.from_numpy(h_prev)).numpy()


def rnn_forward_reference(inputs: np.ndarray, h0: np.ndarray, W_hi: np.ndarray, W_hh: np.ndarray,
                          b_h: np.ndarray) -> np.ndarray:
    d_hidden, d_in = np.shape(W_hi)
    with torch.random.fork_rng(devices=[]):
        layer = _layer_with(rnn.RNN(d_in, d_hidden), W_hi, W_hh, b_h, "_l0")
    with torch.no_grad():
        hidden_states, _ = layer(torch.from_numpy(inputs), torch.from_numpy(h0)[None])
    return hidden_states.numpy()


def grad_W_hh_reference(inputs: np.ndarray, targets: np.ndarray, h: np.ndarray, p: np.ndarray,
                        W_hh: np.ndarray, W_oh: np.ndarray) -> np.ndarray:
    """``dL/dW_hh`` by :func:`course_lib.rnn.rnn_backward_numpy` from the forward cache."""
    d_hidden, d_out, d_in = W_hh.shape[0], W_oh.shape[0], inputs.shape[1]
    params = {"W_hi": np.zeros((d_hidden, d_in)), "W_hh": W_hh, "b_h": np.zeros(d_hidden),
              "W_oh": W_oh, "b_o": np.zeros(d_out)}  # the backward pass reads W_hh and W_oh only
    cache = {"params": params, "inputs": inputs, "targets": targets, "h": h, "p": p, "activation": "tanh"}
    return rnn.rnn_backward_numpy(cache)["W_hh"]


def jacobian_norms_reference(W_hh: np.ndarray, h0: np.ndarray, input_terms: np.ndarray) -> np.ndarray:
    return rnn.hidden_state_jacobian_norms(W_hh, len(input_terms), "tanh", h0=h0, input_terms=input_terms)


def clip_by_global_norm_reference(grads: list[np.ndarray], max_norm: float) -> tuple[list[np.ndarray], float]:
    parameters = []
    for grad in grads:
        parameter = torch.zeros(np.shape(grad), dtype=torch.float64, requires_grad=True)
        parameter.grad = torch.tensor(np.array(grad, dtype=np.float64))
        parameters.append(parameter)
    total_norm = rnn.clip_grad_norm(parameters, max_norm)
    return [parameter.grad.numpy() for parameter in parameters], float(total_norm)


# --------------------------------------------------------------------------- cases


def _cell_cases() -> list[Case]:
    rng = _rng(40)
    return [
        Case("one example: d_in = 3, d_hidden = 4",
             {"i_t": rng.standard_normal((1, 3)), "h_prev": rng.standard_normal((1, 4)),
              **random_weights(3, 4, seed=41)}),
        Case("a batch of 5 examples: d_in = 2, d_hidden = 6",
             {"i_t": rng.standard_normal((5, 2)), "h_prev": np.tanh(rng.standard_normal((5, 6))),
              **random_weights(2, 6, seed=42)}),
        Case("a zero previous state: only the input and the bias count",
             {"i_t": rng.standard_normal((3, 4)), "h_prev": np.zeros((3, 5)), **random_weights(4, 5, seed=43)}),
        Case("large weights: tanh saturates near -1 and +1",
             {"i_t": rng.standard_normal((2, 3)), "h_prev": rng.standard_normal((2, 3)),
              **random_weights(3, 3, seed=44, scale=8.0)}),
        Case("d_hidden differs from d_in, and W_hh is not symmetric: (4, 7) inputs, 2 units",
             {"i_t": rng.standard_normal((4, 7)), "h_prev": rng.standard_normal((4, 2)),
              **random_weights(7, 2, seed=45)}),
    ]


def _forward_cases() -> list[Case]:
    rng = _rng(50)
    return [
        Case("one step: (batch, time, d_in) = (1, 1, 2), d_hidden = 3",
             {"inputs": rng.standard_normal((1, 1, 2)), "h0": np.zeros((1, 3)), **random_weights(2, 3, seed=51)}),
        Case("a batch of 3 sequences of 7 steps, zero start state",
             {"inputs": rng.standard_normal((3, 7, 4)), "h0": np.zeros((3, 5)), **random_weights(4, 5, seed=52)}),
        Case("a non-zero start state h_0 changes every later state",
             {"inputs": rng.standard_normal((2, 5, 3)), "h0": np.tanh(rng.standard_normal((2, 4))),
              **random_weights(3, 4, seed=53)}),
        Case("40 steps: (2, 40, 3) inputs, d_hidden = 6",
             {"inputs": rng.standard_normal((2, 40, 3)), "h0": np.zeros((2, 6)),
              **random_weights(3, 6, seed=54, scale=0.4)}),
    ]


def _bptt_case(label: str, T: int, d_in: int, d_hidden: int, d_out: int, seed: int, h0_zero: bool = False) -> Case:
    rng = _rng(seed)
    params = {name: 2.0 * value for name, value in rnn.rnn_params_numpy(d_in, d_hidden, d_out, seed=seed).items()}
    inputs = rng.standard_normal((T, d_in))
    targets = rng.integers(0, d_out, size=T)
    h0 = np.zeros(d_hidden) if h0_zero else np.tanh(rng.standard_normal(d_hidden))
    _, cache = rnn.rnn_forward_numpy(params, inputs, targets, h0=h0)
    return Case(label, {"inputs": inputs, "targets": targets, "h": cache["h"], "p": cache["p"],
                        "W_hh": params["W_hh"], "W_oh": params["W_oh"]})


def _bptt_cases() -> list[Case]:
    return [
        _bptt_case("one step (T = 1): only h_0 multiplies the error", 1, 2, 3, 4, seed=60),
        _bptt_case("T = 4, d_in = 3, d_hidden = 4, d_out = 5", 4, 3, 4, 5, seed=61),
        _bptt_case("T = 6 from a zero start state: the first step adds nothing", 6, 2, 3, 3, seed=62, h0_zero=True),
        _bptt_case("T = 15, d_hidden = 6, d_out = 7: errors reach back through many steps", 15, 4, 6, 7, seed=63),
    ]


def _jacobian_case(label: str, T: int, d_hidden: int, radius: float, seed: int, input_scale: float = 0.5) -> Case:
    rng = _rng(seed)
    W_hh = rng.standard_normal((d_hidden, d_hidden))
    W_hh *= radius / np.max(np.abs(np.linalg.eigvals(W_hh)))
    return Case(label, {"W_hh": W_hh, "h0": input_scale * rng.standard_normal(d_hidden),
                        "input_terms": input_scale * rng.standard_normal((T, d_hidden))})


def _jacobian_cases() -> list[Case]:
    return [
        _jacobian_case("T = 1: the norms of I and of diag(1 - h_1^2) W_hh", 1, 3, 0.9, seed=70),
        _jacobian_case("one unit (d_hidden = 1): a product of numbers", 8, 1, 1.2, seed=71),
        _jacobian_case("T = 12, spectral radius 0.8: the norms fade", 12, 5, 0.8, seed=72),
        _jacobian_case("T = 30, spectral radius 3: saturated steps shrink the norms, small early states grow them",
                       30, 6, 3.0, seed=73, input_scale=0.001),
    ]


def _clipping_cases() -> list[Case]:
    rng = _rng(80)
    return [
        Case("one gradient of norm 5 clipped to 1",
             {"grads": [np.array([3.0, 4.0])], "max_norm": 1.0}),
        Case("three gradients of different shapes, clipped together to norm 2",
             {"grads": [rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((2, 2, 2))],
              "max_norm": 2.0}),
        Case("a total norm below max_norm: nothing changes",
             {"grads": [0.01 * rng.standard_normal((2, 3)), 0.01 * rng.standard_normal(5)], "max_norm": 10.0}),
        Case("an exploding gradient (norm ~ 1e6) clipped to 0.5: the direction is kept",
             {"grads": [1e5 * rng.standard_normal((6, 6)), 1e5 * rng.standard_normal(6)], "max_norm": 0.5}),
        Case("all gradients zero: the norm is 0 and nothing changes",
             {"grads": [np.zeros((2, 2)), np.zeros(3)], "max_norm": 1.0}),
    ]


# Unique to clipping, so defined here: the 1e-6 in the scale changes it by a relative 1e-6 / norm;
# a clipped answer without it still passes,
# and only the all-zero case (a division by zero) tells them apart.
CLIPPED_SCALE = Tolerance(rtol=1e-5, atol=1e-12)

ASSIGNMENT = Assignment(
    name="ch04", title="Chapter 4: recurrent networks and backpropagation through time",
    case_sets=(
        graded_item("ch04.rnn_cell", points=2, make_cases=_cell_cases, reference=rnn_cell_reference,
                    tolerance=FLOAT64_SAME_ORDER, forbidden=RECURRENT_LAYERS,
                    hint="""The input and the previous state each go through their own matrix; with one
                            example per row, check which side each matrix multiplies from. See "The
                            recurrent network" in Chapter 4."""),
        graded_item("ch04.rnn_forward", points=2, make_cases=_forward_cases,
                    reference=rnn_forward_reference, tolerance=FLOAT64_SAME_ORDER,
                    forbidden=RECURRENT_LAYERS,
                    hint="""Each step starts from the state the step before produced; the answer holds h_1
                            to h_T, time on the second axis. See "The recurrent network" in Chapter 4."""),
        graded_item("ch04.grad_W_hh", points=2, make_cases=_bptt_cases, reference=grad_W_hh_reference,
                    tolerance=FLOAT64_SAME_ORDER, forbidden=AUTOGRAD,
                    hint="""Walk backwards in time: a state gets error from its own output and from the step
                            after it, and W_hh collects a term at every step. See "Backpropagation through
                            time" in Chapter 4."""),
        graded_item("ch04.jacobian_norms", points=2, make_cases=_jacobian_cases,
                    reference=jacobian_norms_reference, tolerance=RELATIVE_ONLY, forbidden=AUTOGRAD,
                    hint="""The Jacobian needs every step's tanh slope, so run the recurrence forward first;
                            the product then grows from the last step backwards. See "Vanishing and
                            exploding gradients" in Chapter 4."""),
        graded_item("ch04.clip_by_global_norm", points=2, make_cases=_clipping_cases,
                    reference=clip_by_global_norm_reference, tolerance=CLIPPED_SCALE, forbidden=CLIPPING,
                    hint="""One norm measures all the gradients together, and one factor scales them all;
                            small gradients stay as they are. See "Gradient-norm clipping" in Chapter 4."""),
    ),
    reference_modules=("course_lib.rnn", "course_lib.lstm"),
)
