"""The Transformer (Chapter 7): attention between all positions, no recurrence (Vaswani et al., 2017).

The pieces, each with its equation in its docstring and the code that is that equation:

* :class:`MultiHeadAttention` on Chapter 6's scaled dot-product attention
  (:mod:`course_lib.attention`, written out) or on ``F.scaled_dot_product_attention`` (``fused``,
  same parameters, the default for training);
* :func:`sinusoidal_positions` / :class:`SinusoidalPositions` and :class:`LearnedPositions`;
* :class:`LayerNorm` (written out, or ``F.layer_norm`` when ``fused``) and :class:`FeedForward`;
* :class:`EncoderLayer` and :class:`DecoderLayer`, post-norm (the paper's) or pre-norm;
* :class:`Transformer`, the encoder-decoder of the paper on embedded inputs, as ``nn.Transformer``,
  and :class:`TransformerSeq2Seq`, the translation model around it (embeddings, positions, read-out)
  with Chapter 6's ``Seq2Seq`` interface;
* :class:`TransformerLM`, a decoder-only language model (token embedding, positions, pre-norm
  :class:`DecoderBlock` s with causal self-attention, final norm, read-out): the base of Chapters
  8, 10 and 13. Its state is a key-value cache, so :meth:`TransformerLM.step` costs one position.

Shapes: ``(batch, time, d_model)`` between layers; inside attention ``(batch, heads, time, d_k)``
with ``d_k = d_model / heads``.

Masks are boolean and ``True`` where a query **may** look at a key, as in Chapter 6 and
``F.scaled_dot_product_attention`` (PyTorch's ``nn.MultiheadAttention`` and ``nn.Transformer*``
take the opposite, ``True`` = hidden, for ``key_padding_mask``). Padding is given per sequence as
``(batch, time)`` with ``True`` at real tokens (:func:`course_lib.attention.padding_mask`).

Parameter names follow PyTorch's where PyTorch has the same piece: a :class:`MultiHeadAttention`
keeps ``in_proj_weight`` (``W^Q; W^K; W^V`` stacked), ``in_proj_bias`` and ``out_proj`` (``W^O``),
so ``nn.MultiheadAttention``'s state dict loads as it is; :class:`LayerNorm` has ``weight`` (γ) and
``bias`` (β). Layers name their sublayers for the reader (``self_attention``, ``cross_attention``,
``feed_forward.linear1``); :func:`to_torch_state_dict` and :func:`from_torch_state_dict` translate
to and from ``nn.TransformerEncoderLayer``, ``nn.TransformerDecoderLayer`` and ``nn.Transformer``.

"The Transformer by hand": pass ``trace={}`` to the ``forward`` of :class:`MultiHeadAttention`,
:class:`FeedForward`, a layer or :class:`Transformer`, and the dictionary is filled with every
intermediate matrix (queries, keys, values per head, scores, weights, the heads, their
concatenation, the feed-forward hidden layer, each residual sum), nested by module: e.g.
``trace["encoder.layers.0"]["self_attention"]["weights"]`` is ``(batch, heads, S, S)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib import attention, checks
from course_lib.language_model import LanguageModel
from course_lib.seq2seq import greedy_search

__all__ = [
    "ACTIVATIONS",
    "POSITIONS",
    "DecoderBlock",
    "DecoderLayer",
    "EncoderLayer",
    "FeedForward",
    "LayerNorm",
    "LearnedPositions",
    "MultiHeadAttention",
    "SinusoidalPositions",
    "Transformer",
    "TransformerConfig",
    "TransformerLM",
    "TransformerLMConfig",
    "TransformerConditionedDecoder",
    "TransformerSeq2Seq",
    "from_torch_state_dict",
    "gelu_tanh",
    "set_fused",
    "sinusoidal_positions",
    "to_torch_state_dict",
]


def gelu_tanh(x: Tensor) -> Tensor:
    """GPT-2's GELU ("gelu_new"): ``0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))``, the tanh
    approximation of ``x Φ(x)``, as ``F.gelu(x, approximate="tanh")`` computes it."""
    return F.gelu(x, approximate="tanh")


ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "gelu_tanh": gelu_tanh}
POSITIONS = ("sinusoidal", "learned")


def _child(trace: dict | None, name: str) -> dict | None:
    return None if trace is None else trace.setdefault(name, {})


def _record(trace: dict | None, name: str, value: Tensor) -> None:
    if trace is not None:
        trace[name] = value.detach()


def _dropout_probability(dropout: object) -> float:
    return checks.number("dropout", dropout, minimum=0.0, below=1.0)


# ---------------------------------------------------------------------------------------------
# Multi-head attention
# ---------------------------------------------------------------------------------------------
class MultiHeadAttention(nn.Module):
    """Attention in ``h`` subspaces at once::

        MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O
        head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V),   Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V

    ``d_k = d_model / h``. The projections of all heads are one matrix each, laid out as in
    ``nn.MultiheadAttention``: ``in_proj_weight (3 d_model, d_model)`` stacks ``W^Q``, ``W^K``,
    ``W^V`` as ``Linear`` weights ``(d_out, d_in)``; rows ``i d_k .. (i+1) d_k`` of each block
    are head ``i``'s. ``out_proj`` is ``W^O``. Self-attention reads queries, keys and values from
    ``x``; cross-attention reads keys and values from ``memory`` (the encoder's output).

    ``fused=True`` computes the heads with ``F.scaled_dot_product_attention``; ``False`` with the
    written-out attention of :mod:`course_lib.attention`. Same parameters, same numbers.
    ``dropout`` drops attention weights while training (as PyTorch's ``dropout``).
    """

    def __init__(self, d_model: int, num_heads: int, *, dropout: float = 0.0, bias: bool = True,
                 fused: bool = True) -> None:
        super().__init__()
        d_model, num_heads = checks.positive_int("d_model", d_model), checks.positive_int("num_heads", num_heads)
        if d_model % num_heads:
            raise checks.ArgumentError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads}): each "
                                       f"head gets d_k = d_model / num_heads features")
        self.d_model, self.num_heads, self.d_k = d_model, num_heads, d_model // num_heads
        self.dropout = _dropout_probability(dropout)
        self.fused = bool(fused)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * d_model)) if bias else None
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """As ``nn.MultiheadAttention``: Xavier-uniform projections, zero biases."""
        nn.init.xavier_uniform_(self.in_proj_weight)
        self.out_proj.reset_parameters()
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def split_heads(self, x: Tensor) -> Tensor:
        """``(batch, time, d_model)`` -> ``(batch, heads, time, d_k)``."""
        batch, time, _ = x.shape
        return x.view(batch, time, self.num_heads, self.d_k).transpose(1, 2)

    def merge_heads(self, x: Tensor) -> Tensor:
        """Concat: ``(batch, heads, time, d_k)`` -> ``(batch, time, d_model)``."""
        batch, _, time, _ = x.shape
        return x.transpose(1, 2).reshape(batch, time, self.d_model)

    def project(self, x: Tensor, memory: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``Q W^Q, K W^K, V W^V`` split into heads, each ``(batch, heads, time, d_k)``; queries
        from ``x (batch, T_q, d_model)``, keys and values from ``memory`` (default ``x``)."""
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise checks.ArgumentError(f"attention reads (batch, time, d_model={self.d_model}) inputs, "
                                       f"got shape {tuple(x.shape)}")
        if memory is None:  # self-attention: one matrix product for all three
            queries, keys, values = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        else:
            if memory.dim() != 3 or memory.shape[-1] != self.d_model or memory.shape[0] != x.shape[0]:
                raise checks.ArgumentError(f"memory must be (batch={x.shape[0]}, time, d_model={self.d_model}), "
                                           f"got shape {tuple(memory.shape)}")
            w_q, w_kv = self.in_proj_weight.split([self.d_model, 2 * self.d_model])
            b_q, b_kv = (None, None) if self.in_proj_bias is None else self.in_proj_bias.split(
                [self.d_model, 2 * self.d_model])
            queries = F.linear(x, w_q, b_q)
            keys, values = F.linear(memory, w_kv, b_kv).chunk(2, dim=-1)
        return self.split_heads(queries), self.split_heads(keys), self.split_heads(values)

    def attend_heads(self, queries: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None, *,
                     causal: bool = False, trace: dict | None = None) -> Tensor:
        """Every head's attention, concatenated and multiplied by ``W^O``: ``(batch, T_q, d_model)``.

        queries ``(batch, heads, T_q, d_k)``, keys and values ``(batch, heads, T_k, d_k)``; ``mask``
        broadcasts to ``(batch, heads, T_q, T_k)``; ``causal`` adds :func:`~course_lib.attention.causal_mask`
        (with ``T_k > T_q`` the queries are the last positions, as after a key-value cache).
        A ``trace`` forces the written-out path, whose weights it records.
        """
        T_q, T_k = queries.shape[-2], keys.shape[-2]
        if mask is not None and (not isinstance(mask, Tensor) or mask.dtype != torch.bool):
            raise checks.ArgumentError("mask must be a boolean tensor, True where a query may look at a key "
                                       "(the opposite of nn.MultiheadAttention's key_padding_mask)")
        dropout_p = self.dropout if self.training else 0.0
        if self.fused and trace is None:
            if causal and mask is None and T_q == T_k:
                heads = F.scaled_dot_product_attention(queries, keys, values, dropout_p=dropout_p, is_causal=True)
            else:
                mask = _with_causal(mask, causal, T_q, T_k, queries.device)
                heads = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask, dropout_p=dropout_p)
        else:
            mask = _with_causal(mask, causal, T_q, T_k, queries.device)
            scores = attention.scaled_dot_product_scores(queries, keys)  # MatMul, Scale
            heads, weights = attention.attend(scores, values, mask, dropout_p=dropout_p)  # Mask, SoftMax, MatMul
            for name, value in (("queries", queries), ("keys", keys), ("values", values), ("scores", scores),
                                ("weights", weights), ("heads", heads)):
                _record(trace, name, value)
        concat = self.merge_heads(heads)  # (batch, T_q, d_model)
        output = self.out_proj(concat)
        _record(trace, "concat", concat)
        _record(trace, "output", output)
        return output

    def forward(self, x: Tensor, memory: Tensor | None = None, mask: Tensor | None = None, *,
                causal: bool = False, trace: dict | None = None) -> Tensor:
        """``MultiHead(x, memory, memory)``, or self-attention ``MultiHead(x, x, x)`` without memory:
        ``x (batch, T_q, d_model)`` -> ``(batch, T_q, d_model)``."""
        queries, keys, values = self.project(x, memory)
        return self.attend_heads(queries, keys, values, mask, causal=causal, trace=trace)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, num_heads={self.num_heads}, dropout={self.dropout:g}, fused={self.fused}"


def _with_causal(mask: Tensor | None, causal: bool, T_q: int, T_k: int, device) -> Tensor | None:
    if not causal:
        return mask
    past_only = attention.causal_mask(T_q, T_k).to(device)  # True where the key is not in the future
    return past_only if mask is None else mask & past_only


# ---------------------------------------------------------------------------------------------
# Positions
# ---------------------------------------------------------------------------------------------
def sinusoidal_positions(length: int, d_model: int, *, start: int = 0, dtype: torch.dtype | None = None,
                         device=None) -> Tensor:
    """The paper's fixed positional encodings, ``(length, d_model)`` for positions ``start ..``::

        PE(pos, 2i)     = sin(pos / 10000^{2i/d_model})
        PE(pos, 2i + 1) = cos(pos / 10000^{2i/d_model})
    """
    length, d_model = checks.non_negative_int("length", length), checks.positive_int("d_model", d_model)
    start = checks.non_negative_int("start", start)
    dtype = dtype or torch.get_default_dtype()
    pos = torch.arange(start, start + length, dtype=torch.float64, device=device)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64, device=device)
    angles = pos / 10000 ** (two_i / d_model)  # (length, ceil(d_model / 2))
    encodings = torch.empty(length, d_model, dtype=torch.float64, device=device)
    encodings[:, 0::2] = torch.sin(angles)
    encodings[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return encodings.to(dtype)


class SinusoidalPositions(nn.Module):
    """:func:`sinusoidal_positions` as a module without parameters; any number of positions,
    unless ``max_context`` is given. ``forward(start, length) -> (length, d_model)``."""

    def __init__(self, d_model: int, max_context: int | None = None) -> None:
        super().__init__()
        self.d_model = checks.positive_int("d_model", d_model)
        self.max_context = None if max_context is None else checks.positive_int("max_context", max_context)

    def forward(self, start: int, length: int, *, dtype: torch.dtype | None = None, device=None) -> Tensor:
        _check_context(start, length, self.max_context, "")
        return sinusoidal_positions(length, self.d_model, start=start, dtype=dtype, device=device)


class LearnedPositions(nn.Module):
    """One learned vector per position, ``P[pos]`` (GPT's): ``weight (max_context, d_model)``.
    ``forward(start, length) -> (length, d_model)`` in the weight's dtype and device; beyond
    ``max_context`` there is no vector, and asking for one is an error."""

    def __init__(self, max_context: int, d_model: int) -> None:
        super().__init__()
        self.max_context = checks.positive_int("max_context", max_context)
        self.weight = nn.Parameter(torch.empty(self.max_context, checks.positive_int("d_model", d_model)))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, start: int, length: int, *, dtype: torch.dtype | None = None, device=None) -> Tensor:
        _check_context(start, length, self.max_context, " of learned positions")
        return self.weight[start:start + length]


