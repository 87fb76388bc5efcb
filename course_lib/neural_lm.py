"""Chapter 3: from counting to learning — the fixed-window neural language model.

An n-gram model estimates P(w_t | w_{t-n+1}, ..., w_{t-1}) by counting; Bengio et al. (2003)
estimate it with a function that has *parameters*, so that similar contexts share strength:

    x = [C(w_{t-n+1}); ...; C(w_{t-1})]          concatenated word embeddings, (n-1)·m numbers
    a = tanh(H x + d)                             hidden layer, h numbers
    y = b + W x + U a                             one score (logit) per word of the vocabulary
    P(w_t = i | context) = softmax(y)_i

The model is trained by minimising the cross-entropy, the mean negative log-likelihood of the
observed next words; its exponential is the perplexity an n-gram chapter already measured.

This module writes out the pieces the chapter teaches: one-hot vectors and why an embedding
lookup is the same as a matrix product, a softmax that does not overflow, log-sum-exp, the
cross-entropy as a negative log-likelihood, and the model itself.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from course_lib.checks import one_of, positive_int, positive_number
from course_lib.language_model import WindowLanguageModel

Tensor = torch.Tensor

__all__ = [
    "one_hot",
    "embedding_via_one_hot",
    "naive_softmax",
    "softmax",
    "logsumexp",
    "log_softmax",
    "cross_entropy",
    "FixedWindowLM",
    "perplexity_from_loss",
    "bits_per_token",
    "context_windows",
]


# --------------------------------------------------------------------------- input checks


def _check_ids(ids: Tensor, vocab_size: int, name: str = "ids") -> None:
    """Token ids must be an integer tensor with every value in [0, vocab_size)."""
    if not isinstance(ids, Tensor):
        raise TypeError(f"{name} must be a torch tensor of token ids, got {type(ids).__name__}")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids (e.g. torch.long), got dtype {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(
            f"{name} must lie in [0, {vocab_size}) for a vocabulary of {vocab_size} tokens, "
            f"got values from {int(ids.min())} to {int(ids.max())}"
        )


def _check_logits(z: Tensor, name: str = "logits") -> None:
    if not isinstance(z, Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(z).__name__}")
    if not z.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {z.dtype}; call .float() first")
    if z.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension (the scores over the vocabulary)")


# --------------------------------------------------------------------------- one-hot and embeddings


def one_hot(ids: Tensor, vocab_size: int) -> Tensor:
    """The one-hot vectors of token ids: shape ``ids.shape + (vocab_size,)``, float32.

    Row ``k`` of the result has a single 1, in column ``ids[k]``.
    """
    positive_int("vocab_size", vocab_size)
    _check_ids(ids, vocab_size)
    vectors = torch.zeros(*ids.shape, vocab_size, device=ids.device)
    return vectors.scatter_(-1, ids.long().unsqueeze(-1), 1.0)


def embedding_via_one_hot(ids: Tensor, E: Tensor) -> Tensor:
    """Embed token ids as a matrix product, ``one_hot(ids) @ E``: shape ``ids.shape + (m,)``.

    ``E`` is the embedding matrix ``(V, m)``. Multiplying a one-hot row by ``E`` picks out one
    row of ``E``, which is exactly what ``nn.Embedding`` does — by indexing, without the
    V-fold wasted multiplications by zero. The chapter uses this to show that an embedding
    layer is a linear layer on one-hot inputs.
    """
    if not isinstance(E, Tensor) or E.dim() != 2:
        raise ValueError("E must be a 2-D embedding matrix of shape (vocab_size, embedding_dim)")
    return one_hot(ids, E.shape[0]).to(E.dtype) @ E


# --------------------------------------------------------------------------- softmax and friends


def naive_softmax(z: Tensor, dim: int = -1) -> Tensor:
    """``exp(z) / sum(exp(z))`` written out literally.

    Correct on paper, broken in floating point: ``exp(1000.)`` is ``inf`` in float32 and
    float64, and ``inf / inf`` is ``nan``. Kept to show the failure that :func:`softmax` fixes.
    """
    _check_logits(z)
    e = torch.exp(z)
    return e / e.sum(dim=dim, keepdim=True)


def _safe_max(z: Tensor, dim: int) -> Tensor:
    """The max along ``dim`` (kept), with 0 where the max is infinite.

    Subtracting an infinite max would turn a row of ``-inf`` (everything masked) into ``nan``;
    a finite shift is all the log-sum-exp trick needs. The shift is a constant, so it carries
    no gradient.
    """
    m = z.detach().amax(dim=dim, keepdim=True)
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))


def logsumexp(z: Tensor, dim: int = -1, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(z)))`` along ``dim``, computed as ``M + log(sum(exp(z - M)))`` with M = max(z).

    After subtracting the max the largest exponent is ``exp(0) = 1``: nothing overflows, and
    the sum is at least 1, so its logarithm is finite.
    """
    _check_logits(z)
    M = _safe_max(z, dim)
    out = M + torch.log(torch.exp(z - M).sum(dim=dim, keepdim=True))
    return out if keepdim else out.squeeze(dim)


