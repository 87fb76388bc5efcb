"""Chapter 4's graded items: the references pass their own cases and agree with PyTorch and autograd,
and a wrong answer loses the points of its own item (full marks and zero: test_assignments.py)."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.grading.assignments import ch04_rnn as ch04
from course_lib.grading.cases import judge, load_assignment
from course_lib.grading.execution import call_case
from course_lib.grading.runner import grade_notebook

from assignment_notebooks import assert_declares, assert_only_item_lost, points, solution_variant

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "ch04_rnn.ipynb"
ASSIGNMENT = load_assignment("ch04")


variant = partial(solution_variant, SOLUTION)


def run_item(name: str, function) -> object:
    case_set = ASSIGNMENT.case_set(name)
    cases = case_set.cases()
    return judge(case_set, cases, [call_case(function, case.kwargs) for case in cases])


def torch_layer(module: torch.nn.Module, W_hi, W_hh, b_h, suffix: str) -> torch.nn.Module:
    """PyTorch's own module in float64 with the book's weights (b_h all in bias_ih)."""
    module = module.double()
    with torch.no_grad():
        getattr(module, f"weight_ih{suffix}").copy_(torch.from_numpy(W_hi))
        getattr(module, f"weight_hh{suffix}").copy_(torch.from_numpy(W_hh))
        getattr(module, f"bias_ih{suffix}").copy_(torch.from_numpy(b_h))
        getattr(module, f"bias_hh{suffix}").zero_()
    return module


# ------------------------------------------------------------------ the case sets themselves

def test_the_assignment_is_discovered_with_five_items_worth_ten_points():
    assert ASSIGNMENT is ch04.ASSIGNMENT
    assert_declares(ASSIGNMENT, ["rnn_cell", "rnn_forward", "grad_W_hh", "jacobian_norms", "clip_by_global_norm"],
                    reference_modules={"course_lib.rnn", "course_lib.lstm"}, max_points=10)
    forbidden = {name for item in ASSIGNMENT.case_sets for name in item.forbidden}
    assert {"torch.nn.RNN", "torch.nn.RNNCell", "torch.nn.utils.clip_grad_norm_", "torch.autograd.grad"} <= forbidden


def test_the_cell_and_forward_references_equal_pytorchs_own_modules():
    for case in ch04._cell_cases():
        kw = case.kwargs
        cell = torch_layer(torch.nn.RNNCell(kw["W_hi"].shape[1], kw["W_hh"].shape[0]), kw["W_hi"], kw["W_hh"],
                           kw["b_h"], "")
        with torch.no_grad():
            expected = cell(torch.from_numpy(kw["i_t"]), torch.from_numpy(kw["h_prev"])).numpy()
        np.testing.assert_allclose(ch04.rnn_cell_reference(**kw), expected, rtol=1e-12, atol=1e-14)
    for case in ch04._forward_cases():
        kw = case.kwargs
        layer = torch_layer(torch.nn.RNN(kw["W_hi"].shape[1], kw["W_hh"].shape[0], batch_first=True),
                            kw["W_hi"], kw["W_hh"], kw["b_h"], "_l0")
        with torch.no_grad():
            expected, _ = layer(torch.from_numpy(kw["inputs"]), torch.from_numpy(kw["h0"])[None])
        np.testing.assert_allclose(ch04.rnn_forward_reference(**kw), expected.numpy(), rtol=1e-12, atol=1e-14)


def test_the_bptt_reference_equals_autograd_on_the_whole_forward_pass():
    for case in ch04._bptt_cases():
        kw = case.kwargs
        W_hh = torch.tensor(kw["W_hh"], requires_grad=True)
        W_oh = torch.from_numpy(kw["W_oh"])
        h = torch.from_numpy(kw["h"])
        # recover each step's input term u_t = W_hi i_t + b_h from the cached states: a_t = atanh(h_t)
        u = torch.atanh(h[1:]) - h[:-1] @ W_hh.detach().T
        # and the read-out's bias from the cached probabilities, up to a constant the softmax ignores
        b_o = torch.log(torch.from_numpy(kw["p"])) - h[1:] @ W_oh.T
        state, loss = h[0], torch.zeros((), dtype=torch.float64)
        for t in range(len(kw["targets"])):
            state = torch.tanh(W_hh @ state + u[t])
            logits = W_oh @ state + b_o[t]
            loss = loss + F.cross_entropy(logits[None], torch.tensor([int(kw["targets"][t])]))
        (expected,) = torch.autograd.grad(loss, W_hh)
        np.testing.assert_allclose(ch04.grad_W_hh_reference(**kw), expected.numpy(), rtol=1e-7, atol=1e-10)


def test_the_jacobian_norms_reference_equals_autograds_jacobians():
    for case in ch04._jacobian_cases():
        kw = case.kwargs
        W_hh, u = torch.from_numpy(kw["W_hh"]), torch.from_numpy(kw["input_terms"])
        states = [torch.from_numpy(kw["h0"])]
        for u_t in u:
            states.append(torch.tanh(W_hh @ states[-1] + u_t))
        T = len(u)

        def h_T_from(h_k: torch.Tensor, k: int) -> torch.Tensor:
            for t in range(k, T):
                h_k = torch.tanh(W_hh @ h_k + u[t])
            return h_k

        expected = [torch.linalg.matrix_norm(torch.autograd.functional.jacobian(
            lambda h_k, k=k: h_T_from(h_k, k), states[k]), ord=2).item() for k in range(T, -1, -1)]
        np.testing.assert_allclose(ch04.jacobian_norms_reference(**kw), expected, rtol=1e-9)


def test_the_clipping_reference_equals_pytorchs_clip_grad_norm():
    for case in ch04._clipping_cases():
        grads, max_norm = case.kwargs["grads"], case.kwargs["max_norm"]
        parameters = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for parameter, grad in zip(parameters, grads):
            parameter.grad = torch.from_numpy(grad.copy())
        norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm)
        clipped, total = ch04.clip_by_global_norm_reference(grads, max_norm)
        assert total == pytest.approx(float(norm), rel=1e-12)
        for mine, theirs in zip(clipped, parameters):
            np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-12, atol=0)
        assert all(np.array_equal(g, original) for g, original in zip(grads, case.kwargs["grads"]))  # untouched


def test_the_mistakes_the_chapter_warns_about_fail_their_cases():
    def immediate_only(inputs, targets, h, p, W_hh, W_oh):
        """dh_t/dW_hh taken as just h_{t-1}: no error flows back from later steps."""
        dW_hh = np.zeros_like(W_hh)
        for t in range(len(targets), 0, -1):
            dz = p[t - 1].copy()
            dz[targets[t - 1]] -= 1.0
            dW_hh += np.outer((1 - h[t] ** 2) * (W_oh.T @ dz), h[t - 1])
        return dW_hh

    result = run_item("grad_W_hh", immediate_only)
    cases = ASSIGNMENT.case_set("grad_W_hh").cases()
    # with one step there is no later step to forget: only that case passes
    assert [verdict.passed for verdict in result.verdicts] == [True, False, False, False]
    assert cases[0].kwargs["h"].shape[0] == 2

    def no_epsilon(grads, max_norm):
        total = float(np.sqrt(sum((g ** 2).sum() for g in grads)))
        return [g * min(1.0, max_norm / total) for g in grads], total

    result = run_item("clip_by_global_norm", no_epsilon)
    failed = [verdict.label for verdict in result.verdicts if not verdict.passed]
    assert failed == ["all gradients zero: the norm is 0 and nothing changes"]


# ------------------------------------------------------------------ grading the notebooks

def test_wrong_answers_lose_exactly_the_points_of_their_item(tmp_path):
    no_tanh_slope = variant(tmp_path, "no_tanh_slope", "delta = (1.0 - h[t] ** 2) * dh", "delta = dh")
    uses_torch_clipping = variant(
        tmp_path, "uses_torch_clipping",
        "    total_norm = float(np.sqrt(sum(float((g ** 2).sum()) for g in grads)))\n"
        "    scale = min(1.0, max_norm / (total_norm + 1e-6))\n"
        "    return [g * scale for g in grads], total_norm",
        "    import torch\n"
        "    params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]\n"
        "    for p, g in zip(params, grads):\n"
        "        p.grad = torch.tensor(g)\n"
        "    total_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))\n"
        "    return [p.grad.numpy() for p in params], total_norm")
    first_state_kept = variant(tmp_path, "first_state_kept", "return np.stack(states, axis=1)",
                               "return np.stack([h0] + states[:-1], axis=1)")
    for path, item, reason in ((no_tanh_slope, "ch04.grad_W_hh", None),
                               (uses_torch_clipping, "ch04.clip_by_global_norm",
                                "forbidden API: torch.nn.utils.clip_grad_norm_"),
                               (first_state_kept, "ch04.rnn_forward", None)):
        assert_only_item_lost(grade_notebook(path), ASSIGNMENT, item, reason)


def test_a_float32_answer_loses_its_item_as_a_wrong_dtype(tmp_path):
    # One rule for every item: float64 inputs want a float64 answer, whatever its values.
    float32_cell = variant(tmp_path, "float32_cell", "return np.tanh(i_t @ W_hi.T + h_prev @ W_hh.T + b_h)",
                           "return np.tanh(i_t @ W_hi.T + h_prev @ W_hh.T + b_h).astype(np.float32)")
    float32_clipping = variant(tmp_path, "float32_clipping", "return [g * scale for g in grads], total_norm",
                               "return [(g * scale).astype(np.float32) for g in grads], total_norm")
    for path, item in ((float32_cell, "ch04.rnn_cell"), (float32_clipping, "ch04.clip_by_global_norm")):
        # rnn_forward calls rnn_cell, so a float32 cell costs that item too; only the cell is checked alone
        result = grade_notebook(path)
        summary = next(graded for graded in result.items if graded.name == item).summary
        assert points(result)[item] == 0 and "wrong dtype" in summary and "expected float64, got float32" in summary


def test_pytorchs_functional_recurrent_entry_points_are_forbidden_too(tmp_path):
    for name, call in (("torch_function", "torch.rnn_tanh_cell"), ("vf_function", "torch._VF.rnn_tanh_cell")):
        path = variant(
            tmp_path, name, "    return np.tanh(i_t @ W_hi.T + h_prev @ W_hh.T + b_h)",
            "    import torch\n"
            f"    h = {call}(torch.from_numpy(i_t), torch.from_numpy(h_prev), torch.from_numpy(W_hi),\n"
            "                torch.from_numpy(W_hh), torch.from_numpy(b_h), torch.zeros_like(torch.from_numpy(b_h)))\n"
            "    return h.numpy()")
        result = grade_notebook(path)
        summary = next(graded for graded in result.items if graded.name == "ch04.rnn_cell").summary
        assert points(result)["ch04.rnn_cell"] == 0 and "forbidden API: torch._VF.rnn_tanh_cell" in summary, summary