def _check_context(start: int, length: int, max_context: int | None, what: str) -> None:
    if max_context is not None and start + length > max_context:
        raise ValueError(f"a sequence of {start + length} positions exceeds max_context={max_context}{what}; "
                         f"read at most {max_context} tokens (start a new state, or crop the context)")


# ---------------------------------------------------------------------------------------------
# Layer norm and the position-wise feed-forward network
# ---------------------------------------------------------------------------------------------
class LayerNorm(nn.Module):
    """Normalise each position's features, then scale and shift them::

        LayerNorm(x) = γ ⊙ (x − μ) / sqrt(σ² + ε) + β      μ, σ² over the d_model features of x

    ``σ²`` is the biased variance (divided by ``d_model``), as in ``nn.LayerNorm``; ``weight`` is γ,
    ``bias`` is β. ``fused=True`` computes the same with ``F.layer_norm``. Shape kept: ``(..., d_model)``.
    """

    def __init__(self, d_model: int, eps: float = 1e-5, *, fused: bool = True) -> None:
        super().__init__()
        self.d_model = checks.positive_int("d_model", d_model)
        self.eps = checks.positive_number("eps", eps)
        self.fused = bool(fused)
        self.weight = nn.Parameter(torch.ones(self.d_model))  # γ
        self.bias = nn.Parameter(torch.zeros(self.d_model))  # β

    def forward(self, x: Tensor) -> Tensor:
        if self.fused:
            return F.layer_norm(x, (self.d_model,), self.weight, self.bias, self.eps)
        mean = x.mean(dim=-1, keepdim=True)  # μ
        variance = x.var(dim=-1, unbiased=False, keepdim=True)  # σ²
        return self.weight * (x - mean) / torch.sqrt(variance + self.eps) + self.bias

    def extra_repr(self) -> str:
        return f"{self.d_model}, eps={self.eps:g}, fused={self.fused}"