def softmax(z: Tensor, dim: int = -1) -> Tensor:
    """Probabilities ``exp(z_i) / sum_j exp(z_j)`` along ``dim``, stable for any finite logits.

    Softmax is unchanged by adding a constant to every logit, so subtracting the max changes
    nothing mathematically and keeps every ``exp`` in (0, 1].
    """
    _check_logits(z)
    e = torch.exp(z - _safe_max(z, dim))
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(z: Tensor, dim: int = -1) -> Tensor:
    """``log softmax(z) = z - logsumexp(z)`` along ``dim``.

    Computed directly rather than as ``log(softmax(z))``: a probability that underflows to 0
    would give ``-inf``, while ``z - logsumexp(z)`` stays finite. The max is subtracted first,
    ``(z - M) - log(sum(exp(z - M)))``, so that large logits (say 1e4, where float32 resolves
    only steps of 1e-3) never pass through a large intermediate and lose their digits.
    """
    _check_logits(z)
    shifted = z - _safe_max(z, dim)
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


_REDUCTIONS = ("mean", "sum", "none")


def cross_entropy(
    logits: Tensor,
    targets: Tensor,
    reduction: str = "mean",
    ignore_index: int | None = None,
) -> Tensor:
    """Cross-entropy as the negative log-likelihood of the targets: ``-log softmax(logits)[target]``.

    Args:
        logits: ``(..., V)`` scores; the vocabulary is the *last* dimension (for
            ``(batch, time, V)`` logits this differs from ``F.cross_entropy``, which wants it second).
        targets: ``(...)`` token ids, the leading shape of ``logits``.
        reduction: ``"mean"`` over the counted positions, ``"sum"``, or ``"none"`` for the
            per-position losses ``(...)``.
        ignore_index: a target id that contributes nothing (padding): its loss is 0 and it is
            not counted in the mean. If every position is ignored the mean is ``0 / 0 = nan``,
            as in PyTorch.
    """
    _check_logits(logits)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not isinstance(targets, Tensor) or targets.is_floating_point() or targets.dtype == torch.bool:
        raise TypeError("targets must be an integer tensor of token ids (e.g. torch.long)")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"targets of shape {tuple(targets.shape)} do not match logits of shape {tuple(logits.shape)}: "
            f"targets must have the logits' shape without the last (vocabulary) dimension, "
            f"i.e. {tuple(logits.shape[:-1])}"
        )
    V = logits.shape[-1]
    counted = torch.ones_like(targets, dtype=torch.bool) if ignore_index is None else targets != ignore_index
    _check_ids(targets[counted], V, name="targets")

    safe_targets = torch.where(counted, targets, torch.zeros_like(targets)).long()  # any valid index; masked below
    log_p = log_softmax(logits, dim=-1).gather(-1, safe_targets.unsqueeze(-1)).squeeze(-1)
    nll = torch.where(counted, -log_p, torch.zeros_like(log_p))
    if reduction == "none":
        return nll
    if reduction == "sum":
        return nll.sum()
    return nll.sum() / counted.sum()


# --------------------------------------------------------------------------- the model


