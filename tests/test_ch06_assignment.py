"""Chapter 6's graded items: the references agree with independent computations (NumPy formulas,
PyTorch's own RNN cell, NLTK's modified precision, Seq2Seq.greedy), the mistakes the chapter warns
about fail, and a wrong answer loses the points of its own item only (full marks for the solution
and zero for the exercise are checked for every assignment in test_assignments.py)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from nltk.translate.bleu_score import modified_precision

from assignment_notebooks import (assert_only_item_lost, assert_random_numbers_untouched, points_earned,
                                  solution_variant)
from course_lib import rnn, seq2seq
from course_lib.grading.assignments import ch06_seq2seq_attention as ch06
from course_lib.grading.cases import load_assignment
from course_lib.grading.runner import grade_notebook

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "ch06_seq2seq_attention.ipynb"
ASSIGNMENT = load_assignment("ch06")


def torch64(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array, dtype=np.float64))


def assert_only_item_lost_points(result, item: str) -> None:
    """``result`` lost points on ``item`` (a mistake some cases do not show) and on no other item."""
    for graded in result.items:
        assert (graded.points < graded.max_points) == (graded.name == item), graded.name


def points_of(name: str, wrong) -> float:
    """The points a wrong function earns on the item ``name``'s cases."""
    return points_earned(ASSIGNMENT, name, wrong)


# ------------------------------------------------------------------ the case sets themselves

def test_the_assignment_is_discovered_with_six_items_worth_ten_points():
    assert ASSIGNMENT is ch06.ASSIGNMENT
    assert [item.name for item in ASSIGNMENT.case_sets] == [
        "ch06.masked_attention_weights", "ch06.additive_scores", "ch06.context_vector",
        "ch06.decoder_step_with_attention", "ch06.greedy_decode", "ch06.clipped_precision"]
    assert ASSIGNMENT.max_points == 10
    assert set(ASSIGNMENT.reference_modules) == {"course_lib.attention", "course_lib.seq2seq", "course_lib.bleu"}
    for item in ASSIGNMENT.case_sets[:4]:  # the items that compute attention
        assert "torch.nn.functional.scaled_dot_product_attention" in item.forbidden, item.name
    for name in ("masked_attention_weights", "decoder_step_with_attention"):
        assert "torch.softmax" in ASSIGNMENT.case_set(name).forbidden


def test_the_masked_weights_are_a_softmax_over_the_visible_positions_and_exactly_zero_elsewhere():
    for case in ch06._masked_softmax_cases():
        scores, mask = case.kwargs["scores"], np.broadcast_to(case.kwargs["mask"], case.kwargs["scores"].shape)
        weights = ch06.masked_attention_weights_reference(**case.kwargs)
        assert weights.shape == scores.shape and weights.dtype == np.float64
        assert np.all(weights[~mask] == 0.0), case.label
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-13, err_msg=case.label)
        visible = np.where(mask, scores, -np.inf)
        exps = np.exp(visible - visible.max(axis=-1, keepdims=True))
        np.testing.assert_allclose(weights, exps / exps.sum(axis=-1, keepdims=True), rtol=1e-12, atol=1e-300,
                                   err_msg=case.label)


def test_the_additive_reference_is_the_formula_key_by_key():
    for case in ch06._additive_cases():
        k = case.kwargs
        expected = np.array([[k["v"] @ np.tanh(k["W_q"] @ k["query"][b] + k["W_k"] @ key + k["b"])
                              for key in k["keys"][b]] for b in range(len(k["query"]))])
        np.testing.assert_allclose(ch06.additive_scores_reference(**k), expected, rtol=1e-12, atol=1e-13,
                                   err_msg=case.label)


def test_the_context_reference_is_the_weighted_sum_position_by_position():
    for case in ch06._context_cases():
        weights, states = case.kwargs["weights"], case.kwargs["encoder_states"]
        expected = sum(weights[:, i, None] * states[:, i] for i in range(states.shape[1]))
        np.testing.assert_allclose(ch06.context_vector_reference(**case.kwargs), expected, rtol=1e-13,
                                   atol=1e-15, err_msg=case.label)
    one_hot = ch06._context_cases()[0].kwargs
    np.testing.assert_array_equal(ch06.context_vector_reference(**one_hot),
                                  one_hot["encoder_states"][[0, 1], [2, 0]])