class FeedForward(nn.Module):
    """The same two-layer network at every position::

        FFN(x) = max(0, x W_1 + b_1) W_2 + b_2          (GELU in place of max(0, .) if asked)

    ``linear1`` is ``W_1, b_1`` ``(d_ff, d_model)``, ``linear2`` is ``W_2, b_2`` ``(d_model, d_ff)``;
    dropout on the hidden layer while training, as in ``nn.TransformerEncoderLayer``.
    """

    def __init__(self, d_model: int, d_ff: int, *, dropout: float = 0.0, activation: str = "relu",
                 bias: bool = True) -> None:
        super().__init__()
        self.activation = checks.one_of("activation", activation, ACTIVATIONS)
        self.linear1 = nn.Linear(checks.positive_int("d_model", d_model), checks.positive_int("d_ff", d_ff), bias=bias)
        self.linear2 = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(_dropout_probability(dropout))

    def forward(self, x: Tensor, *, trace: dict | None = None) -> Tensor:
        """``(..., d_model)`` -> ``(..., d_model)``."""
        hidden = ACTIVATIONS[self.activation](self.linear1(x))  # (..., d_ff)
        output = self.linear2(self.dropout(hidden))
        _record(trace, "hidden", hidden)
        _record(trace, "output", output)
        return output