class FixedWindowLM(nn.Module, WindowLanguageModel):
    """The neural probabilistic language model of Bengio et al. (2003).

    As a :class:`~course_lib.language_model.LanguageModel` its state is the last n-1 ids, and a
    sequence's first id (the start symbol) pads the window before it, as ``context_windows``'
    ``boundary_id`` does.

    ``P(w_t | w_{t-n+1}, ..., w_{t-1}) = softmax(y)``, with

        x = [C(w_{t-n+1}); ...; C(w_{t-1})]     (batch, (n-1)·m)
        a = tanh(H x + d)                        (batch, h)
        y = b + W x + U a                        (batch, V)     (W x only with direct connections)

    The paper's parameters are stored in ordinary PyTorch layers, so the state dict is the
    one any PyTorch user expects; the names map as follows (shapes as PyTorch lays them out,
    ``Linear.weight`` is ``(d_out, d_in)``):

    ==========  ============  ======================
    paper       state dict    shape
    ==========  ============  ======================
    C           ``C.weight``  ``(V, m)``
    H           ``H.weight``  ``(h, (n-1)·m)``
    d           ``H.bias``    ``(h,)``
    U           ``U.weight``  ``(V, h)``
    b           ``U.bias``    ``(V,)``
    W           ``W.weight``  ``(V, (n-1)·m)``, only with ``direct_connections=True``
    ==========  ============  ======================

    The biases are also reachable by their paper names, ``model.d`` and ``model.b``.

    **Weight tying** (``tie_embeddings=True``; Press and Wolf, 2017; Inan et al., 2017). A logit
    ``y_i = b_i + U_i · a`` is a dot product of the hidden vector with a row of U that belongs to
    word i, just as row i of C does at the input. Tying makes them one matrix: the hidden layer
    predicts an embedding ``P a`` (m numbers) and the logits are its dot products with every
    word's input embedding,

        y = b + C (P a)                          (batch, V)      C is (V, m), P is (m, h)

    so U ``(V, h)`` is replaced by P ``(m, h)`` (state dict ``P.weight``) and the output bias b is
    ``output_bias``; ``C.weight`` is the only embedding matrix and serves both ends.

    Args:
        vocab_size: V, the number of token ids.
        context_size: n-1, how many previous tokens the model sees.
        embedding_dim: m, the size of each word vector.
        hidden_dim: h, the width of the tanh layer.
        direct_connections: add the paper's linear shortcut ``W x`` from embeddings to logits.
        tie_embeddings: compute the logits with the input embedding matrix C (``y = b + C P a``)
            instead of a separate output matrix U.
    """

    def __init__(
        self,
        vocab_size: int,
        context_size: int,
        embedding_dim: int,
        hidden_dim: int,
        direct_connections: bool = False,
        tie_embeddings: bool = False,
    ) -> None:
        super().__init__()
        for name, value in [
            ("vocab_size", vocab_size),
            ("context_size", context_size),
            ("embedding_dim", embedding_dim),
            ("hidden_dim", hidden_dim),
        ]:
            positive_int(name, value)
        self.vocab_size = vocab_size
        self.context_size = context_size
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.direct_connections = direct_connections
        self.tie_embeddings = bool(one_of("tie_embeddings", tie_embeddings, (False, True)))

        window = context_size * embedding_dim  # (n-1)·m, the length of x
        self.C = nn.Embedding(vocab_size, embedding_dim)
        self.H = nn.Linear(window, hidden_dim)  # weight H, bias d
        if self.tie_embeddings:
            self.P = nn.Linear(hidden_dim, embedding_dim, bias=False)  # the predicted embedding P a
            self.output_bias = nn.Parameter(torch.zeros(vocab_size))  # b
            self.U = None
        else:
            self.U = nn.Linear(hidden_dim, vocab_size)  # weight U, bias b
        self.W = nn.Linear(window, vocab_size, bias=False) if direct_connections else None

    @property
    def d(self) -> nn.Parameter:
        """The hidden-layer bias d, stored as ``H.bias``."""
        return self.H.bias

    @property
    def b(self) -> nn.Parameter:
        """The output bias b, stored as ``U.bias`` (``output_bias`` when the embeddings are tied)."""
        return self.output_bias if self.U is None else self.U.bias

    def output_matrix(self) -> Tensor:
        """The matrix whose rows score the words at the output, ``(V, ·)``: U, or C itself when tied."""
        return self.C.weight if self.U is None else self.U.weight

    def forward(self, context_ids: Tensor) -> Tensor:
        """Next-token logits y for each context.

        Args:
            context_ids: ``(batch, n-1)`` token ids, oldest first (any leading shape works).

        Returns:
            logits ``(batch, V)``; ``softmax`` of a row is the next-token distribution.
        """
        _check_ids(context_ids, self.vocab_size, name="context_ids")
        if context_ids.dim() == 0 or context_ids.shape[-1] != self.context_size:
            raise ValueError(
                f"context_ids must have shape (batch, {self.context_size}) — the model's n-1 = "
                f"{self.context_size} previous tokens — got shape {tuple(context_ids.shape)}"
            )
        x = self.C(context_ids).flatten(-2)  # (batch, n-1, m) -> (batch, (n-1)·m): the concatenation
        a = torch.tanh(self.H(x))  # tanh(H x + d)
        if self.U is None:
            y = nn.functional.linear(self.P(a), self.C.weight, self.output_bias)  # C (P a) + b
        else:
            y = self.U(a)  # U a + b
        if self.W is not None:
            y = y + self.W(x)
        return y

    @torch.no_grad()
    def next_token_distribution(self, context_ids: Tensor, temperature: float = 1.0) -> Tensor:
        """``softmax(y / temperature)``: ``(batch, V)``, or ``(V,)`` for a single context ``(n-1,)``.

        Temperature below 1 sharpens the distribution towards the most likely token, above 1
        flattens it towards uniform.
        """
        temperature = positive_number("temperature", temperature)
        return softmax(self(context_ids) / temperature, dim=-1)

    def window_log_probs(self, windows: Tensor) -> Tensor:
        """``log softmax(y)`` for windows of n-1 ids ``(positions, n-1)``: ``(positions, V)``."""
        return log_softmax(self(windows), dim=-1)


