"""Chapter 8's graded items: the references agree with independent computations (transformers'
logits processors, formulas written element by element, a brute-force ranking of the beam's
candidates), the mistakes the chapter warns about fail, and a wrong answer loses the points of its
own item only (full marks for the solution and zero for the exercise are checked for every
assignment in test_assignments.py)."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch
from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from assignment_notebooks import assert_declares, assert_only_item_lost, points_earned, solution_variant
from course_lib.grading.assignments import ch08_decoding as ch08
from course_lib.grading.cases import load_assignment
from course_lib.grading.policies import SOFTMAX
from course_lib.grading.runner import grade_notebook

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "ch08_decoding.ipynb"
ASSIGNMENT = load_assignment("ch08")


def points_of(name: str, wrong) -> float:
    """The points a wrong function earns on the item ``name``'s cases."""
    return points_earned(ASSIGNMENT, name, wrong)


def softmax(z):
    exps = np.exp(z - z.max(axis=-1, keepdims=True))
    return exps / exps.sum(axis=-1, keepdims=True)


def no_ids(batch: int) -> torch.Tensor:
    return torch.zeros(batch, 0, dtype=torch.long)


# ------------------------------------------------------------------ the case sets themselves

def test_the_assignment_declares_six_items_worth_ten_points_and_their_rules():
    assert ASSIGNMENT is ch08.ASSIGNMENT
    assert_declares(ASSIGNMENT, ["temperature_softmax", "top_k_filter", "top_p_filter", "penalise_repeats",
                                 "beam_step", "tokens_to_keep"], {"course_lib.decoding"}, 10)
    assert set(SOFTMAX) <= set(ASSIGNMENT.case_set("temperature_softmax").forbidden)


def test_the_filters_equal_transformers_warpers():
    for case in ch08._temperature_cases():
        k = case.kwargs
        theirs = TemperatureLogitsWarper(k["temperature"])(no_ids(len(k["logits"])), torch.tensor(k["logits"]))
        np.testing.assert_allclose(ch08.temperature_softmax_reference(**k), torch.softmax(theirs, -1).numpy(),
                                   rtol=1e-12, atol=1e-15, err_msg=case.label)
    for case in ch08._top_k_cases():
        k = case.kwargs
        theirs = TopKLogitsWarper(k["k"])(no_ids(len(k["logits"])), torch.tensor(k["logits"]))
        assert np.array_equal(ch08.top_k_filter_reference(**k), theirs.numpy()), case.label
    for case in ch08._top_p_cases():
        k = case.kwargs
        theirs = TopPLogitsWarper(k["p"])(no_ids(len(k["logits"])), torch.tensor(k["logits"]))
        assert np.array_equal(ch08.top_p_filter_reference(**k), theirs.numpy()), case.label


def test_every_top_p_case_ends_its_nucleus_well_inside_one_tokens_share():
    # so that the order of a sum (ascending or descending) cannot move the boundary
    for case in ch08._top_p_cases():
        probs = softmax(case.kwargs["logits"])
        for row in -np.sort(-probs, axis=-1):
            before = np.cumsum(row) - row
            if case.kwargs["p"] < 1:
                assert np.min(np.abs(before - case.kwargs["p"])) > 1e-6, case.label


def test_the_penalty_reference_is_the_formula_element_by_element():
    for case in ch08._penalty_cases():
        k = case.kwargs
        expected = k["logits"].copy()
        for row, history in enumerate(k["generated"]):
            for token in set(history.tolist()):
                count = history.tolist().count(token)
                expected[row, token] -= count * k["frequency"] + k["presence"]
        np.testing.assert_allclose(ch08.penalise_repeats_reference(**k), expected, rtol=1e-13, err_msg=case.label)


def test_the_beam_step_reference_is_a_brute_force_ranking():
    for case in ch08._beam_cases():
        k = case.kwargs
        beam, vocab = k["next_log_probs"].shape
        candidates = sorted(((k["beam_log_probs"][p] + k["next_log_probs"][p, t], p, t)
                             for p, t in itertools.product(range(beam), range(vocab))), reverse=True)
        log_probs, parents, tokens = ch08.beam_step_reference(**k)
        best = candidates[:k["beam_width"]]
        np.testing.assert_allclose(log_probs, [c[0] for c in best], rtol=1e-13, err_msg=case.label)
        assert parents.tolist() == [c[1] for c in best] and tokens.tolist() == [c[2] for c in best], case.label


def test_the_stopping_reference_by_hand():
    expected = [9, 4, 2, 5, 2, 2]
    got = [ch08.tokens_to_keep_reference(**case.kwargs) for case in ch08._stopping_cases()]
    assert got == expected


# ------------------------------------------------------------------ the chapter's mistakes fail