# ---------------------------------------------------------------------------------------------
# Encoder and decoder layers
# ---------------------------------------------------------------------------------------------
class _ResidualLayer(nn.Module):
    """Sublayers wrapped in a residual connection and a layer norm, in one of two orders::

        post-norm (the paper):       x ← LayerNorm(x + Sublayer(x))
        pre-norm (GPT-2 and after):  x ← x + Sublayer(LayerNorm(x))

    written as the sublayer's input (:meth:`sublayer_input`) and the residual sum
    (:meth:`add_residual`), with dropout on the sublayer's output while training.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, *, dropout: float, activation: str,
                 norm_first: bool, layer_norm_eps: float, bias: bool, fused: bool, num_sublayers: int) -> None:
        super().__init__()
        self.norm_first = bool(norm_first)
        dropout = _dropout_probability(dropout)
        self.self_attention = MultiHeadAttention(d_model, num_heads, dropout=dropout, bias=bias, fused=fused)
        self.feed_forward = FeedForward(d_model, d_ff, dropout=dropout, activation=activation, bias=bias)
        for n in range(1, num_sublayers + 1):
            self.add_module(f"norm{n}", LayerNorm(d_model, layer_norm_eps, fused=fused))
            self.add_module(f"dropout{n}", nn.Dropout(dropout))

    def sublayer_input(self, x: Tensor, norm: LayerNorm) -> Tensor:
        return norm(x) if self.norm_first else x

    def add_residual(self, x: Tensor, sublayer_output: Tensor, norm: LayerNorm, dropout: nn.Dropout) -> Tensor:
        total = x + dropout(sublayer_output)
        return total if self.norm_first else norm(total)

    def self_attention_sublayer(self, x: Tensor, mask: Tensor | None, causal: bool, trace: dict | None) -> Tensor:
        """The first sublayer of every layer: self-attention, its residual and its norm (``norm1``)."""
        attended = self.self_attention(self.sublayer_input(x, self.norm1), mask=mask, causal=causal,
                                       trace=_child(trace, "self_attention"))
        x = self.add_residual(x, attended, self.norm1, self.dropout1)
        _record(trace, "after_self_attention", x)
        return x

    def feed_forward_sublayer(self, x: Tensor, norm: LayerNorm, dropout: nn.Dropout, trace: dict | None) -> Tensor:
        """The last sublayer of every layer: the feed-forward network, its residual and its norm."""
        transformed = self.feed_forward(self.sublayer_input(x, norm), trace=_child(trace, "feed_forward"))
        x = self.add_residual(x, transformed, norm, dropout)
        _record(trace, "output", x)
        return x


class EncoderLayer(_ResidualLayer):
    """Self-attention, then the feed-forward network, each in a residual connection with a layer norm
    (post-norm by default, ``norm_first=True`` for pre-norm): ``(batch, S, d_model)`` -> same.

    ``mask`` broadcasts to ``(batch, heads, S, S)``, e.g. ``padding[:, None, None, :]``.
    With ``trace``: ``self_attention`` (its intermediates), ``after_self_attention``, ``feed_forward``,
    ``output``.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, *, dropout: float = 0.0, activation: str = "relu",
                 norm_first: bool = False, layer_norm_eps: float = 1e-5, bias: bool = True,
                 fused: bool = True) -> None:
        super().__init__(d_model, num_heads, d_ff, dropout=dropout, activation=activation, norm_first=norm_first,
                         layer_norm_eps=layer_norm_eps, bias=bias, fused=fused, num_sublayers=2)

    def forward(self, x: Tensor, mask: Tensor | None = None, *, causal: bool = False,
                trace: dict | None = None) -> Tensor:
        x = self.self_attention_sublayer(x, mask, causal, trace)
        return self.feed_forward_sublayer(x, self.norm2, self.dropout2, trace)


