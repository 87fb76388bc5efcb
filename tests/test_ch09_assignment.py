"""Chapter 9's graded items: the references agree with independent computations (the draws given
to the student are the library's own, BERT's pieces equal transformers' with the same weights, the
span search equals brute force, BERT-base and -large have their published counts), the classic
mistakes fail, and a wrong answer loses the points of its own item only (full marks for the
solution and zero for the exercise are checked for every assignment in test_assignments.py)."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from assignment_notebooks import (assert_declares, assert_only_item_lost, assert_random_numbers_untouched,
                                  points_earned, solution_variant)
from course_lib.grading.assignments import ch09_pretraining_bert as ch09
from course_lib.grading.cases import load_assignment
from course_lib.grading.policies import LAYER_NORM
from course_lib.grading.runner import grade_notebook

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "ch09_pretraining_bert.ipynb"
ASSIGNMENT = load_assignment("ch09")


def points_of(name: str, wrong) -> float:
    """The points a wrong function earns on the item ``name``'s cases."""
    return points_earned(ASSIGNMENT, name, wrong)


def test_the_assignment_declares_six_items_worth_ten_points():
    assert ASSIGNMENT is ch09.ASSIGNMENT
    assert_declares(ASSIGNMENT, ["mask_tokens", "span_corruption", "pooler", "bert_embeddings", "best_answer_span",
                                 "parameter_count"], {"course_lib.objectives", "course_lib.bert"}, 10)
    assert set(LAYER_NORM) <= set(ASSIGNMENT.case_set("ch09.bert_embeddings").forbidden)


def _masking_by_rule(k):
    """The rule the exercise states, written element by element."""
    inputs, labels = k["ids"].copy(), np.full_like(k["ids"], -100)
    for index in np.ndindex(k["ids"].shape):
        if k["ids"][index] in k["special_ids"] or k["select_uniform"][index] >= 0.15:
            continue
        labels[index] = k["ids"][index]
        fate = k["fate_uniform"][index]
        inputs[index] = k["mask_id"] if fate < 0.8 else k["random_tokens"][index] if fate < 0.9 else inputs[index]
    return inputs, labels


def test_the_masking_draws_given_are_the_librarys_own():
    fates = []
    for case in ch09._masking_cases():
        expected = ch09.mask_tokens_reference(**case.kwargs)
        by_rule = _masking_by_rule(case.kwargs)
        assert all(np.array_equal(a, b) for a, b in zip(expected, by_rule)), case.label
        selected = expected[1] != -100
        fates.append({"masked": (expected[0][selected] == ch09.MASK_ID).sum(),
                      "other": (expected[0][selected] != case.kwargs["ids"][selected]).sum()})
    assert any(f["masked"] for f in fates) and any(f["other"] for f in fates)


def test_span_corruption_reference_follows_the_given_spans():
    for case in ch09._span_cases():
        k = case.kwargs
        inputs, targets = ch09.span_corruption_reference(**k)
        top = k["vocab_size"] - 1
        assert list(targets[::1][:1]) == [top] and targets[-1] == top - len(k["span_starts"])
        assert sum(inputs >= top - len(k["span_starts"]) + 1) == len(k["span_starts"])
        assert len(inputs) == len(k["ids"]) - k["span_lengths"].sum() + len(k["span_starts"])


def test_pooler_and_embeddings_equal_transformers_with_the_same_weights():
    for case in ch09._pooler_cases():
        k = case.kwargs
        hidden = k["weight"].shape[0]
        pooler = transformers.models.bert.modeling_bert.BertPooler(
            transformers.BertConfig(hidden_size=hidden, num_attention_heads=1)).double()
        pooler.load_state_dict({"dense.weight": torch.from_numpy(k["weight"]), "dense.bias": torch.from_numpy(k["bias"])})
        expected = pooler(torch.from_numpy(k["hidden"])).detach().numpy()
        assert np.allclose(ch09.pooler_reference(**k), expected, atol=1e-12), case.label
    for case in ch09._embedding_cases():
        k = case.kwargs
        vocab, hidden = k["token_table"].shape
        config = transformers.BertConfig(vocab_size=vocab, hidden_size=hidden, num_attention_heads=1,
                                         max_position_embeddings=len(k["position_table"]),
                                         type_vocab_size=len(k["segment_table"]), layer_norm_eps=k["eps"])
        embeddings = transformers.models.bert.modeling_bert.BertEmbeddings(config).double().eval()
        embeddings.load_state_dict({"word_embeddings.weight": torch.from_numpy(k["token_table"]),
                                    "position_embeddings.weight": torch.from_numpy(k["position_table"]),
                                    "token_type_embeddings.weight": torch.from_numpy(k["segment_table"]),
                                    "LayerNorm.weight": torch.from_numpy(k["gamma"]),
                                    "LayerNorm.bias": torch.from_numpy(k["beta"])}, strict=False)
        expected = embeddings(input_ids=torch.from_numpy(k["input_ids"]),
                              token_type_ids=torch.from_numpy(k["token_type_ids"])).detach().numpy()
        assert np.allclose(ch09.embeddings_reference(**k), expected, atol=1e-10), case.label