def test_temperature_mistakes_fail():
    def multiplied(logits, temperature):
        return softmax(logits * temperature)

    def overflowing(logits, temperature):
        with np.errstate(over="ignore", invalid="ignore"):
            exps = np.exp(logits / temperature)
            return exps / exps.sum(axis=-1, keepdims=True)

    assert points_of("temperature_softmax", multiplied) < 1 / 5      # right at τ = 1 only
    assert points_of("temperature_softmax", overflowing) < 1          # the case near ±900 overflows


def test_top_k_that_breaks_ties_fails():
    def exactly_k(logits, k):
        keep = np.argsort(-logits, axis=-1, kind="stable")[:, :k]
        out = np.full_like(logits, -np.inf)
        np.put_along_axis(out, keep, np.take_along_axis(logits, keep, -1), -1)
        return out

    assert points_of("top_k_filter", exactly_k) <= 2 * 4 / 5         # the tie case fails


def test_top_p_that_leaves_out_the_token_crossing_p_fails():
    def crossing_token_left_out(logits, p):
        probs = softmax(logits)
        order = np.argsort(-probs, axis=-1)
        running = np.cumsum(np.take_along_axis(probs, order, -1), -1)
        keep = np.zeros(probs.shape, dtype=bool)
        np.put_along_axis(keep, order, running <= p, -1)
        return np.where(keep, logits, -np.inf)

    assert points_of("top_p_filter", crossing_token_left_out) <= 2 / 6   # right at p = 1 only


def test_penalty_mistakes_fail():
    def presence_per_occurrence(logits, generated, frequency, presence):
        counts = np.stack([np.bincount(row, minlength=logits.shape[1]) for row in generated]) \
            if generated.shape[1] else np.zeros_like(logits)
        return logits - counts * (frequency + presence)

    def one_history_for_the_batch(logits, generated, frequency, presence):
        counts = np.bincount(generated.ravel(), minlength=logits.shape[1]).astype(float)
        return logits - counts * frequency - (counts > 0) * presence

    assert points_of("penalise_repeats", presence_per_occurrence) <= 2 * 2 / 5
    assert points_of("penalise_repeats", one_history_for_the_batch) <= 2 * 3 / 5


def test_beam_step_mistakes_fail():
    def parents_forgotten(beam_log_probs, next_log_probs, beam_width):
        vocab = next_log_probs.shape[1]
        flat = next_log_probs.ravel()
        best = np.argsort(-flat)[:beam_width]
        return flat[best], best // vocab, best % vocab

    def indices_swapped(beam_log_probs, next_log_probs, beam_width):
        vocab = next_log_probs.shape[1]
        flat = (beam_log_probs[:, None] + next_log_probs).ravel()
        best = np.argsort(-flat)[:beam_width]
        return flat[best], best % vocab, best // vocab

    assert points_of("beam_step", parents_forgotten) == 0
    assert points_of("beam_step", indices_swapped) < 2 / 5      # a beam of 1 over V: parent and token agree


def test_stopping_mistakes_fail():
    def newest_piece_only(pieces, stop_strings, max_tokens):
        for count, piece in enumerate(pieces[:max_tokens], start=1):
            if any(stop in piece for stop in stop_strings):
                return count
        return min(len(pieces), max_tokens)

    def no_limit(pieces, stop_strings, max_tokens):
        for count in range(1, len(pieces) + 1):
            if any(stop in "".join(pieces[:count]) for stop in stop_strings):
                return count
        return len(pieces)

    assert points_of("tokens_to_keep", newest_piece_only) < 1        # 'The end.' in three pieces
    assert points_of("tokens_to_keep", no_limit) < 1


# ------------------------------------------------------------------ grading the notebooks

def assert_points_lost_on(result, item: str) -> None:
    """``result`` lost points on ``item`` (at least some of its cases) and nowhere else."""
    for graded in result.items:
        full = ASSIGNMENT.case_set(graded.name).points
        assert (graded.points < full) == (graded.name == item), (graded.name, graded.points)


def test_wrong_answers_lose_the_points_of_their_item_only(tmp_path):
    crossing_left_out = solution_variant(SOLUTION, tmp_path, "crossing_left_out", "keep_sorted = mass_before < p",
                                         "keep_sorted = mass_before + sorted_probs <= p")
    assert_points_lost_on(grade_notebook(crossing_left_out), "ch08.top_p_filter")
    library_softmax = solution_variant(
        SOLUTION, tmp_path, "library_softmax", "    ### BEGIN SOLUTION\n    scaled = logits / temperature",
        "    ### BEGIN SOLUTION\n    import torch\n    torch.softmax(torch.zeros(2), 0)\n"
        "    scaled = logits / temperature")
    assert_only_item_lost(grade_notebook(library_softmax), ASSIGNMENT, "ch08.temperature_softmax",
                          "forbidden API: torch.softmax")