def luong_step_with_pytorch(s_prev, x_t, encoder_states, mask, params):
    """The item's equations with nn.RNNCell and PyTorch's softmax: independent of course_lib."""
    d_hidden, d_embed = params["W_hi"].shape
    cell = torch.nn.RNNCell(d_embed, d_hidden).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch64(params["W_hi"]))
        cell.weight_hh.copy_(torch64(params["W_hh"]))
        cell.bias_ih.copy_(torch64(params["b_h"]))
        cell.bias_hh.zero_()
        s_t = cell(torch64(x_t), torch64(s_prev))
        H = torch64(encoder_states)
        scores = torch.einsum("bd,bsd->bs", s_t, H).masked_fill(~torch.from_numpy(mask), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        context = torch.einsum("bs,bsd->bd", weights, H)
        s_tilde = torch.tanh(torch.cat([context, s_t], dim=1) @ torch64(params["W_c"]).T)
        log_probs = torch.log_softmax(s_tilde @ torch64(params["W_o"]).T + torch64(params["b_o"]), dim=-1)
    return s_t.numpy(), weights.numpy(), log_probs.numpy()


def test_the_decoder_step_reference_is_seq2seq_step_and_equals_the_equations_with_nn_rnncell():
    for case in ch06._decoder_step_cases():
        got = ch06.decoder_step_with_attention_reference(**case.kwargs)
        for part, (mine, theirs) in zip(("s_t", "weights", "log_probs"),
                                        zip(got, luong_step_with_pytorch(**case.kwargs))):
            np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14, err_msg=f"{case.label}: {part}")
        assert np.all(got[1][~case.kwargs["mask"]] == 0.0)


def small_translation_model(seed: int) -> seq2seq.Seq2Seq:
    torch.manual_seed(seed)
    encoder = seq2seq.Encoder(9, 4, rnn.RNN(4, 6))
    model = seq2seq.Seq2Seq(encoder, rnn.RNN(4, 6), 7, 4, attention="luong", score="dot")
    with torch.no_grad():
        model.readout.bias[3] -= 1.0  # EOS (id 3) less likely at first, so some outputs are long
    return model


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_greedy_loop_over_seq2seq_step_gives_seq2seq_greedy(seed):
    model = small_translation_model(seed)
    sources = torch.randint(4, 9, (3, 5), generator=torch.Generator().manual_seed(seed))
    expected, _ = model.greedy(sources, torch.tensor([5, 5, 5]), bos_id=2, eos_id=3, max_length=8)
    for source, tokens in zip(sources, expected):
        state = model.start(source[None], torch.tensor([5]))

        def step_fn(token: int) -> np.ndarray:
            nonlocal state
            with torch.no_grad():
                log_probs, state, _ = model.step(torch.tensor([token]), state)
            return log_probs[0].numpy()

        assert ch06.greedy_loop(step_fn, 2, 3, 8) == tokens


def test_the_greedy_tables_make_the_cases_they_describe():
    produced = [ch06.greedy_decode_reference(**case.kwargs) for case in ch06._greedy_cases()]
    assert [len(tokens) for tokens in produced] == [4, 6, 0, 1, 6]
    for case, tokens in zip(ch06._greedy_cases(), produced):
        assert case.kwargs["eos"] not in tokens
        np.testing.assert_allclose(np.exp(case.kwargs["log_probs"]).sum(axis=-1), 1.0, rtol=1e-12)


def test_the_table_decoder_refuses_a_step_past_max_length():
    step_fn = ch06.table_decoder(np.zeros((2, 3, 3)))
    step_fn(0), step_fn(1)
    with pytest.raises(RuntimeError, match="more than max_length = 2"):
        step_fn(0)


def test_the_clipped_precision_reference_equals_nltks_modified_precision():
    for case in ch06._clipped_precision_cases():
        matches, total = ch06.clipped_precision_reference(**case.kwargs)
        expected = modified_precision(case.kwargs["references"], case.kwargs["candidate"], case.kwargs["n"])
        # NLTK writes no n-grams at all as 0/1 (its denominator is at least 1)
        assert (matches, max(total, 1)) == (expected.numerator, expected.denominator), case.label
    assert ch06.clipped_precision_reference(["the", "cat"], [["the", "cat"]], 3) == (0, 0)
    assert Fraction(*ch06.clipped_precision_reference(**ch06._clipped_precision_cases()[0].kwargs)) == Fraction(2, 7)


def test_the_references_do_not_disturb_the_callers_random_numbers():
    assert_random_numbers_untouched(
        (ch06.additive_scores_reference, ch06._additive_cases()[0]),
        (ch06.decoder_step_with_attention_reference, ch06._decoder_step_cases()[0]),
    )


# ------------------------------------------------------------------ the mistakes the chapter warns about

def softmax(x, axis=-1):
    exps = np.exp(x - x.max(axis=axis, keepdims=True))
    return exps / exps.sum(axis=axis, keepdims=True)


def test_masking_mistakes_fail():
    def no_mask(scores, mask):
        return softmax(scores)

    def wrong_axis(scores, mask):
        return softmax(np.where(mask, scores, -np.inf), axis=0)

    def masked_after_the_softmax(scores, mask):
        return softmax(scores) * mask

    for wrong in (no_mask, wrong_axis, masked_after_the_softmax):
        assert points_of("masked_attention_weights", wrong) < 2, wrong.__name__  # unmasked rows may pass


def test_additive_mistakes_fail():
    def no_bias(query, keys, W_q, W_k, b, v):
        return ch06.additive_scores_reference(query, keys, W_q, W_k, np.zeros_like(b), v)

    def keys_through_the_query_matrix(query, keys, W_q, W_k, b, v):
        return np.tanh((query @ W_q.T)[:, None] + keys @ W_q.T + b) @ v

    assert points_of("additive_scores", no_bias) == 0
    assert points_of("additive_scores", keys_through_the_query_matrix) < ASSIGNMENT.case_set("additive_scores").points


