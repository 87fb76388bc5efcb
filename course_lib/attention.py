"""Attention (Chapter 6): a soft look-up of every encoder state, weighted by how well it matches.

At decoder step ``t`` a **query** ``s`` (the decoder's state) is scored against every **key**
``h_i`` (the encoder's states, ``i = 1..T``); a softmax turns the scores into weights, and the
**context vector** is the weighted sum of the **values** (here the encoder states again)::

    e_{i,t} = score(s, h_i)                          one number per source position
    α_{i,t} = exp(e_{i,t}) / Σ_j exp(e_{j,t})        softmax over i: α_{·,t} is a distribution
    c_t     = Σ_i α_{i,t} h_i  =  H^enc α_t          context vector

Three scores (Luong, Pham and Manning, 2015; Bahdanau, Cho and Bengio, 2015)::

    dot        score(s, h) = sᵀ h                            no parameters; d_query == d_key
    general    score(s, h) = sᵀ W_a h                        bilinear, W_a (d_query, d_key)
    additive   score(s, h) = vᵀ tanh(W_q s + W_k h)           Bahdanau's vᵀ tanh(W [h; s]),
                                                             with W = [W_k, W_q] split by columns

Masks: ``mask`` is boolean and ``True`` where a query **may** look at a key (the convention of
``torch.nn.functional.scaled_dot_product_attention``). A masked score is sent to ``-inf`` before
the softmax, so its weight is exactly 0. :func:`padding_mask` hides the padding of a batch of
source sentences; :func:`causal_mask` hides the future (position ``j > i``) when a sequence
attends to its own past, as the decoder's self-attention in Chapter 7 must; attention from the
decoder to the encoder (cross-attention) needs no causal mask, because the whole source is known
before the first target word is written.

Shapes: queries ``(..., T_q, d_query)``, keys ``(..., T_k, d_key)``, values ``(..., T_k, d_value)``;
the leading dimensions (batch, and heads from Chapter 7 on) broadcast. A single query per example
is a ``T_q = 1`` row. The weights come back as ``(..., T_q, T_k)`` for plotting alignments.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from course_lib import checks

__all__ = [
    "SCORES",
    "AdditiveScore",
    "Attention",
    "alignment_error_rate",
    "argmax_alignment",
    "corpus_alignment_error_rate",
    "DotScore",
    "GeneralScore",
    "attend",
    "causal_mask",
    "masked_softmax",
    "padding_mask",
    "scaled_dot_product_attention",
    "scaled_dot_product_scores",
]

SCORES = ("dot", "general", "additive")


# ---------------------------------------------------------------------------------------------
# Masks and the masked softmax
# ---------------------------------------------------------------------------------------------
def padding_mask(lengths: Tensor, max_length: int | None = None) -> Tensor:
    """``(batch, T)`` boolean mask, ``True`` at the first ``lengths[b]`` positions of row ``b``."""
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise checks.ArgumentError(f"lengths must be a 1-D integer tensor (one length per example), "
                                   f"got shape {tuple(lengths.shape)} and dtype {lengths.dtype}")
    if len(lengths) and int(lengths.min()) < 0:
        raise checks.ArgumentError(f"lengths must be >= 0, got {lengths.tolist()}")
    longest = int(lengths.max()) if len(lengths) else 0
    T = longest if max_length is None else checks.non_negative_int("max_length", max_length)
    if T < longest:
        raise checks.ArgumentError(f"max_length {T} is shorter than the longest sequence ({longest})")
    return torch.arange(T, device=lengths.device) < lengths[:, None]


def causal_mask(T_q: int, T_k: int | None = None) -> Tensor:
    """``(T_q, T_k)`` boolean mask, ``True`` where key ``j <= i``: position ``i`` sees its past only.

    With ``T_k > T_q`` the queries are the *last* ``T_q`` positions (as when new tokens attend to a
    cache of earlier ones): query ``i`` sees keys ``0 .. i + T_k - T_q``.
    """
    T_q = checks.positive_int("T_q", T_q)
    T_k = T_q if T_k is None else checks.positive_int("T_k", T_k)
    if T_k < T_q:
        raise checks.ArgumentError(f"T_k ({T_k}) must be at least T_q ({T_q}) for a causal mask")
    return torch.ones(T_q, T_k, dtype=torch.bool).tril(diagonal=T_k - T_q)


def masked_softmax(scores: Tensor, mask: Tensor | None = None, *, empty_rows: str = "error") -> Tensor:
    """Softmax over the last axis with masked scores set to ``-inf`` first (their weight is 0).

    A row whose keys are all masked has no distribution. ``empty_rows="error"`` (the default) raises
    a ValueError that says which row; ``empty_rows="zero"`` gives that row all-zero weights (so its
    context vector is 0), which is what a batch with empty sequences may want. Never NaN.
    """
    checks.one_of("empty_rows", empty_rows, ("error", "zero"))
    if mask is None:
        return torch.softmax(scores, dim=-1)
    mask = _check_mask(mask, scores.shape)
    empty = ~mask.any(dim=-1)  # broadcast shape without the key axis
    if bool(empty.any()):
        if empty_rows == "error":
            where = tuple(int(i) for i in empty.nonzero()[0])
            raise ValueError(
                f"attention row {where} has every key masked, so its weights are undefined; give "
                "every query at least one key it may see (e.g. no source of length 0), or pass "
                "empty_rows='zero' to get zero weights for such rows")
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    if bool(empty.any()):
        weights = weights.masked_fill(empty.unsqueeze(-1), 0.0)
    return weights


def _check_mask(mask: Tensor, scores_shape: torch.Size) -> Tensor:
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = f"a tensor of dtype {mask.dtype}" if isinstance(mask, Tensor) else type(mask).__name__
        raise checks.ArgumentError(f"mask must be a boolean tensor, True where a query may look at a key; got {got}")
    try:
        torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        raise checks.ArgumentError(f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' "
                                   f"shape {tuple(scores_shape)} (..., T_q, T_k)") from None
    return mask


# ---------------------------------------------------------------------------------------------
# The weighted sum
# ---------------------------------------------------------------------------------------------
def attend(scores: Tensor, values: Tensor, mask: Tensor | None = None, *,
           empty_rows: str = "error", dropout_p: float = 0.0) -> tuple[Tensor, Tensor]:
    """``(context, weights)``: ``α = masked_softmax(scores)``, ``c = α V``.

    scores ``(..., T_q, T_k)``, values ``(..., T_k, d_value)`` -> context ``(..., T_q, d_value)``,
    weights ``(..., T_q, T_k)``. ``dropout_p > 0`` drops weights before the sum (``c = dropout(α) V``,
    as ``F.scaled_dot_product_attention`` does while training); the weights returned are undropped.
    """
    if scores.shape[-1] != values.shape[-2]:
        raise checks.ArgumentError(f"scores have {scores.shape[-1]} keys (last axis) but values have "
                                   f"{values.shape[-2]} positions (axis -2)")
    dropout_p = checks.number("dropout_p", dropout_p, minimum=0.0, below=1.0)
    weights = masked_softmax(scores, mask, empty_rows=empty_rows)
    summed = torch.dropout(weights, dropout_p, train=True) if dropout_p > 0 else weights
    return summed @ values, weights


def scaled_dot_product_scores(queries: Tensor, keys: Tensor, *, scale: float | None = None) -> Tensor:
    """MatMul and Scale: ``Q Kᵀ · scale`` with ``scale = 1/√d_k`` unless given.

    queries ``(..., T_q, d_k)``, keys ``(..., T_k, d_k)`` -> scores ``(..., T_q, T_k)``.
    """
    _check_same_width(queries, keys)
    scale = 1.0 / math.sqrt(queries.shape[-1]) if scale is None else checks.positive_number("scale", scale)
    return (queries @ keys.transpose(-2, -1)) * scale


def scaled_dot_product_attention(queries: Tensor, keys: Tensor, values: Tensor,
                                 mask: Tensor | None = None, *, scale: float | None = None,
                                 empty_rows: str = "error", dropout_p: float = 0.0) -> tuple[Tensor, Tensor]:
    """``softmax(Q Kᵀ · scale) V`` with ``scale = 1/√d_k`` unless given (Chapter 7's attention).

    Written out: MatMul, Scale (:func:`scaled_dot_product_scores`), then Mask, SoftMax, MatMul
    (:func:`attend`). Returns ``(context, weights)``.
    """
    scores = scaled_dot_product_scores(queries, keys, scale=scale)
    return attend(scores, values, mask, empty_rows=empty_rows, dropout_p=dropout_p)


def _check_same_width(queries: Tensor, keys: Tensor) -> None:
    if queries.shape[-1] != keys.shape[-1]:
        raise checks.ArgumentError(
            f"a dot-product score needs queries and keys of one width; got d_query={queries.shape[-1]}, "
            f"d_key={keys.shape[-1]} (use score='general' or 'additive' for different widths)")


# ---------------------------------------------------------------------------------------------
# The three scores, as modules: (queries (..., T_q, d_query), keys (..., T_k, d_key)) -> (..., T_q, T_k)
# ---------------------------------------------------------------------------------------------
class DotScore(nn.Module):
    """``score(s, h) = sᵀ h · scale``; ``scale = 1`` is Luong's dot score, ``1/√d`` Chapter 7's."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = checks.positive_number("scale", scale)

    def forward(self, queries: Tensor, keys: Tensor) -> Tensor:
        _check_same_width(queries, keys)
        return (queries @ keys.transpose(-2, -1)) * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"


class GeneralScore(nn.Module):
    """``score(s, h) = sᵀ W_a h`` (Luong's "general", a bilinear form); ``W_a`` is ``(d_query, d_key)``."""

    def __init__(self, d_query: int, d_key: int) -> None:
        super().__init__()
        d_query, d_key = checks.positive_int("d_query", d_query), checks.positive_int("d_key", d_key)
        self.W_a = nn.Parameter(torch.empty(d_query, d_key))
        bound = 1.0 / math.sqrt(d_key)  # as nn.Linear(d_key, d_query) would start W_a h
        nn.init.uniform_(self.W_a, -bound, bound)

    def forward(self, queries: Tensor, keys: Tensor) -> Tensor:
        return queries @ self.W_a @ keys.transpose(-2, -1)


class AdditiveScore(nn.Module):
    """``score(s, h) = vᵀ tanh(W_q s + W_k h)`` (Bahdanau's, also called "concat").

    ``W_q`` is ``Linear(d_query, d_attention, bias=False)``, ``W_k`` is ``Linear(d_key, d_attention)``
    (its bias is the one bias of ``W [h; s] + b``), ``v`` is ``(d_attention,)``. The keys' half
    ``W_k h`` does not depend on the decoder step; :meth:`project_keys` computes it once per source.
    """

    def __init__(self, d_query: int, d_key: int, d_attention: int) -> None:
        super().__init__()
        d_query, d_key = checks.positive_int("d_query", d_query), checks.positive_int("d_key", d_key)
        d_attention = checks.positive_int("d_attention", d_attention)
        self.W_q = nn.Linear(d_query, d_attention, bias=False)
        self.W_k = nn.Linear(d_key, d_attention)
        bound = 1.0 / math.sqrt(d_attention)
        self.v = nn.Parameter(torch.empty(d_attention).uniform_(-bound, bound))

    def project_keys(self, keys: Tensor) -> Tensor:
        """``W_k h`` for every key: ``(..., T_k, d_attention)``."""
        return self.W_k(keys)

    def forward(self, queries: Tensor, keys: Tensor, projected_keys: Tensor | None = None) -> Tensor:
        projected = self.project_keys(keys) if projected_keys is None else projected_keys
        # (..., T_q, 1, d_a) + (..., 1, T_k, d_a) -> (..., T_q, T_k, d_a) -> (..., T_q, T_k)
        hidden = torch.tanh(self.W_q(queries).unsqueeze(-2) + projected.unsqueeze(-3))
        return hidden @ self.v


class Attention(nn.Module):
    """A score, a masked softmax and the weighted sum: Chapter 6's attention over encoder states.

    ``Attention("dot")``, ``Attention("general", d_query, d_key)`` or
    ``Attention("additive", d_query, d_key, d_attention)``; then
    ``context, weights = attention(queries, keys, values, mask)``. ``values`` default to the keys
    (in the encoder-decoder the encoder states are both).
    """

    def __init__(self, score: str = "dot", d_query: int | None = None, d_key: int | None = None,
                 d_attention: int | None = None, *, scale: float = 1.0) -> None:
        super().__init__()
        self.score_name = checks.one_of("score", score, SCORES)
        if score == "dot":
            self.score = DotScore(scale)
        elif score == "general":
            self.score = GeneralScore(_required("d_query", d_query, score), _required("d_key", d_key, score))
        else:
            self.score = AdditiveScore(_required("d_query", d_query, score), _required("d_key", d_key, score),
                                       _required("d_attention", d_attention, score))

    def forward(self, queries: Tensor, keys: Tensor, values: Tensor | None = None, mask: Tensor | None = None,
                *, empty_rows: str = "error") -> tuple[Tensor, Tensor]:
        """``(context (..., T_q, d_value), weights (..., T_q, T_k))``."""
        values = keys if values is None else values
        if keys.shape[-2] != values.shape[-2]:
            raise checks.ArgumentError(
                f"keys have {keys.shape[-2]} positions but values have {values.shape[-2]}")
        return attend(self.score(queries, keys), values, mask, empty_rows=empty_rows)


def _required(name: str, value: int | None, score: str) -> int:
    if value is None:
        raise checks.ArgumentError(f"the {score!r} score has weights, so it needs {name}")
    return checks.positive_int(name, value)


# ---------------------------------------------------------------------------------------------
# Alignments read off the weights
# ---------------------------------------------------------------------------------------------
def argmax_alignment(weights: Tensor, target_length: int | None = None,
                     source_length: int | None = None) -> set[tuple[int, int]]:
    """The links ``(target position t, source position i)`` with ``i = argmax_i α_{i,t}``.

    ``weights`` is one sentence's ``(T, S)`` matrix; ``target_length`` / ``source_length`` cut off
    padding (and, e.g., the EOS step) before reading the links.
    """
    if not isinstance(weights, Tensor) or weights.dim() != 2:
        raise checks.ArgumentError("weights must be one sentence's (target, source) matrix of attention weights")
    T = weights.shape[0] if target_length is None else checks.integer("target_length", target_length, minimum=0,
                                                                       maximum=weights.shape[0])
    S = weights.shape[1] if source_length is None else checks.integer("source_length", source_length, minimum=1,
                                                                       maximum=weights.shape[1])
    return {(t, int(i)) for t, i in enumerate(weights[:T, :S].argmax(dim=-1).tolist())}


def alignment_error_rate(predicted: set[tuple[int, int]], sure: set[tuple[int, int]],
                         possible: set[tuple[int, int]] | None = None) -> float:
    """Och and Ney's (2003) alignment error rate, 0 for a perfect alignment::

        AER = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|)       S ⊆ P: sure and possible links

    With only sure links (``possible=None``, so ``P = S``) it is ``1 - F1`` of the links.
    Corpus-level AER adds the counts of all sentences: :func:`corpus_alignment_error_rate`.
    """
    return corpus_alignment_error_rate([(predicted, sure, possible)])


def corpus_alignment_error_rate(sentences) -> float:
    """AER over many sentences, each ``(predicted, sure, possible or None)``: counts are summed first."""
    both_sure = both_possible = predicted_total = sure_total = 0
    for predicted, sure, possible in sentences:
        predicted, sure = set(predicted), set(sure)
        possible = sure if possible is None else set(possible) | sure
        both_sure += len(predicted & sure)
        both_possible += len(predicted & possible)
        predicted_total += len(predicted)
        sure_total += len(sure)
    if predicted_total + sure_total == 0:
        raise checks.ArgumentError("no links at all: the alignment error rate needs at least one link")
    return 1.0 - (both_sure + both_possible) / (predicted_total + sure_total)