class DecoderLayer(_ResidualLayer):
    """Causal self-attention, attention to the encoder's output (cross-attention), then the
    feed-forward network; each in a residual connection with a layer norm.

    ``x (batch, T, d_model)``, ``memory (batch, S, d_model)`` -> ``(batch, T, d_model)``.
    ``self_mask`` broadcasts to ``(batch, heads, T, T)`` (the causal mask is added unless
    ``causal=False``), ``memory_mask`` to ``(batch, heads, T, S)``.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, *, dropout: float = 0.0, activation: str = "relu",
                 norm_first: bool = False, layer_norm_eps: float = 1e-5, bias: bool = True,
                 fused: bool = True) -> None:
        super().__init__(d_model, num_heads, d_ff, dropout=dropout, activation=activation, norm_first=norm_first,
                         layer_norm_eps=layer_norm_eps, bias=bias, fused=fused, num_sublayers=3)
        self.cross_attention = MultiHeadAttention(d_model, num_heads, dropout=dropout, bias=bias, fused=fused)

    def forward(self, x: Tensor, memory: Tensor, self_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, *, causal: bool = True, trace: dict | None = None) -> Tensor:
        x = self.self_attention_sublayer(x, self_mask, causal, trace)
        looked_up = self.cross_attention(self.sublayer_input(x, self.norm2), memory, mask=memory_mask,
                                         trace=_child(trace, "cross_attention"))
        x = self.add_residual(x, looked_up, self.norm2, self.dropout2)
        _record(trace, "after_cross_attention", x)
        return self.feed_forward_sublayer(x, self.norm3, self.dropout3, trace)


class DecoderBlock(EncoderLayer):
    """The block of a decoder-only model (GPT's): a decoder layer without cross-attention, i.e. an
    :class:`EncoderLayer` whose self-attention is causal. :meth:`read` continues after a key-value
    cache: the keys and values of earlier positions are kept, so new positions only add theirs."""

    def read(self, x: Tensor, past_keys: Tensor, past_values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``x (batch, t, d_model)``, the positions after ``past_keys`` / ``past_values``
        ``(batch, heads, T_past, d_k)`` -> ``(output (batch, t, d_model), keys, values)`` with the
        keys and values of all ``T_past + t`` positions."""
        queries, keys, values = self.self_attention.project(self.sublayer_input(x, self.norm1))
        if past_keys.shape[2]:
            keys, values = torch.cat([past_keys, keys], dim=2), torch.cat([past_values, values], dim=2)
        attended = self.self_attention.attend_heads(queries, keys, values, causal=True)
        x = self.add_residual(x, attended, self.norm1, self.dropout1)
        x = self.add_residual(x, self.feed_forward(self.sublayer_input(x, self.norm2)), self.norm2, self.dropout2)
        return x, keys, values


# ---------------------------------------------------------------------------------------------
# The encoder-decoder
# ---------------------------------------------------------------------------------------------
@dataclass
class TransformerConfig:
    """The encoder-decoder's sizes; the defaults are the paper's base model (and ``nn.Transformer``'s)."""

    d_model: int = 512
    num_heads: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    d_ff: int = 2048
    dropout: float = 0.0
    activation: str = "relu"
    norm_first: bool = False
    layer_norm_eps: float = 1e-5
    bias: bool = True
    fused: bool = True

    def __post_init__(self) -> None:
        _check_sizes(self)
        self.num_encoder_layers = checks.positive_int("num_encoder_layers", self.num_encoder_layers)
        self.num_decoder_layers = checks.positive_int("num_decoder_layers", self.num_decoder_layers)

    def layer_arguments(self) -> dict:
        return dict(dropout=self.dropout, activation=self.activation, norm_first=self.norm_first,
                    layer_norm_eps=self.layer_norm_eps, bias=self.bias, fused=self.fused)


def _check_sizes(config) -> None:
    config.d_model = checks.positive_int("d_model", config.d_model)
    config.num_heads = checks.positive_int("num_heads", config.num_heads)
    if config.d_model % config.num_heads:
        raise checks.ArgumentError(f"d_model ({config.d_model}) must be divisible by num_heads "
                                   f"({config.num_heads}): each head gets d_k = d_model / num_heads features")
    config.d_ff = checks.positive_int("d_ff", config.d_ff)
    config.dropout = _dropout_probability(config.dropout)
    checks.one_of("activation", config.activation, ACTIVATIONS)
    config.layer_norm_eps = checks.positive_number("layer_norm_eps", config.layer_norm_eps)


class _Stack(nn.Module):
    """``layers`` and the final ``norm`` (as ``nn.TransformerEncoder/Decoder`` in ``nn.Transformer``)."""

    def __init__(self, layers: list[nn.Module], d_model: int, eps: float, fused: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = LayerNorm(d_model, eps, fused=fused)


class Transformer(nn.Module):
    """The encoder-decoder of "Attention is all you need" on embedded inputs, as ``nn.Transformer``::

        memory = Encoder(source)                 N encoder layers, then a layer norm
        output = Decoder(target, memory)         N decoder layers, then a layer norm

    ``source (batch, S, d_model)``, ``target (batch, T, d_model)`` (embeddings plus positions) ->
    ``(batch, T, d_model)``. ``source_padding (batch, S)`` / ``target_padding (batch, T)`` are
    ``True`` at real tokens; the decoder's self-attention is always causal. Both stacks end with a
    layer norm, as in ``nn.Transformer`` (the paper's post-norm model has none; it is harmless there
    and needed with pre-norm). State-dict names are ``nn.Transformer``'s after :func:`to_torch_state_dict`.
    """

    def __init__(self, config: TransformerConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or TransformerConfig()
        arguments = config.layer_arguments()
        self.encoder = _Stack([EncoderLayer(config.d_model, config.num_heads, config.d_ff, **arguments)
                               for _ in range(config.num_encoder_layers)], config.d_model, config.layer_norm_eps,
                              config.fused)
        self.decoder = _Stack([DecoderLayer(config.d_model, config.num_heads, config.d_ff, **arguments)
                               for _ in range(config.num_decoder_layers)], config.d_model, config.layer_norm_eps,
                              config.fused)

    @property
    def fused(self) -> bool:
        return self.config.fused

    @fused.setter
    def fused(self, value: bool) -> None:
        self.config.fused = set_fused(self, value)

    def encode(self, source: Tensor, source_padding: Tensor | None = None, *, trace: dict | None = None) -> Tensor:
        """``memory (batch, S, d_model)``: the encoder's output."""
        mask = _key_mask(source_padding, source, "source_padding")
        x = source
        for n, layer in enumerate(self.encoder.layers):
            x = layer(x, mask, trace=_child(trace, f"encoder.layers.{n}"))
        memory = self.encoder.norm(x)
        _record(trace, "memory", memory)
        return memory

    def decode(self, target: Tensor, memory: Tensor, source_padding: Tensor | None = None,
               target_padding: Tensor | None = None, *, trace: dict | None = None) -> Tensor:
        """The decoder's output ``(batch, T, d_model)`` for ``target`` attending to ``memory``."""
        self_mask = _key_mask(target_padding, target, "target_padding")
        memory_mask = _key_mask(source_padding, memory, "source_padding")
        x = target
        for n, layer in enumerate(self.decoder.layers):
            x = layer(x, memory, self_mask, memory_mask, trace=_child(trace, f"decoder.layers.{n}"))
        output = self.decoder.norm(x)
        _record(trace, "output", output)
        return output

    def forward(self, source: Tensor, target: Tensor, source_padding: Tensor | None = None,
                target_padding: Tensor | None = None, *, trace: dict | None = None) -> Tensor:
        memory = self.encode(source, source_padding, trace=trace)
        return self.decode(target, memory, source_padding, target_padding, trace=trace)


def _key_mask(padding: Tensor | None, x: Tensor, name: str) -> Tensor | None:
    """``padding (batch, time)`` -> a mask ``(batch, 1, 1, time)`` over keys, for every head and query."""
    if padding is None:
        return None
    if not isinstance(padding, Tensor) or padding.dtype != torch.bool or padding.shape != x.shape[:2]:
        got = (f"{padding.dtype} of shape {tuple(padding.shape)}" if isinstance(padding, Tensor)
               else type(padding).__name__)
        raise checks.ArgumentError(f"{name} must be a boolean (batch, time) = {tuple(x.shape[:2])} tensor, True at "
                                   f"real tokens (see course_lib.attention.padding_mask); got {got}")
    return padding[:, None, None, :]


def set_fused(module: nn.Module, fused: bool) -> bool:
    """Switch every attention and layer norm inside ``module`` to the fused (``True``) or the
    written-out path; the parameters stay the same. Returns ``fused``."""
    fused = bool(fused)
    for part in module.modules():
        if isinstance(part, (MultiHeadAttention, LayerNorm)):
            part.fused = fused
    return fused


# ---------------------------------------------------------------------------------------------
# PyTorch's names
# ---------------------------------------------------------------------------------------------
_TORCH_NAMES = (("self_attention.", "self_attn."), ("cross_attention.", "multihead_attn."),
                ("feed_forward.linear1.", "linear1."), ("feed_forward.linear2.", "linear2."))


def _renamed(state_dict: dict, pairs) -> dict:
    renamed = {}
    for key, value in state_dict.items():
        dotted = "." + key
        for old, new in pairs:
            dotted = dotted.replace("." + old, "." + new)
        renamed[dotted[1:]] = value
    return renamed


def to_torch_state_dict(state_dict: dict) -> dict:
    """The state dict of an :class:`EncoderLayer`, :class:`DecoderLayer` or :class:`Transformer`
    under the names of ``nn.TransformerEncoderLayer``, ``nn.TransformerDecoderLayer``, ``nn.Transformer``."""
    return _renamed(state_dict, _TORCH_NAMES)


def from_torch_state_dict(state_dict: dict) -> dict:
    """The inverse of :func:`to_torch_state_dict`: PyTorch's names to the course's."""
    return _renamed(state_dict, [(new, old) for old, new in _TORCH_NAMES])


# ---------------------------------------------------------------------------------------------
# The decoder-only language model
# ---------------------------------------------------------------------------------------------
@dataclass
class TransformerLMConfig:
    """Sizes of a :class:`TransformerLM`. ``d_ff`` defaults to ``4 d_model``; ``max_context`` is
    required for learned positions and, if given, also limits sinusoidal ones."""

    vocab_size: int
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int | None = None
    positions: str = "sinusoidal"
    max_context: int | None = None
    dropout: float = 0.0
    activation: str = "relu"
    tie_embeddings: bool = True
    layer_norm_eps: float = 1e-5
    bias: bool = True
    fused: bool = True

    def __post_init__(self) -> None:
        self.vocab_size = checks.positive_int("vocab_size", self.vocab_size)
        if self.d_ff is None:
            self.d_ff = 4 * checks.positive_int("d_model", self.d_model)
        _check_sizes(self)
        self.num_layers = checks.positive_int("num_layers", self.num_layers)
        checks.one_of("positions", self.positions, POSITIONS)
        if self.max_context is not None:
            self.max_context = checks.positive_int("max_context", self.max_context)
        elif self.positions == "learned":
            raise checks.ArgumentError("learned positions need max_context (the number of position vectors)")


class TransformerLM(nn.Module, LanguageModel):
    """A decoder-only Transformer language model (GPT's shape)::

        x_0 = s · E[w_t] + P(t)                     token embedding plus position (sinusoidal or learned)
        x_l = Block_l(x_{l-1})                      pre-norm blocks with causal self-attention
        P(w_{t+1} | w_1..w_t) = softmax(LayerNorm(x_L) W_out)     W_out = Eᵀ when tied

    ``forward(ids (batch, time)) -> logits (batch, time, vocab_size)``; the logits at ``t`` score
    the token at ``t + 1``. Weights start as GPT-2's: normal with standard deviation 0.02, the
    projections into the residual stream (``out_proj``, ``linear2``) scaled by ``1/√(2 num_layers)``,
    zero biases. With learned positions ``s = 1`` (GPT's ``E[w] + P[t]``, both starting at 0.02);
    sinusoidal positions have amplitude 1, so tokens get the paper's ``s = √d_model`` and ``E``
    starts at ``1/√d_model``: then neither part of ``x_0`` drowns the other.

    As a :class:`~course_lib.language_model.LanguageModel` its state is a **key-value cache**: a
    tuple ``(keys_1, values_1, ..., keys_L, values_L)``, each ``(batch, heads, T_so_far, d_k)``
    (batch first, so the default ``select_state`` picks rows for beam search). :meth:`read` takes a
    whole chunk in parallel with the causal mask; :meth:`step` reads one token against the cache.
    """

    def __init__(self, config: TransformerLMConfig) -> None:
        super().__init__()
        if not isinstance(config, TransformerLMConfig):
            raise checks.ArgumentError(f"config must be a TransformerLMConfig, got {type(config).__name__}")
        self.config = config
        self.vocab_size = config.vocab_size
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.positions = (LearnedPositions(config.max_context, config.d_model) if config.positions == "learned"
                          else SinusoidalPositions(config.d_model, config.max_context))
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            DecoderBlock(config.d_model, config.num_heads, config.d_ff, dropout=config.dropout,
                         activation=config.activation, norm_first=True, layer_norm_eps=config.layer_norm_eps,
                         bias=config.bias, fused=config.fused) for _ in range(config.num_layers))
        self.norm = LayerNorm(config.d_model, config.layer_norm_eps, fused=config.fused)
        self.readout = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.reset_parameters()
        if config.tie_embeddings:
            self.readout.weight = self.embedding.weight

    @property
    def embedding_scale(self) -> float:
        """``s`` of ``x_0 = s · E[w_t] + P(t)``: ``√d_model`` with sinusoidal positions, else 1."""
        return math.sqrt(self.config.d_model) if self.config.positions == "sinusoidal" else 1.0

    def reset_parameters(self) -> None:
        """GPT-2's initialisation, the token embedding's scaled to the positions (class docstring)."""
        residual_std = 0.02 / math.sqrt(2 * self.config.num_layers)
        for name, parameter in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(parameter)
            elif isinstance(self.get_submodule(name.rpartition(".")[0]), LayerNorm):
                nn.init.ones_(parameter)  # γ
            elif name.endswith(("out_proj.weight", "linear2.weight")):
                nn.init.normal_(parameter, std=residual_std)
            else:
                nn.init.normal_(parameter, std=0.02)
        token_std = 0.02 if self.config.positions == "learned" else self.config.d_model ** -0.5
        nn.init.normal_(self.embedding.weight, std=token_std)

    @property
    def fused(self) -> bool:
        return self.config.fused

    @fused.setter
    def fused(self, value: bool) -> None:
        self.config.fused = set_fused(self, value)

    def forward_with_state(self, ids: Tensor, state=None) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``(logits (batch, time, vocab_size), state)`` for ``ids`` read after ``state`` (a cache)."""
        ids = self.check_ids(ids)
        state = self.initial_state(ids.shape[0]) if state is None else self._check_state(state, ids.shape[0])
        start = state[0].shape[2]
        positions = self.positions(start, ids.shape[1], dtype=self.embedding.weight.dtype, device=ids.device)
        x = self.dropout(self.embedding(ids) * self.embedding_scale + positions)  # (batch, time, d_model)
        cache = []
        for n, block in enumerate(self.blocks):
            x, keys, values = block.read(x, state[2 * n], state[2 * n + 1])
            cache += [keys, values]
        return self.readout(self.norm(x)), tuple(cache)

    def forward(self, ids: Tensor) -> Tensor:
        return self.forward_with_state(ids)[0]

    def _check_state(self, state, batch_size: int) -> tuple[Tensor, ...]:
        if (not isinstance(state, tuple) or len(state) != 2 * self.config.num_layers
                or any(not isinstance(part, Tensor) or part.dim() != 4 or part.shape[0] != batch_size
                       for part in state)):
            raise checks.ArgumentError(
                f"state must be a key-value cache: a tuple of {2 * self.config.num_layers} tensors "
                f"(batch={batch_size}, heads, time, d_k), as initial_state, read or step give")
        return state

    # ---- the language-model protocol ----------------------------------------------------------
    def initial_state(self, batch_size: int) -> tuple[Tensor, ...]:
        """An empty cache: ``2 num_layers`` tensors ``(batch, heads, 0, d_k)``."""
        batch_size = checks.positive_int("batch_size", batch_size)
        weight = self.embedding.weight
        d_k = self.config.d_model // self.config.num_heads
        empty = weight.new_zeros(batch_size, self.config.num_heads, 0, d_k)
        return tuple(empty for _ in range(2 * self.config.num_layers))

    def read(self, ids: Tensor, state) -> tuple[Tensor, tuple[Tensor, ...]]:
        """The whole chunk in one pass with the causal mask: ``(log_probs (batch, time, vocab), cache)``."""
        logits, state = self.forward_with_state(ids, state)
        return torch.log_softmax(logits, dim=-1), state

    def step(self, tokens: Tensor, state) -> tuple[Tensor, tuple[Tensor, ...]]:
        log_probs, state = self.read(tokens.reshape(-1, 1), state)
        return log_probs[:, 0], state


# ---------------------------------------------------------------------------------------------
# The translation model: embeddings, positions and a read-out around the encoder-decoder
# ---------------------------------------------------------------------------------------------
class TransformerSeq2Seq(nn.Module):
    """The paper's translation model around a :class:`Transformer`::

        x_i = dropout(√d_model · E_src[w_i] + PE(i))          source side, i = 0 .. S-1
        y_t = dropout(√d_model · E_tgt[v_t] + PE(t))          target side, read shifted right (BOS first)
        p(v_{t+1} | v_0..v_t, w) = softmax(Decoder(y, Encoder(x)) W_out)      W_out = E_tgtᵀ when tied

    The embeddings start normal with standard deviation ``1/√d_model``, so ``√d_model · E[w]`` has
    the scale of the positional encodings. The interface is Chapter 6's ``Seq2Seq``'s:
    ``forward(source (batch, S), source_lengths (batch,), target_in (batch, T)) -> log_probs
    (batch, T, target_vocab_size)``, :meth:`loss`, :meth:`conditioned_on`, the decoder as a
    language model of the target (the course's protocol) for decoding, and :meth:`greedy`, which
    :func:`course_lib.seq2seq.translate` calls.
    """

    def __init__(self, source_vocab_size: int, target_vocab_size: int, config: TransformerConfig | None = None, *,
                 tie_embeddings: bool = True) -> None:
        super().__init__()
        self.config = config = config or TransformerConfig()
        d_model = config.d_model
        self.source_embedding = nn.Embedding(checks.positive_int("source_vocab_size", source_vocab_size), d_model)
        self.target_embedding = nn.Embedding(checks.positive_int("target_vocab_size", target_vocab_size), d_model)
        for embedding in (self.source_embedding, self.target_embedding):
            nn.init.normal_(embedding.weight, std=d_model ** -0.5)
        self.positions = SinusoidalPositions(d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.transformer = Transformer(config)
        self.readout = nn.Linear(d_model, target_vocab_size, bias=False)
        if tie_embeddings:
            self.readout.weight = self.target_embedding.weight

    @property
    def vocab_size(self) -> int:
        return self.readout.out_features

    def embed(self, ids: Tensor, embedding: nn.Embedding, start: int = 0) -> Tensor:
        """``dropout(√d_model · E[ids] + PE)``: ``(batch, time)`` -> ``(batch, time, d_model)``."""
        positions = self.positions(start, ids.shape[1], dtype=embedding.weight.dtype, device=ids.device)
        return self.dropout(embedding(ids) * math.sqrt(self.config.d_model) + positions)

    def encode(self, source: Tensor, source_lengths: Tensor, *,
               trace: dict | None = None) -> tuple[Tensor, Tensor]:
        """``(memory (batch, S, d_model), source_padding (batch, S))``."""
        source = _check_token_ids("source", source, self.source_embedding.num_embeddings)
        source_padding = attention.padding_mask(torch.as_tensor(source_lengths, device=source.device),
                                                source.shape[1])
        embedded = self.embed(source, self.source_embedding)
        _record(trace, "source_embedded", embedded)
        return self.transformer.encode(embedded, source_padding, trace=trace), source_padding

    def decode(self, target_in: Tensor, memory: Tensor, source_padding: Tensor, *,
               trace: dict | None = None) -> Tensor:
        """``log_probs (batch, T, target_vocab_size)`` of each next target token."""
        target_in = _check_token_ids("target_in", target_in, self.vocab_size)
        if target_in.shape[0] != memory.shape[0]:
            raise checks.ArgumentError(f"{memory.shape[0]} sources but {target_in.shape[0]} target rows")
        embedded = self.embed(target_in, self.target_embedding)
        _record(trace, "target_embedded", embedded)
        output = self.transformer.decode(embedded, memory, source_padding, trace=trace)
        log_probs = torch.log_softmax(self.readout(output), dim=-1)
        _record(trace, "log_probs", log_probs)
        return log_probs

    def forward(self, source: Tensor, source_lengths: Tensor, target_in: Tensor, *,
                trace: dict | None = None) -> Tensor:
        """Teacher-forced: ``target_in`` = BOS, v_1 .. v_{T-1} -> ``log_probs (batch, T, V)``; the
        target's padding needs no mask (causal attention never looks ahead to it; the loss ignores it).
        ``trace`` as :class:`Transformer`'s, plus ``source_embedded``, ``target_embedded``, ``log_probs``."""
        memory, source_padding = self.encode(source, source_lengths, trace=trace)
        return self.decode(target_in, memory, source_padding, trace=trace)

    def loss(self, source: Tensor, source_lengths: Tensor, target_in: Tensor, target_out: Tensor,
             ignore_index: int = -100) -> Tensor:
        """Mean cross-entropy (nats) over the target tokens that are not ``ignore_index``."""
        log_probs = self(source, source_lengths, target_in)
        return F.nll_loss(log_probs.flatten(0, 1), target_out.flatten(), ignore_index=ignore_index)

    def conditioned_on(self, source: Tensor, source_lengths: Tensor) -> "TransformerConditionedDecoder":
        """The decoder as a language model of the target given these sources."""
        return TransformerConditionedDecoder(self, source, source_lengths)

    @torch.no_grad()
    def greedy(self, source: Tensor, source_lengths: Tensor, bos_id: int, eos_id: int,
               max_length: int) -> tuple[list[list[int]], Tensor]:
        """Arg-max decoding from BOS until EOS (not included) or ``max_length`` tokens, as
        ``Seq2Seq.greedy`` (the same loop, :func:`course_lib.seq2seq.greedy_search`).

        Returns the token lists and the last decoder layer's cross-attention weights averaged over
        heads, ``(batch, steps, S)``: row ``t`` is where the step that wrote token ``t`` looked.
        The decoder is causal, so one teacher-forced pass over the tokens it read gives the weights
        of every step at once.
        """
        outputs, states = greedy_search(self.conditioned_on(source, source_lengths), source.shape[0], bos_id,
                                        eos_id, max_length)
        memory, source_padding, history = states[-1]  # history: BOS and the arg-max of every step but the last
        trace: dict = {}
        self.decode(history, memory, source_padding, trace=trace)
        last_layer = trace[f"decoder.layers.{self.config.num_decoder_layers - 1}"]
        return outputs, last_layer["cross_attention"]["weights"].mean(dim=1)


class TransformerConditionedDecoder(LanguageModel):
    """A :class:`TransformerSeq2Seq` decoder as a language model of the target, for fixed sources.

    The state is ``(memory (batch, S, d_model), source_padding (batch, S), history (batch, t))``:
    the encoded sources, computed once by :meth:`initial_state`, and the target ids read so far,
    which every :meth:`read` re-reads with the new ones (no cache: ``t`` positions per step, fine
    for sentences). Batch first throughout, so the default ``select_state`` serves beam search.
    """

    def __init__(self, model: TransformerSeq2Seq, source: Tensor, source_lengths: Tensor) -> None:
        self.model = model
        self.vocab_size = model.vocab_size
        self.source, self.source_lengths = source, source_lengths

    def initial_state(self, batch_size: int) -> tuple[Tensor, Tensor, Tensor]:
        if checks.positive_int("batch_size", batch_size) != self.source.shape[0]:
            raise checks.ArgumentError(f"this decoder is conditioned on {self.source.shape[0]} sources, "
                                       f"so its batch has {self.source.shape[0]} rows, not {batch_size}")
        memory, source_padding = self.model.encode(self.source, self.source_lengths)
        return memory, source_padding, self.source.new_zeros(batch_size, 0)

    def read(self, ids: Tensor, state) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        memory, source_padding, history = state
        ids = self.check_ids(ids)
        history = torch.cat([history, ids], dim=1)
        log_probs = self.model.decode(history, memory, source_padding)[:, -ids.shape[1]:]
        return log_probs, (memory, source_padding, history)

    def step(self, tokens: Tensor, state) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        log_probs, state = self.read(tokens.reshape(-1, 1), state)
        return log_probs[:, 0], state


def _check_token_ids(name: str, ids: object, vocab_size: int) -> Tensor:
    if not isinstance(ids, Tensor) or ids.dtype != torch.long or ids.dim() != 2:
        shape = f"{ids.dtype} of shape {tuple(ids.shape)}" if isinstance(ids, Tensor) else type(ids).__name__
        raise checks.ArgumentError(f"{name} must be a (batch, time) tensor of token ids (torch.long), got {shape}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise checks.ArgumentError(f"{name} must lie in [0, {vocab_size}), got values in "
                                   f"[{int(ids.min())}, {int(ids.max())}]")
    return ids
