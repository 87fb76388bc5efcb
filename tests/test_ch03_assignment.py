"""Chapter 3's graded items: the references pass their own cases, and a wrong answer loses the points
of its own item only (full marks and zero, for every assignment: test_assignments.py)."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from course_lib.grading.assignments import ch03_neural_lm as ch03
from course_lib.grading.cases import judge, load_assignment
from course_lib.grading.execution import call_case
from course_lib.grading.runner import grade_notebook

from assignment_notebooks import (
    assert_declares, assert_only_item_lost, assert_random_numbers_untouched, solution_variant,
)

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "ch03_neural_lm.ipynb"
ASSIGNMENT = load_assignment("ch03")


variant = partial(solution_variant, SOLUTION)


# ------------------------------------------------------------------ the case sets themselves

def test_the_assignment_is_discovered_with_five_items_worth_ten_points():
    assert ASSIGNMENT is ch03.ASSIGNMENT
    assert_declares(
        ASSIGNMENT, ["stable_softmax", "cross_entropy", "fixed_window_forward", "logits_gradient", "training_step"],
        reference_modules={"course_lib.neural_lm", "course_lib.train"}, max_points=10)


def test_softmax_and_cross_entropy_references_agree_with_pytorch():
    for case in ch03._softmax_cases():
        z = case.kwargs["z"]
        assert torch.allclose(ch03.softmax_reference(z), torch.softmax(z, dim=-1), atol=1e-7), case.label
    for case in ch03._cross_entropy_cases():
        logits, targets = case.kwargs["logits"], case.kwargs["targets"]
        expected = F.cross_entropy(logits, targets)
        assert torch.allclose(ch03.cross_entropy_reference(logits, targets), expected, rtol=1e-6), case.label


def test_the_logits_gradient_is_softmax_minus_one_hot_over_n():
    for case in ch03._gradient_cases():
        logits, targets = case.kwargs["logits"], case.kwargs["targets"]
        by_formula = (torch.softmax(logits, dim=-1) - F.one_hot(targets, logits.shape[-1])) / len(targets)
        assert torch.allclose(ch03.logits_gradient_reference(logits, targets), by_formula, atol=1e-7), case.label


def test_the_training_step_reference_is_one_sgd_step_and_lowers_the_loss_for_a_small_lr():
    case = ch03._training_step_cases()[1]
    context_ids, targets, params, lr = (case.kwargs[key] for key in ("context_ids", "targets", "params", "lr"))
    result = ch03.training_step_reference(context_ids, targets, params, lr)
    leaves = {name: tensor.clone().requires_grad_(True) for name, tensor in params.items()}

    def loss_of(p):
        x = p["C"][context_ids].reshape(len(context_ids), -1)
        logits = torch.tanh(x @ p["H"].T + p["d"]) @ p["U"].T + p["b"]
        return F.cross_entropy(logits, targets)

    loss = loss_of(leaves)
    loss.backward()
    assert result["loss"] == pytest.approx(float(loss.detach()), rel=1e-12)
    for name, leaf in leaves.items():
        assert torch.allclose(result["params"][name], leaf.detach() - lr * leaf.grad, rtol=1e-12, atol=1e-12), name
    assert float(loss_of(result["params"])) < float(loss.detach())
    assert all(torch.equal(params[name], case.kwargs["params"][name]) for name in params)  # inputs untouched


def test_the_forward_reference_does_not_disturb_the_callers_random_numbers():
    assert_random_numbers_untouched((ch03.fixed_window_forward_reference, ch03._forward_cases()[1]))


def test_the_naive_answers_the_chapter_warns_about_fail_their_cases():
    softmax_item = ASSIGNMENT.case_set("stable_softmax")
    naive = lambda z: torch.exp(z) / torch.exp(z).sum(dim=-1, keepdim=True)  # noqa: E731
    cases = softmax_item.cases()
    result = judge(softmax_item, cases, [call_case(naive, case.kwargs) for case in cases])
    failed = [verdict for verdict in result.verdicts if not verdict.passed]
    assert {verdict.label for verdict in failed} == {cases[2].label, cases[3].label}
    assert "NaN" in failed[0].reason

    entropy_item = ASSIGNMENT.case_set("cross_entropy")
    via_log_of_softmax = lambda logits, targets: -torch.log(  # noqa: E731
        ch03.softmax_reference(logits)[torch.arange(len(targets)), targets]).mean()
    cases = entropy_item.cases()
    result = judge(entropy_item, cases, [call_case(via_log_of_softmax, case.kwargs) for case in cases])
    assert [verdict.label for verdict in result.verdicts if not verdict.passed] == [cases[3].label]


# ------------------------------------------------------------------ grading the notebooks

def test_wrong_answers_lose_exactly_the_points_of_their_item(tmp_path):
    no_one_hot = variant(tmp_path, "no_one_hot", "gradient[torch.arange(N), targets] -= 1", "pass")
    uses_torch_softmax = variant(
        tmp_path, "uses_torch_softmax",
        "    shifted = z - z.max(dim=-1, keepdim=True).values\n    e = torch.exp(shifted)\n"
        "    return e / e.sum(dim=-1, keepdim=True)",
        "    return torch.softmax(z, dim=-1)")
    for path, item, reason in ((no_one_hot, "ch03.logits_gradient", None),
                               (uses_torch_softmax, "ch03.stable_softmax", "forbidden API: torch.softmax")):
        assert_only_item_lost(grade_notebook(path), ASSIGNMENT, item, reason)
