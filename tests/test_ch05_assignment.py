"""Chapter 5's graded items: the references agree with PyTorch's own modules, the mistakes the
chapter warns about fail, and a wrong answer loses the points of its own item only (full marks for
the solution and zero for the exercise are checked for every assignment in test_assignments.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from assignment_notebooks import (
    assert_declares, assert_only_item_lost, assert_random_numbers_untouched, solution_variant,
)
from course_lib.grading.assignments import ch05_lstm_gru as ch05
from course_lib.grading.cases import judge, load_assignment
from course_lib.grading.execution import call_case
from course_lib.grading.runner import grade_notebook

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "ch05_lstm_gru.ipynb"
ASSIGNMENT = load_assignment("ch05")


def torch64(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array, dtype=np.float64))


# ------------------------------------------------------------------ the case sets themselves

def test_the_assignment_is_discovered_with_five_items_worth_ten_points():
    assert ASSIGNMENT is ch05.ASSIGNMENT
    assert_declares(
        ASSIGNMENT,
        ["lstm_cell_forward", "gru_cell_forward", "parameter_counts", "cell_state_gradient", "lstm_layer_forward"],
        reference_modules={"course_lib.lstm", "course_lib.rnn"}, max_points=10)
    for item in ASSIGNMENT.case_sets:
        assert {"torch.nn.LSTM", "torch.nn.LSTMCell", "torch.nn.GRU", "torch.nn.GRUCell"} <= set(item.forbidden)


def test_the_lstm_cell_reference_equals_nn_lstmcell_given_the_books_weights_cut_by_hand():
    for case in ch05._lstm_cell_cases():
        params = case.kwargs["params"]
        H = params["W_A"].shape[0]
        cell = torch.nn.LSTMCell(params["W_A"].shape[1] - H, H).double()
        order = ("B", "A", "C", "D")  # nn.LSTMCell's chunks i, f, g, o
        with torch.no_grad():
            cell.weight_hh.copy_(torch.cat([torch64(params[f"W_{g}"][:, :H]) for g in order]))
            cell.weight_ih.copy_(torch.cat([torch64(params[f"W_{g}"][:, H:]) for g in order]))
            cell.bias_ih.copy_(torch.cat([torch64(params[f"b_{g}"]) for g in order]))
            cell.bias_hh.zero_()
            h, C = cell(torch64(case.kwargs["i_t"]), (torch64(case.kwargs["h_prev"]), torch64(case.kwargs["C_prev"])))
        h_ref, C_ref = ch05.lstm_cell_forward_reference(**case.kwargs)
        np.testing.assert_allclose(h_ref, h.numpy(), rtol=1e-12, atol=1e-14, err_msg=case.label)
        np.testing.assert_allclose(C_ref, C.numpy(), rtol=1e-12, atol=1e-14, err_msg=case.label)


def test_the_gru_cell_reference_equals_nn_grucell():
    for case in ch05._gru_cell_cases():
        p = case.kwargs["params"]
        H, d_in = p["W_ir"].shape
        cell = torch.nn.GRUCell(d_in, H).double()
        with torch.no_grad():
            cell.weight_ih.copy_(torch64(np.concatenate([p["W_ir"], p["W_iz"], p["W_in"]])))
            cell.weight_hh.copy_(torch64(np.concatenate([p["W_hr"], p["W_hz"], p["W_hn"]])))
            cell.bias_ih.copy_(torch64(np.concatenate([p["b_ir"], p["b_iz"], p["b_in"]])))
            cell.bias_hh.copy_(torch64(np.concatenate([p["b_hr"], p["b_hz"], p["b_hn"]])))
            expected = cell(torch64(case.kwargs["x_t"]), torch64(case.kwargs["h_prev"])).numpy()
        np.testing.assert_allclose(ch05.gru_cell_forward_reference(**case.kwargs), expected, rtol=1e-12,
                                   atol=1e-14, err_msg=case.label)


def test_the_parameter_counts_are_what_pytorchs_modules_hold():
    for case in ch05._parameter_count_cases():
        args = (case.kwargs["d_in"], case.kwargs["d_hidden"], case.kwargs["num_layers"])
        modules = {"rnn": torch.nn.RNN(*args, device="meta"), "lstm": torch.nn.LSTM(*args, device="meta"),
                   "gru": torch.nn.GRU(*args, device="meta")}
        counted = {name: sum(p.numel() for p in module.parameters()) for name, module in modules.items()}
        assert ch05.parameter_counts_reference(**case.kwargs) == counted, case.label


def test_the_highway_reference_is_the_product_of_the_forget_gates():
    """The autograd reference against the formula the chapter derives, ∏_t A_t, computed by hand."""
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    for case in ch05._gradient_cases():
        inputs, p = case.kwargs["inputs"], case.kwargs["params"]
        h, C = case.kwargs["h_0"], case.kwargs["C_0"]
        product = np.ones_like(C)
        for t in range(inputs.shape[1]):
            z = np.concatenate([h, inputs[:, t]], axis=1)
            A, B = sigmoid(z @ p["W_A"].T + p["b_A"]), sigmoid(z @ p["W_B"].T + p["b_B"])
            C = A * C + B * np.tanh(z @ p["W_C"].T + p["b_C"])
            h = sigmoid(z @ p["W_D"].T + p["b_D"]) * np.tanh(C)
            product *= A
        np.testing.assert_allclose(ch05.cell_state_gradient_reference(**case.kwargs), product, rtol=1e-10,
                                   atol=0, err_msg=case.label)
    survives, vanishes = ch05._gradient_cases()[2:]
    assert ch05.cell_state_gradient_reference(**survives.kwargs).min() > 0.1
    assert ch05.cell_state_gradient_reference(**vanishes.kwargs).max() < 1e-15


def test_the_layer_reference_equals_nn_lstm():
    for case in ch05._layer_cases():
        state_dict = case.kwargs["state_dict"]
        four_H, d_in = state_dict["weight_ih_l0"].shape
        layer = torch.nn.LSTM(d_in, four_H // 4, batch_first=True).double()
        layer.load_state_dict({name: torch64(value) for name, value in state_dict.items()})
        with torch.no_grad():
            outputs, (h_T, C_T) = layer(torch64(case.kwargs["inputs"]),
                                        (torch64(case.kwargs["h_0"])[None], torch64(case.kwargs["C_0"])[None]))
        expected = (outputs.numpy(), h_T[0].numpy(), C_T[0].numpy())
        for got, want in zip(ch05.lstm_layer_forward_reference(**case.kwargs), expected):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=case.label)


def test_the_references_do_not_disturb_the_callers_random_numbers():
    assert_random_numbers_untouched(
        (ch05.lstm_cell_forward_reference, ch05._lstm_cell_cases()[0]),
        (ch05.gru_cell_forward_reference, ch05._gru_cell_cases()[0]),
        (ch05.lstm_layer_forward_reference, ch05._layer_cases()[0]),
    )


def test_the_mistakes_the_chapter_warns_about_fail_their_cases():
    """[i, h] instead of [h, i]; b_hn outside the reset gate; the forget gate of one step only."""
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731

    def input_first(i_t, h_prev, C_prev, params):
        swapped = {name: (np.roll(W, -h_prev.shape[1], axis=1) if name.startswith("W") else W)
                   for name, W in params.items()}  # columns of i first: the right answer for [i, h]
        return ch05.lstm_cell_forward_reference(i_t, h_prev, C_prev, swapped)

    def bias_outside_reset(x_t, h_prev, params):
        p = dict(params)
        r = sigmoid(x_t @ p["W_ir"].T + p["b_ir"] + h_prev @ p["W_hr"].T + p["b_hr"])
        z = sigmoid(x_t @ p["W_iz"].T + p["b_iz"] + h_prev @ p["W_hz"].T + p["b_hz"])
        n = np.tanh(x_t @ p["W_in"].T + p["b_in"] + r * (h_prev @ p["W_hn"].T) + p["b_hn"])
        return (1 - z) * n + z * h_prev

    def last_forget_gate_only(inputs, h_0, C_0, params):
        return ch05.cell_state_gradient_reference(inputs[:, :1], h_0, C_0, params)

    for name, wrong in (("lstm_cell_forward", input_first), ("gru_cell_forward", bias_outside_reset),
                        ("cell_state_gradient", last_forget_gate_only)):
        item = ASSIGNMENT.case_set(name)
        cases = item.cases()
        result = judge(item, cases, [call_case(wrong, case.kwargs) for case in cases])
        assert result.points < item.points, name


# ------------------------------------------------------------------ grading the notebooks

def test_wrong_answers_lose_exactly_the_points_of_their_item(tmp_path):
    swapped_gates = solution_variant(SOLUTION, tmp_path, "swapped_gates",
                                     "i, f, g, o = np.split(", "f, i, g, o = np.split(")
    uses_nn_gru_cell = solution_variant(
        SOLUTION, tmp_path, "uses_nn_gru_cell", "    ### BEGIN SOLUTION\n    r = sigmoid(",
        "    ### BEGIN SOLUTION\n    import torch\n    torch.nn.GRUCell(1, 1)\n    r = sigmoid(")
    for path, item, reason in ((swapped_gates, "ch05.lstm_layer_forward", None),
                               (uses_nn_gru_cell, "ch05.gru_cell_forward", "forbidden API: torch.nn.GRUCell")):
        assert_only_item_lost(grade_notebook(path), ASSIGNMENT, item, reason)