def test_best_span_reference_equals_brute_force():
    for case in ch09._best_span_cases():
        k = case.kwargs
        spans = ch09.best_span_reference(**k)
        for row, (start, end) in enumerate(spans):
            best = max(((k["start_logits"][row, i] + k["end_logits"][row, j], i, j)
                        for i, j in itertools.product(range(k["allowed"].shape[1]), repeat=2)
                        if i <= j < i + k["max_answer_length"] and k["allowed"][row, i] and k["allowed"][row, j]),
                       key=lambda item: item[0])
            assert (start, end) == best[1:], case.label


def test_parameter_counts_are_the_published_ones_and_transformers():
    counts = {case.label: ch09.parameter_count_reference(**case.kwargs) for case in ch09._count_cases()}
    assert counts["BERT-base"] == 109_482_240 and counts["BERT-large"] == 335_141_888
    assert counts["a question-answering encoder: no pooler"] == 109_482_240 - (768 * 768 + 768)
    with torch.device("meta"):
        minilm = transformers.BertModel(transformers.BertConfig(hidden_size=384, num_hidden_layers=6,
                                                                intermediate_size=1536))
    assert counts["all-MiniLM-L6-v2's shape"] == sum(p.numel() for p in minilm.parameters()) == 22_713_216


def test_the_references_leave_the_random_numbers_alone():
    assert_random_numbers_untouched(*((item.reference, item.cases()[0]) for item in ASSIGNMENT.case_sets))


def test_classic_mistakes_fail_their_item():
    def masks_specials(ids, select_uniform, fate_uniform, random_tokens, special_ids, mask_id, seed, vocab_size):
        selected = select_uniform < 0.15  # special tokens and padding may be chosen
        inputs = np.where(selected & (fate_uniform < 0.8), mask_id, ids)
        inputs = np.where(selected & (fate_uniform >= 0.8) & (fate_uniform < 0.9), random_tokens, inputs)
        return inputs, np.where(selected, ids, -100)

    def labels_everywhere(ids, select_uniform, fate_uniform, random_tokens, special_ids, mask_id, seed, vocab_size):
        selected = ~np.isin(ids, special_ids) & (select_uniform < 0.15)
        inputs = np.where(selected & (fate_uniform < 0.8), mask_id, ids)
        inputs = np.where(selected & (fate_uniform >= 0.8) & (fate_uniform < 0.9), random_tokens, inputs)
        return inputs, ids

    def mean_pooled(hidden, weight, bias):
        return np.tanh(hidden.mean(axis=1) @ weight.T + bias)

    def untransposed(hidden, weight, bias):
        return np.tanh(hidden[:, 0] @ weight + bias)

    def separate_argmax(start_logits, end_logits, max_answer_length, allowed):
        return np.stack([start_logits.argmax(axis=1), end_logits.argmax(axis=1)], axis=1)

    def pooler_per_layer(vocab_size, hidden_size, num_layers, intermediate_size, max_positions, type_vocab_size,
                         pooler):
        H, F = hidden_size, intermediate_size
        layer = 4 * (H * H + H) + 2 * H + H * F + F + F * H + H + 2 * H
        return (vocab_size + max_positions + type_vocab_size) * H + 2 * H + num_layers * layer + (
            num_layers * (H * H + H) if pooler else 0)

    def no_biases(vocab_size, hidden_size, num_layers, intermediate_size, max_positions, type_vocab_size, pooler):
        H, F = hidden_size, intermediate_size
        return (vocab_size + max_positions + type_vocab_size) * H + num_layers * (4 * H * H + 2 * H * F) + (
            H * H if pooler else 0)

    for name, wrong in (("ch09.mask_tokens", masks_specials), ("ch09.mask_tokens", labels_everywhere),
                        ("ch09.pooler", mean_pooled), ("ch09.pooler", untransposed),
                        ("ch09.best_answer_span", separate_argmax), ("ch09.parameter_count", no_biases)):
        assert points_of(name, wrong) == 0, (name, wrong.__name__)
    # The sources' slip, a pooler per layer, passes only the case without a pooler (1 of 5).
    assert points_of("ch09.parameter_count", pooler_per_layer) == pytest.approx(2 / 5)


def test_wrong_answers_lose_exactly_the_points_of_their_item(tmp_path):
    variants = (
        ("no_last_sentinel", "    targets.append(vocab_size - 1 - len(span_starts))\n", "", "ch09.span_corruption"),
        ("first_token_dropped", "token_table[input_ids] + position_table[:T]",
         "token_table[input_ids] + position_table[1:T + 1]", "ch09.bert_embeddings"),
        ("start_after_end", "valid = (i <= j) & (j - i < max_answer_length)", "valid = (j - i < max_answer_length)",
         "ch09.best_answer_span"),
    )
    for name, old, new, item in variants:
        result = grade_notebook(solution_variant(SOLUTION, tmp_path, name, old, new), assignment="ch09")
        assert_only_item_lost(result, ASSIGNMENT, item)
