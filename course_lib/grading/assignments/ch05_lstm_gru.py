"""Chapter 5 exercises: the LSTM and the GRU, gate by gate, in NumPy.

Inputs are float64 NumPy arrays from seeded generators, so the cases are the same on every run.
The references are :mod:`course_lib.lstm`'s PyTorch modules, loaded with the case's weights: the
book's matrices ``W_A .. W_D``, which multiply ``[h_{t-1}, i_t]``, are cut into PyTorch's
``weight_ih`` / ``weight_hh`` chunks (order i, f, g, o = B, A, Ĉ, D) on the way in, so every LSTM
case also checks that mapping. The gradient item's reference is autograd.
"""
from __future__ import annotations

import numpy as np
import torch

from course_lib import lstm, rnn
from course_lib.grading.cases import Assignment, Case, graded_item
from course_lib.grading.seeded import float64_tensor, normal_array, seeded_rng
from course_lib.grading.policies import (
    AUTOGRAD, EXACT, FLOAT64_REORDERED, RECURRENT_LAYERS, RELATIVE_ONLY,
)
from course_lib.lstm import LSTM_GATES

GRU_NAMES = ("W_ir", "W_iz", "W_in", "W_hr", "W_hz", "W_hn", "b_ir", "b_iz", "b_in", "b_hr", "b_hz", "b_hn")


def lstm_params(d_in: int, d_hidden: int, seed: int, scale: float = 0.5,
                forget_bias: float = 0.0) -> dict[str, np.ndarray]:
    """The book's LSTM weights: ``W_X (d_hidden, d_hidden + d_in)`` on ``[h, i]`` and ``b_X (d_hidden,)``."""
    rng = seeded_rng(seed)
    params = {}
    for gate in LSTM_GATES:
        params[f"W_{gate}"] = rng.normal(0.0, scale, (d_hidden, d_hidden + d_in))
        params[f"b_{gate}"] = rng.normal(0.0, scale, d_hidden)
    params["b_A"] = params["b_A"] + forget_bias
    return params


def gru_params(d_in: int, d_hidden: int, seed: int, scale: float = 0.5) -> dict[str, np.ndarray]:
    """GRU weights in PyTorch's convention: ``W_i* (d_hidden, d_in)``, ``W_h* (d_hidden, d_hidden)``, biases."""
    rng = seeded_rng(seed)
    shapes = {"i": (d_hidden, d_in), "h": (d_hidden, d_hidden)}
    params = {}
    for name in GRU_NAMES:
        shape = shapes[name[2]] if name.startswith("W") else (d_hidden,)
        params[name] = rng.normal(0.0, scale, shape)
    return params


def lstm_state_dict(d_in: int, d_hidden: int, seed: int, scale: float = 0.5) -> dict[str, np.ndarray]:
    """An ``nn.LSTM`` layer's weights as NumPy arrays, with PyTorch's names and shapes."""
    rng = seeded_rng(seed)
    return {
        "weight_ih_l0": rng.normal(0.0, scale, (4 * d_hidden, d_in)),
        "weight_hh_l0": rng.normal(0.0, scale, (4 * d_hidden, d_hidden)),
        "bias_ih_l0": rng.normal(0.0, scale, 4 * d_hidden),
        "bias_hh_l0": rng.normal(0.0, scale, 4 * d_hidden),
    }