def test_a_context_that_ignores_the_weights_fails():
    assert points_of("context_vector", lambda weights, encoder_states: encoder_states.mean(axis=1)) < 1


def test_the_bahdanau_query_and_a_swapped_concatenation_fail_the_luong_step():
    def previous_state_as_query(s_prev, x_t, encoder_states, mask, params):
        s_t = np.tanh(x_t @ params["W_hi"].T + s_prev @ params["W_hh"].T + params["b_h"])
        scores = np.einsum("bd,bsd->bs", s_prev, encoder_states)  # Bahdanau's query: the state given
        weights = softmax(np.where(mask, scores, -np.inf))
        context = (weights[:, :, None] * encoder_states).sum(axis=1)
        s_tilde = np.tanh(np.concatenate([context, s_t], axis=1) @ params["W_c"].T)
        return s_t, weights, np.log(softmax(s_tilde @ params["W_o"].T + params["b_o"]))

    def state_first(s_prev, x_t, encoder_states, mask, params):
        W_c = params["W_c"]
        d = W_c.shape[0]
        swapped = {**params, "W_c": np.concatenate([W_c[:, d:], W_c[:, :d]], axis=1)}  # right for [s_t; c_t]
        return ch06.decoder_step_with_attention_reference(s_prev, x_t, encoder_states, mask, swapped)

    for wrong in (previous_state_as_query, state_first):
        assert points_of("decoder_step_with_attention", wrong) == 0, wrong.__name__


def test_greedy_mistakes_fail():
    def keeps_eos(log_probs, bos, eos, max_length):
        step_fn, token, produced = ch06.table_decoder(log_probs), bos, []
        for _ in range(max_length):
            token = int(np.argmax(step_fn(token)))
            produced.append(token)
            if token == eos:
                break
        return produced

    def always_reads_bos(log_probs, bos, eos, max_length):  # the right loop, fed BOS at every step
        step_fn = ch06.table_decoder(log_probs)
        return ch06.greedy_loop(lambda token: step_fn(bos), bos, eos, max_length)

    def ignores_max_length(log_probs, bos, eos, max_length):
        step_fn, token, produced = ch06.table_decoder(log_probs), bos, []
        while True:
            token = int(np.argmax(step_fn(token)))
            if token == eos:
                return produced
            produced.append(token)

    for wrong in (keeps_eos, always_reads_bos, ignores_max_length):
        assert points_of("greedy_decode", wrong) < 1, wrong.__name__


def test_unclipped_counts_and_counts_summed_over_references_fail():
    from collections import Counter

    def grams(tokens, n):
        return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))

    def unclipped(candidate, references, n):
        counts = grams(candidate, n)
        seen = set().union(*(grams(reference, n) for reference in references))
        return sum(count for gram, count in counts.items() if gram in seen), sum(counts.values())

    def summed_over_references(candidate, references, n):
        counts, total = grams(candidate, n), Counter()
        for reference in references:
            total += grams(reference, n)
        return sum(min(count, total[gram]) for gram, count in counts.items()), sum(counts.values())

    for wrong in (unclipped, summed_over_references):
        assert points_of("clipped_precision", wrong) < 2, wrong.__name__


# ------------------------------------------------------------------ grading the notebooks

def test_wrong_answers_lose_exactly_the_points_of_their_item(tmp_path):
    bahdanau_query = solution_variant(SOLUTION, tmp_path, "bahdanau_query",
                                      '"bd,bsd->bs", s_t, encoder_states', '"bd,bsd->bs", s_prev, encoder_states')
    unclipped = solution_variant(SOLUTION, tmp_path, "unclipped", "sum(min(count, most_in_a_reference[gram])",
                                 "sum((count if most_in_a_reference[gram] else 0)")
    keeps_eos = solution_variant(SOLUTION, tmp_path, "keeps_eos", "        if token == eos:\n            break\n"
                                 "        produced.append(token)\n", "        produced.append(token)\n"
                                 "        if token == eos:\n            break\n")
    uses_sdpa = solution_variant(
        SOLUTION, tmp_path, "uses_sdpa", "    ### BEGIN SOLUTION\n    projected_query = ",
        "    ### BEGIN SOLUTION\n    import torch\n    q = torch.zeros(1, 1, 2)\n"
        "    torch.nn.functional.scaled_dot_product_attention(q, q, q)\n    projected_query = ")
    for path, item, reason in (
            (bahdanau_query, "ch06.decoder_step_with_attention", None),
            (uses_sdpa, "ch06.additive_scores", "forbidden API: torch.nn.functional.scaled_dot_product_attention")):
        assert_only_item_lost(grade_notebook(path), ASSIGNMENT, item, reason)
    # no clipping shows only where a candidate repeats an n-gram; a kept EOS only where EOS comes
    for path, item in ((unclipped, "ch06.clipped_precision"), (keeps_eos, "ch06.greedy_decode")):
        assert_only_item_lost_points(grade_notebook(path), item)
