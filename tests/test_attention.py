"""Chapter 6's attention against PyTorch's fused attention, the formula element by element, and its laws."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.attention import (AdditiveScore, Attention, GeneralScore, attend, causal_mask, masked_softmax,
                                  padding_mask, scaled_dot_product_attention, scaled_dot_product_scores)


def _random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("scale", [1.0, None])
def test_dot_product_attention_equals_pytorch_fused(scale):
    q, k, v = _random(3, 5, 8, seed=1), _random(3, 7, 8, seed=2), _random(3, 7, 4, seed=3)
    mask = padding_mask(torch.tensor([7, 4, 1]))[:, None, :]  # (batch, 1, T_k)
    context, weights = scaled_dot_product_attention(q, k, v, mask, scale=scale)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    assert torch.allclose(context, expected, atol=1e-6, rtol=0)
    assert weights.shape == (3, 5, 7)
    assert torch.all(weights[1, :, 4:] == 0) and torch.all(weights[2, :, 1:] == 0)


def test_dot_score_module_equals_the_function():
    q, k = _random(2, 3, 6, seed=4), _random(2, 5, 6, seed=5)
    context, weights = Attention("dot")(q, k)
    expected, expected_weights = scaled_dot_product_attention(q, k, k, scale=1.0)
    assert torch.allclose(context, expected) and torch.allclose(weights, expected_weights)


def test_multi_head_shapes_broadcast_and_causal_mask_equals_pytorch():
    q, k, v = _random(2, 4, 6, 8, seed=6), _random(2, 4, 6, 8, seed=7), _random(2, 4, 6, 8, seed=8)
    context, _ = scaled_dot_product_attention(q, k, v, causal_mask(6))
    assert torch.allclose(context, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6)


def test_causal_mask_for_new_queries_against_a_longer_cache():
    mask = causal_mask(2, 5)
    assert mask.tolist() == [[True, True, True, True, False], [True, True, True, True, True]]
    with pytest.raises(ValueError, match="at least T_q"):
        causal_mask(5, 2)


def test_additive_score_is_the_formula_element_by_element():
    torch.manual_seed(0)
    score = AdditiveScore(d_query=3, d_key=4, d_attention=5).double()
    s, h = _random(2, 2, 3, seed=9), _random(2, 6, 4, seed=10)
    scores = score(s, h)
    for b in range(2):
        for t in range(2):
            for i in range(6):
                e = score.v @ torch.tanh(score.W_q.weight @ s[b, t] + score.W_k.weight @ h[b, i] + score.W_k.bias)
                assert math.isclose(scores[b, t, i].item(), e.item(), rel_tol=1e-12, abs_tol=1e-12)


def test_general_score_is_a_bilinear_form():
    torch.manual_seed(0)
    score = GeneralScore(3, 4).double()
    s, h = _random(1, 2, 3, seed=11), _random(1, 5, 4, seed=12)
    expected = torch.einsum("tq,qk,ik->ti", s[0], score.W_a, h[0])
    assert torch.allclose(score(s, h)[0], expected, atol=1e-12)


@pytest.mark.parametrize("name", ["dot", "general", "additive"])
def test_padding_the_source_changes_nothing(name):
    torch.manual_seed(0)
    attention = Attention(name, 6, 6, 5).double()
    q, k = _random(1, 3, 6, seed=13), _random(1, 4, 6, seed=14)
    context, weights = attention(q, k)
    padded = torch.cat([k, _random(1, 3, 6, seed=15) * 100], dim=1)  # three pad positions, wild values
    mask = padding_mask(torch.tensor([4]), 7)[:, None, :]
    padded_context, padded_weights = attention(q, padded, mask=mask)
    assert torch.allclose(context, padded_context, atol=1e-6)
    assert torch.allclose(weights, padded_weights[..., :4], atol=1e-6)
    assert torch.all(padded_weights[..., 4:] == 0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 9), st.integers(0, 10_000))
def test_weights_are_a_distribution_over_unmasked_keys(batch, T_q, T_k, seed):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, T_q, T_k, generator=generator, dtype=torch.float64) * 10
    lengths = torch.randint(1, T_k + 1, (batch,), generator=generator)
    mask = padding_mask(lengths, T_k)[:, None, :]
    weights = masked_softmax(scores, mask)
    assert torch.all(weights >= 0)
    assert torch.allclose(weights.sum(-1), torch.ones(batch, T_q, dtype=torch.float64))
    assert torch.all(weights.masked_select(~mask.expand_as(weights)) == 0)


def test_a_fully_masked_row_is_an_error_or_zero_never_nan():
    scores = _random(2, 1, 3, seed=16)
    mask = padding_mask(torch.tensor([3, 0]), 3)[:, None, :]
    with pytest.raises(ValueError, match=r"row \(1, 0\) has every key masked"):
        masked_softmax(scores, mask)
    weights = masked_softmax(scores, mask, empty_rows="zero")
    assert not torch.isnan(weights).any()
    assert torch.all(weights[1] == 0) and torch.allclose(weights[0].sum(), torch.tensor(1.0, dtype=torch.float64))
    context, _ = attend(scores, _random(2, 3, 4, seed=17), mask, empty_rows="zero")
    assert torch.all(context[1] == 0)


def test_the_scores_are_matmul_and_scale_and_attention_is_their_softmax_times_values():
    q, k, v = _random(2, 3, 4, seed=18), _random(2, 5, 4, seed=19), _random(2, 5, 3, seed=20)
    scores = scaled_dot_product_scores(q, k)
    assert torch.allclose(scores[1, 2, 4], q[1, 2] @ k[1, 4] / 2.0, atol=1e-12)
    context, weights = scaled_dot_product_attention(q, k, v)
    assert torch.allclose(weights, torch.softmax(scores, dim=-1), atol=1e-12)
    assert torch.allclose(context, weights @ v, atol=1e-12)


def test_attention_dropout_drops_weights_before_the_sum_and_returns_them_undropped():
    q, k, v = _random(2, 6, 4, seed=21), _random(2, 6, 4, seed=22), _random(2, 6, 3, seed=23)
    _, plain_weights = scaled_dot_product_attention(q, k, v)
    torch.manual_seed(7)
    context, weights = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    torch.manual_seed(7)
    dropped = F.dropout(plain_weights, 0.5)
    assert torch.equal(weights, plain_weights)
    assert (dropped == 0).any() and not torch.allclose(context, plain_weights @ v)
    assert torch.allclose(context, dropped @ v, atol=1e-12)
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(q, k, v, dropout_p=1.0)


def test_bad_arguments_get_clear_errors():
    q, k = _random(1, 2, 4), _random(1, 3, 5)
    with pytest.raises(ValueError, match="one width; got d_query=4, d_key=5"):
        Attention("dot")(q, k)
    with pytest.raises(ValueError, match="needs d_attention"):
        Attention("additive", 4, 5)
    with pytest.raises(ValueError, match="score must be one of"):
        Attention("cosine")
    with pytest.raises(TypeError, match="mask must be a boolean tensor"):
        masked_softmax(_random(1, 2, 3), torch.ones(1, 2, 3))
    with pytest.raises(ValueError, match="does not broadcast"):
        masked_softmax(_random(1, 2, 3), torch.ones(1, 2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="1-D integer tensor"):
        padding_mask(torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match="shorter than the longest"):
        padding_mask(torch.tensor([1, 5]), 3)


def test_argmax_alignment_and_alignment_error_rate():
    from course_lib.attention import alignment_error_rate, argmax_alignment, corpus_alignment_error_rate
    weights = torch.tensor([[0.7, 0.2, 0.1, 0.0], [0.1, 0.1, 0.8, 0.0], [0.3, 0.6, 0.1, 0.0]])
    links = argmax_alignment(weights, source_length=3)
    assert links == {(0, 0), (1, 2), (2, 1)}
    assert alignment_error_rate(links, links) == 0.0
    assert alignment_error_rate(links, {(0, 1), (1, 0), (2, 2)}) == 1.0
    # one of three sure links found, plus a possible one: 1 - (1 + 2) / (3 + 3) = 0.5
    sure, possible = {(0, 0), (1, 1), (2, 2)}, {(1, 2)}
    assert alignment_error_rate(links, sure, possible) == pytest.approx(0.5)
    # the corpus rate sums counts; it is not the mean of sentence rates
    corpus = corpus_alignment_error_rate([(links, links, None), ({(0, 1)}, {(0, 0), (1, 1), (2, 2)}, None)])
    assert corpus == pytest.approx(1 - 6 / 10)
    with pytest.raises(ValueError, match="needs at least one link"):
        alignment_error_rate(set(), set())
    with pytest.raises(TypeError, match="one sentence's"):
        argmax_alignment(torch.ones(2, 3, 4))