def book_to_pytorch(params: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The book's ``W_A .. W_D, b_A .. b_D`` as a float64 ``nn.LSTMCell`` state dict."""
    return lstm.lstm_book_to_pytorch({name: float64_tensor(value) for name, value in params.items()})


def _lstm_cell(params: dict[str, np.ndarray]) -> lstm.LSTMCell:
    H, width = params["W_A"].shape
    with torch.random.fork_rng(devices=[]):  # leave the caller's generator as it was (check runs in a kernel)
        cell = lstm.LSTMCell(width - H, H).double()
    cell.load_state_dict(book_to_pytorch(params))
    return cell


# --------------------------------------------------------------------------- references


def lstm_cell_forward_reference(i_t, h_prev, C_prev, params) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        h, C = _lstm_cell(params)(float64_tensor(i_t), (float64_tensor(h_prev), float64_tensor(C_prev)))
    return h.numpy(), C.numpy()


def gru_cell_forward_reference(x_t, h_prev, params) -> np.ndarray:
    H, d_in = params["W_ir"].shape
    with torch.random.fork_rng(devices=[]):
        cell = lstm.GRUCell(d_in, H).double()
    cell.load_state_dict(lstm.gru_book_to_pytorch({name: float64_tensor(value) for name, value in params.items()}))
    with torch.no_grad():
        return cell(float64_tensor(x_t), float64_tensor(h_prev)).numpy()


def parameter_counts_reference(d_in: int, d_hidden: int, num_layers: int) -> dict[str, int]:
    return {
        "rnn": rnn.rnn_parameter_count(d_in, d_hidden, num_layers),
        "lstm": lstm.lstm_parameter_count(d_in, d_hidden, num_layers),
        "gru": lstm.gru_parameter_count(d_in, d_hidden, num_layers),
    }


def cell_state_gradient_reference(inputs, h_0, C_0, params) -> np.ndarray:
    """``∂C_T/∂C_0`` along the memory cell, by autograd.

    Each step reads ``h_{t-1}`` detached, so the gates are constants for the derivative and the
    only path from ``C_0`` to ``C_T`` is the cell's own update. Its Jacobian is then diagonal, and
    the gradient of ``sum(C_T)`` with respect to ``C_0`` is that diagonal, one row per example.
    """
    cell = _lstm_cell(params)
    C_0 = float64_tensor(C_0).clone().requires_grad_(True)
    h, C = float64_tensor(h_0), C_0
    for i_t in float64_tensor(inputs).unbind(dim=1):
        h, C = cell(i_t, (h.detach(), C))
    (gradient,) = torch.autograd.grad(C.sum(), C_0)
    return gradient.numpy()


def lstm_layer_forward_reference(inputs, state_dict, h_0, C_0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    four_H, d_in = state_dict["weight_ih_l0"].shape
    with torch.random.fork_rng(devices=[]):
        layer = lstm.LSTM(d_in, four_H // 4).double()
    layer.load_state_dict({name: float64_tensor(value) for name, value in state_dict.items()})
    with torch.no_grad():
        outputs, (h_T, C_T) = layer(float64_tensor(inputs), (float64_tensor(h_0)[None], float64_tensor(C_0)[None]))
    return outputs.numpy(), h_T[0].numpy(), C_T[0].numpy()


# --------------------------------------------------------------------------- cases


def _lstm_cell_cases() -> list[Case]:
    return [
        Case("one example; d_in = 2, d_hidden = 3",
             {"i_t": normal_array(50, 1, 2), "h_prev": normal_array(51, 1, 3), "C_prev": normal_array(52, 1, 3),
              "params": lstm_params(2, 3, seed=53)}),
        Case("a batch of 4; d_in = 5, d_hidden = 6",
             {"i_t": normal_array(54, 4, 5), "h_prev": normal_array(55, 4, 6), "C_prev": normal_array(56, 4, 6),
              "params": lstm_params(5, 6, seed=57)}),
        Case("d_in != d_hidden, so [h, i] must put h first: d_in = 7, d_hidden = 2",
             {"i_t": normal_array(58, 3, 7), "h_prev": normal_array(59, 3, 2), "C_prev": normal_array(60, 3, 2),
              "params": lstm_params(7, 2, seed=61)}),
        Case("a large forget bias keeps C_prev, and a large C_prev shows it",
             {"i_t": normal_array(62, 2, 3), "h_prev": normal_array(63, 2, 4), "C_prev": normal_array(64, 2, 4, scale=5.0),
              "params": lstm_params(3, 4, seed=65, forget_bias=4.0)}),
    ]


def _gru_cell_cases() -> list[Case]:
    return [
        Case("one example; d_in = 2, d_hidden = 3",
             {"x_t": normal_array(70, 1, 2), "h_prev": normal_array(71, 1, 3), "params": gru_params(2, 3, seed=72)}),
        Case("a batch of 5; d_in = 4, d_hidden = 6",
             {"x_t": normal_array(73, 5, 4), "h_prev": normal_array(74, 5, 6), "params": gru_params(4, 6, seed=75)}),
        Case("b_hn sits inside r_t * (W_hn h + b_hn): a large b_hn shows where it goes",
             {"x_t": normal_array(76, 3, 3), "h_prev": normal_array(77, 3, 2),
              "params": {**gru_params(3, 2, seed=78), "b_hn": np.array([3.0, -3.0])}}),
        Case("d_in = 7, d_hidden = 2",
             {"x_t": normal_array(79, 2, 7), "h_prev": normal_array(80, 2, 2), "params": gru_params(7, 2, seed=81)}),
    ]


def _parameter_count_cases() -> list[Case]:
    return [
        Case("d_in = 1, d_hidden = 1, one layer", {"d_in": 1, "d_hidden": 1, "num_layers": 1}),
        Case("this chapter's LSTM: d_in = 64, d_hidden = 128", {"d_in": 64, "d_hidden": 128, "num_layers": 1}),
        Case("two layers: the second reads d_hidden inputs", {"d_in": 10, "d_hidden": 20, "num_layers": 2}),
        Case("three layers, d_in > d_hidden", {"d_in": 300, "d_hidden": 50, "num_layers": 3}),
        Case("one layer, d_in = 512, d_hidden = 1024", {"d_in": 512, "d_hidden": 1024, "num_layers": 1}),
    ]


def _gradient_cases() -> list[Case]:
    return [
        Case("one step: the diagonal of ∂C_t/∂C_(t-1)",
             {"inputs": normal_array(90, 2, 1, 3), "h_0": normal_array(91, 2, 4), "C_0": normal_array(92, 2, 4),
              "params": lstm_params(3, 4, seed=93)}),
        Case("five steps, a batch of 3",
             {"inputs": normal_array(94, 3, 5, 2), "h_0": normal_array(95, 3, 3), "C_0": normal_array(96, 3, 3),
              "params": lstm_params(2, 3, seed=97)}),
        Case("30 steps with forget bias +4: the gradient survives",
             {"inputs": normal_array(98, 2, 30, 3), "h_0": np.zeros((2, 5)), "C_0": np.zeros((2, 5)),
              "params": lstm_params(3, 5, seed=99, forget_bias=4.0)}),
        Case("30 steps with forget bias -2: the gradient vanishes (values near 1e-30 count)",
             {"inputs": normal_array(100, 1, 30, 3), "h_0": np.zeros((1, 2)), "C_0": np.zeros((1, 2)),
              "params": lstm_params(3, 2, seed=101, forget_bias=-2.0)}),
    ]


def _layer_cases() -> list[Case]:
    return [
        Case("one sequence of 1 step; d_in = 2, d_hidden = 3",
             {"inputs": normal_array(110, 1, 1, 2), "state_dict": lstm_state_dict(2, 3, seed=111),
              "h_0": np.zeros((1, 3)), "C_0": np.zeros((1, 3))}),
        Case("a batch of 3 sequences of 6 steps, zero initial state",
             {"inputs": normal_array(112, 3, 6, 4), "state_dict": lstm_state_dict(4, 5, seed=113),
              "h_0": np.zeros((3, 5)), "C_0": np.zeros((3, 5))}),
        Case("a given initial state (h_0, C_0)",
             {"inputs": normal_array(114, 2, 4, 3), "state_dict": lstm_state_dict(3, 2, seed=115),
              "h_0": normal_array(116, 2, 2), "C_0": normal_array(117, 2, 2)}),
        Case("20 steps, d_in = 1, d_hidden = 4",
             {"inputs": normal_array(118, 2, 20, 1), "state_dict": lstm_state_dict(1, 4, seed=119),
              "h_0": np.zeros((2, 4)), "C_0": normal_array(120, 2, 4)}),
    ]


ASSIGNMENT = Assignment(
    name="ch05", title="Chapter 5: LSTM and GRU",
    case_sets=(
        graded_item("ch05.lstm_cell_forward", points=2, make_cases=_lstm_cell_cases,
                    reference=lstm_cell_forward_reference, tolerance=FLOAT64_REORDERED,
                    forbidden=RECURRENT_LAYERS,
                    hint="""Every gate reads the previous hidden state stacked on the input, hidden state
                            first; the new cell mixes the old cell and the candidate. See "A memory cell
                            beside the hidden state" in Chapter 5."""),
        graded_item("ch05.gru_cell_forward", points=2, make_cases=_gru_cell_cases,
                    reference=gru_cell_forward_reference, tolerance=FLOAT64_REORDERED,
                    forbidden=RECURRENT_LAYERS,
                    hint="""The reset gate scales the whole hidden term of the candidate, its bias included;
                            the update gate weighs the old state against the candidate. See "The GRU" in
                            Chapter 5."""),
        graded_item("ch05.parameter_counts", points=2, make_cases=_parameter_count_cases,
                    reference=parameter_counts_reference, tolerance=EXACT, forbidden=RECURRENT_LAYERS,
                    hint="""Count the weight blocks of each kind of layer, and what one block holds; a layer
                            above the first reads the outputs of the layer below. See "Counting parameters"
                            in Chapter 5."""),
        graded_item("ch05.cell_state_gradient", points=2, make_cases=_gradient_cases,
                    reference=cell_state_gradient_reference,
                    tolerance=RELATIVE_ONLY,  # the vanishing case's answers are ~1e-30
                    forbidden=RECURRENT_LAYERS + AUTOGRAD,
                    hint="""Along the memory cell, one step's derivative involves no weight matrix; run the
                            cell forward to know what it is at each step. See "The gradient highway" in
                            Chapter 5."""),
        graded_item("ch05.lstm_layer_forward", points=2, make_cases=_layer_cases,
                    reference=lstm_layer_forward_reference, tolerance=FLOAT64_REORDERED,
                    forbidden=RECURRENT_LAYERS,
                    hint="""Mind the order of PyTorch's four stacked blocks, its two biases, and which state
                            the answer returns at every step. See "From scratch, and fused" in Chapter 5."""),
    ),
    reference_modules=("course_lib.lstm", "course_lib.rnn"),
)
