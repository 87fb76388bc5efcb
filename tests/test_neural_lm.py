"""course_lib.neural_lm against PyTorch's own softmax, cross-entropy and layers."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.neural_lm import (
    FixedWindowLM,
    bits_per_token,
    context_windows,
    cross_entropy,
    embedding_via_one_hot,
    log_softmax,
    logsumexp,
    naive_softmax,
    one_hot,
    perplexity_from_loss,
    softmax,
)

DTYPES = [torch.float32, torch.float64]


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}


def random_logits(*shape: int, dtype: torch.dtype = torch.float32, scale: float = 3.0, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=generator, dtype=torch.float64)).to(dtype)


# --------------------------------------------------------------------------- one-hot and embeddings


def test_one_hot_matches_torch():
    ids = torch.tensor([[0, 3, 2], [4, 4, 1]])
    expected = F.one_hot(ids, num_classes=5).float()
    assert torch.equal(one_hot(ids, 5), expected)


def test_embedding_lookup_is_one_hot_times_E():
    torch.manual_seed(0)
    embedding = nn.Embedding(7, 4)
    ids = torch.tensor([[1, 6, 0], [3, 3, 2]])
    torch.testing.assert_close(embedding_via_one_hot(ids, embedding.weight), embedding(ids))


def test_one_hot_rejects_out_of_range_and_float_ids():
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        one_hot(torch.tensor([0, 5]), 5)
    with pytest.raises(TypeError, match="integer"):
        one_hot(torch.tensor([0.0, 1.0]), 5)
    with pytest.raises(ValueError, match="vocab_size"):
        one_hot(torch.tensor([0]), 0)


# --------------------------------------------------------------------------- softmax family


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmax_log_softmax_logsumexp_match_torch(dtype, dim):
    z = random_logits(4, 6, 5, dtype=dtype)
    torch.testing.assert_close(softmax(z, dim=dim), torch.softmax(z, dim=dim), **tolerance(dtype))
    torch.testing.assert_close(log_softmax(z, dim=dim), torch.log_softmax(z, dim=dim), **tolerance(dtype))
    torch.testing.assert_close(logsumexp(z, dim=dim), torch.logsumexp(z, dim=dim), **tolerance(dtype))
    torch.testing.assert_close(
        logsumexp(z, dim=dim, keepdim=True), torch.logsumexp(z, dim=dim, keepdim=True), **tolerance(dtype)
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_naive_softmax_overflows_where_stable_softmax_does_not(dtype):
    z = torch.tensor([[1e4, 0.0, -1e4], [1e4, 1e4 - 1.0, 1e4 - 2.0]], dtype=dtype)
    assert not torch.isfinite(naive_softmax(z)).all()  # exp(1e4) = inf, inf / inf = nan
    ours = softmax(z)
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, torch.softmax(z, dim=-1), **tolerance(dtype))
    torch.testing.assert_close(log_softmax(z), torch.log_softmax(z, dim=-1), **tolerance(dtype))
    torch.testing.assert_close(logsumexp(z), torch.logsumexp(z, dim=-1), **tolerance(dtype))


def test_naive_softmax_agrees_on_small_logits():
    z = random_logits(3, 8, dtype=torch.float64)
    torch.testing.assert_close(naive_softmax(z), torch.softmax(z, dim=-1))


def test_masked_logits_follow_torch():
    # -inf marks a forbidden token (the attention chapters mask this way); a fully masked row
    # has log-sum-exp -inf, as in PyTorch, rather than nan.
    z = torch.tensor([[0.5, -math.inf, 2.0], [-math.inf, -math.inf, -math.inf]])
    torch.testing.assert_close(softmax(z[:1]), torch.softmax(z[:1], dim=-1))
    torch.testing.assert_close(logsumexp(z), torch.logsumexp(z, dim=-1))


def test_softmax_gradient_matches_torch():
    z = random_logits(3, 5, dtype=torch.float64).requires_grad_()
    weights = random_logits(3, 5, dtype=torch.float64, seed=1)
    (ours,) = torch.autograd.grad((softmax(z) * weights).sum(), z)
    (reference,) = torch.autograd.grad((torch.softmax(z, dim=-1) * weights).sum(), z)
    torch.testing.assert_close(ours, reference)


def test_softmax_rejects_integer_logits():
    with pytest.raises(TypeError, match="floating-point"):
        softmax(torch.tensor([1, 2, 3]))


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-80, 80, allow_nan=False), min_size=1, max_size=12),
    shift=st.floats(-1e3, 1e3, allow_nan=False),
)
def test_softmax_is_a_distribution_invariant_to_a_shift(values, shift):
    z = torch.tensor(values, dtype=torch.float64)
    p = softmax(z)
    assert (p >= 0).all()
    assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-12)
    torch.testing.assert_close(softmax(z + shift), p, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- cross-entropy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [None, 2, -100])
def test_cross_entropy_matches_torch(dtype, reduction, ignore_index):
    V = 6
    logits = random_logits(10, V, dtype=dtype)
    targets = torch.randint(0, V, (10,), generator=torch.Generator().manual_seed(1))
    if ignore_index == -100:
        targets[::3] = -100  # padding positions
    ours = cross_entropy(logits, targets, reduction=reduction, ignore_index=ignore_index)
    reference = F.cross_entropy(
        logits, targets, reduction=reduction, ignore_index=-100 if ignore_index is None else ignore_index
    )
    torch.testing.assert_close(ours, reference, **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_on_sequences_and_huge_logits(dtype):
    # (batch, time, V) with the vocabulary last; torch wants it second.
    logits = random_logits(2, 5, 7, dtype=dtype, scale=1e4)
    targets = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(2))
    ours = cross_entropy(logits, targets, reduction="none")
    assert torch.isfinite(ours).all()
    naive = -torch.log(naive_softmax(logits)).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    assert not torch.isfinite(naive).all()
    reference = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    torch.testing.assert_close(ours, reference, **tolerance(dtype))


@pytest.mark.parametrize("ignore_index", [None, 0])
def test_cross_entropy_gradient_matches_torch(ignore_index):
    logits = random_logits(8, 5, dtype=torch.float64).requires_grad_()
    targets = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    (ours,) = torch.autograd.grad(cross_entropy(logits, targets, ignore_index=ignore_index), logits)
    (reference,) = torch.autograd.grad(
        F.cross_entropy(logits, targets, ignore_index=-100 if ignore_index is None else ignore_index), logits
    )
    torch.testing.assert_close(ours, reference)


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
    # The chapter's result: d(-log p_y)/dz = softmax(z) - onehot(y).
    logits = random_logits(1, 4, dtype=torch.float64).requires_grad_()
    targets = torch.tensor([2])
    (gradient,) = torch.autograd.grad(cross_entropy(logits, targets, reduction="sum"), logits)
    expected = torch.softmax(logits.detach(), dim=-1) - F.one_hot(targets, 4).double()
    torch.testing.assert_close(gradient, expected)


def test_cross_entropy_errors():
    logits = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="do not match logits"):
        cross_entropy(logits, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        cross_entropy(logits, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(TypeError, match="integer"):
        cross_entropy(logits, torch.zeros(4))
    with pytest.raises(ValueError, match="reduction"):
        cross_entropy(logits, torch.zeros(4, dtype=torch.long), reduction="average")


# --------------------------------------------------------------------------- the model


@pytest.mark.parametrize("direct_connections", [False, True])
def test_fixed_window_forward_equals_manual_computation(direct_connections):
    torch.manual_seed(0)
    V, context, m, h = 11, 3, 4, 5
    model = FixedWindowLM(V, context, m, h, direct_connections=direct_connections).double()
    contexts = torch.randint(0, V, (6, context))

    C = model.C.weight
    H, d = model.H.weight, model.H.bias
    U, b = model.U.weight, model.U.bias
    expected = []
    for row in contexts.tolist():
        x = torch.cat([C[w] for w in row])  # [C(w_{t-n+1}); ...; C(w_{t-1})]
        a = torch.tanh(H @ x + d)
        y = U @ a + b
        if direct_connections:
            y = y + model.W.weight @ x
        expected.append(y)
    torch.testing.assert_close(model(contexts), torch.stack(expected))


def test_fixed_window_state_dict_names_follow_the_paper():
    model = FixedWindowLM(10, 2, 3, 4, direct_connections=True)
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    assert shapes == {
        "C.weight": (10, 3),
        "H.weight": (4, 6),
        "H.bias": (4,),
        "U.weight": (10, 4),
        "U.bias": (10,),
        "W.weight": (10, 6),
    }
    assert model.d is model.H.bias and model.b is model.U.bias
    assert "W.weight" not in FixedWindowLM(10, 2, 3, 4).state_dict()


def test_tied_embeddings_score_words_with_the_input_embedding_matrix():
    torch.manual_seed(0)
    V, context, m, h = 11, 3, 4, 5
    model = FixedWindowLM(V, context, m, h, tie_embeddings=True).double()
    contexts = torch.randint(0, V, (6, context))
    C, P = model.C.weight, model.P.weight
    expected = []
    for row in contexts.tolist():
        a = torch.tanh(model.H.weight @ torch.cat([C[w] for w in row]) + model.H.bias)
        expected.append(C @ (P @ a) + model.b)  # y = b + C (P a)
    torch.testing.assert_close(model(contexts), torch.stack(expected))
    assert model.output_matrix() is model.C.weight and model.b is model.output_bias


def test_tied_embeddings_replace_U_by_P_and_stay_one_matrix_through_training():
    V, context, m, h = 50, 3, 4, 8
    untied, tied = FixedWindowLM(V, context, m, h), FixedWindowLM(V, context, m, h, tie_embeddings=True)
    count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    assert count(untied) - count(tied) == V * h - m * h  # U (V, h) becomes P (m, h)
    shapes = {name: tuple(t.shape) for name, t in tied.state_dict().items()}
    assert shapes == {"C.weight": (V, m), "H.weight": (h, context * m), "H.bias": (h,), "P.weight": (m, h),
                      "output_bias": (V,)}
    contexts, targets = torch.randint(0, V, (16, context)), torch.randint(0, V, (16,))
    before = tied.C.weight.detach().clone()
    optimizer = torch.optim.SGD(tied.parameters(), lr=0.5)
    torch.nn.functional.cross_entropy(tied(contexts), targets).backward()
    # the gradient reaches the target words' rows of C through the output, not only the context's
    unused_rows = sorted(set(range(V)) - set(contexts.flatten().tolist()))
    assert tied.C.weight.grad[unused_rows].abs().sum() > 0
    optimizer.step()
    assert not torch.equal(tied.C.weight, before) and tied.output_matrix() is tied.C.weight


def test_tie_embeddings_must_be_a_bool():
    with pytest.raises(ValueError, match="tie_embeddings must be one of False, True"):
        FixedWindowLM(10, 2, 3, 4, tie_embeddings="yes")


def test_next_token_distribution_with_temperature():
    torch.manual_seed(0)
    model = FixedWindowLM(9, 2, 3, 8)
    contexts = torch.tensor([[1, 2], [3, 8]])
    logits = model(contexts).detach()
    for temperature in (0.5, 1.0, 2.0):
        p = model.next_token_distribution(contexts, temperature=temperature)
        torch.testing.assert_close(p, torch.softmax(logits / temperature, dim=-1))
    single = model.next_token_distribution(torch.tensor([1, 2]))
    assert single.shape == (9,)
    assert math.isclose(float(single.sum()), 1.0, rel_tol=1e-6)
    cold = model.next_token_distribution(contexts, temperature=1e-3)
    assert torch.equal(cold.argmax(-1), logits.argmax(-1)) and (cold.max(-1).values > 0.99).all()
    with pytest.raises(ValueError, match="temperature"):
        model.next_token_distribution(contexts, temperature=0.0)


def test_fixed_window_errors():
    model = FixedWindowLM(5, 3, 2, 2)
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        model(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        model(torch.tensor([[0, 1, 5]]))
    with pytest.raises(TypeError, match="integer"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="hidden_dim"):
        FixedWindowLM(5, 3, 2, 0)


# --------------------------------------------------------------------------- measuring and windows


def test_perplexity_and_bits():
    assert math.isclose(perplexity_from_loss(math.log(50)), 50.0)
    assert math.isclose(bits_per_token(math.log(2)), 1.0)
    assert math.isclose(bits_per_token(math.log(256)), 8.0)
    torch.testing.assert_close(perplexity_from_loss(torch.tensor(math.log(7.0))), torch.tensor(7.0))
    with pytest.raises(ValueError, match=">= 0"):
        perplexity_from_loss(-0.5)
    with pytest.raises(ValueError, match=">= 0"):
        bits_per_token(float("nan"))


@pytest.mark.parametrize("context_size", [1, 2, 4])
@pytest.mark.parametrize("boundary_id", [None, 99])
def test_context_windows_match_brute_force(context_size, boundary_id):
    ids = [5, 3, 8, 1, 0, 7, 2]
    padded = ([boundary_id] * context_size if boundary_id is not None else []) + ids
    expected_contexts = [padded[i : i + context_size] for i in range(len(padded) - context_size)]
    expected_targets = [padded[i + context_size] for i in range(len(padded) - context_size)]
    contexts, targets = context_windows(torch.tensor(ids), context_size, boundary_id=boundary_id)
    assert contexts.tolist() == expected_contexts
    assert targets.tolist() == expected_targets
    assert contexts.dtype == targets.dtype == torch.long
    if boundary_id is not None:
        assert targets.tolist() == ids  # every token is predicted once


def test_context_windows_errors():
    with pytest.raises(ValueError, match="boundary_id"):
        context_windows([1, 2], 2)
    with pytest.raises(ValueError, match="1-D"):
        context_windows(torch.zeros(2, 3, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="context_size"):
        context_windows([1, 2, 3], 0)