# --------------------------------------------------------------------------- measuring


def _check_nll(mean_nll: float | Tensor) -> None:
    value = mean_nll.detach() if isinstance(mean_nll, Tensor) else torch.as_tensor(float(mean_nll))
    if torch.isnan(value).any() or (value < 0).any():
        raise ValueError(f"a mean negative log-likelihood is a number >= 0, got {mean_nll!r}")


def perplexity_from_loss(mean_nll: float | Tensor) -> float | Tensor:
    """Perplexity ``exp(mean NLL)`` from a mean cross-entropy in nats.

    The effective number of equally likely choices the model hesitates between: a uniform
    guess over V tokens has mean NLL ``log V`` and perplexity V.
    """
    _check_nll(mean_nll)
    return torch.exp(mean_nll) if isinstance(mean_nll, Tensor) else math.exp(mean_nll)


def bits_per_token(mean_nll: float | Tensor) -> float | Tensor:
    """The mean NLL in bits, ``mean_nll / ln 2``: the code length per token an ideal coder would reach."""
    _check_nll(mean_nll)
    return mean_nll / math.log(2)


# --------------------------------------------------------------------------- training examples


def context_windows(
    ids: Tensor | list[int],
    context_size: int,
    boundary_id: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Every (context, next token) pair of a token sequence, for the fixed-window model.

    Example ``i`` is ``contexts[i] = ids[i : i+n-1]`` and ``targets[i] = ids[i+n-1]``.

    Args:
        ids: a 1-D sequence of token ids of length L.
        context_size: n-1.
        boundary_id: if given, the sequence is first left-padded with n-1 copies of this id
            (a sentence-start marker), so that every token, the first ones included, is a target.

    Returns:
        ``contexts`` ``(N, n-1)`` and ``targets`` ``(N,)``, both ``torch.long``, with
        N = L - (n-1) without padding and N = L with it.
    """
    ids = torch.as_tensor(ids)
    if ids.numel() == 0:
        ids = ids.long()  # an empty list would otherwise become a float tensor
    if ids.dim() != 1:
        raise ValueError(f"ids must be a 1-D sequence of token ids, got shape {tuple(ids.shape)}")
    if ids.is_floating_point() or ids.dtype == torch.bool:
        raise TypeError(f"ids must be integer token ids, got dtype {ids.dtype}")
    positive_int("context_size", context_size)
    ids = ids.long()
    if boundary_id is not None:
        ids = torch.cat([torch.full((context_size,), int(boundary_id), dtype=torch.long), ids])
    if ids.numel() <= context_size:
        raise ValueError(
            f"a sequence of {ids.numel()} tokens has no window of {context_size} context tokens plus a target; "
            "pass a longer sequence or a boundary_id to pad it"
        )
    windows = ids.unfold(0, context_size + 1, 1)  # (N, n): each row is n consecutive tokens
    return windows[:, :-1].contiguous(), windows[:, -1].contiguous()
