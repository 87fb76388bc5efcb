"""Chapter 7's convolutional language model: gated, dilated, causal convolutions.

A convolution reads a fixed span of the sequence with the same weights at every position, so a
whole sequence is computed in parallel, like a Transformer and unlike a recurrent network. To be
a language model it must be **causal**: the output at position t reads nothing after t.

A causal convolution with kernel size K and dilation d (layer input ``x_t``, d_in numbers; output
``y_t``, d_out numbers; ``W_k`` a ``(d_out, d_in)`` matrix per tap)::

    y_t = b + sum_{k=0}^{K-1} W_k x_{t - d·k}              x_{t'} = 0 for t' < 0

The missing inputs before the start are padding **on the left**; nothing on the right, so no
look-ahead. PyTorch's ``nn.Conv1d`` stores the taps in the other order: ``weight[:, :, K-1-k]``
is ``W_k`` (its last tap multiplies the current input).

A layer is the gated linear unit of Dauphin et al. (2017), "Language Modeling with Gated
Convolutional Networks", two convolutions of the layer input X, one gating the other, with a
residual connection around them (X^(0) is the embeddings, ``E[x_t]``)::

    h^(l)     = (X^(l) * W + b) ⊙ σ(X^(l) * V + c)          (batch, time, d_model)
    X^(l+1)   = X^(l) + h^(l)
    P(x_{t+1} | x_0 .. x_t) = softmax(U X^(L)_t + b_o)

The dilation of layer l is d_l, doubling from layer to layer as in WaveNet (van den Oord et al.,
2016): 1, 2, 4, ... Layer l widens what a position sees by (K - 1)·d_l positions, so the output at
t depends on the R tokens x_{t-R+1} .. x_t, the **receptive field**::

    R = 1 + sum_l (K - 1)·d_l

(with doubling dilations and K = 2, R = 2^L: each layer doubles the span for the same number of
parameters as the one before it). Within it, the positions that reach t are ``t - sum_l k_l d_l``
for taps ``k_l in 0 .. K-1``: with doubling dilations that is every one of them, with others
there can be holes (:func:`influencing_positions`).

As a :class:`~course_lib.language_model.LanguageModel`, a model that sees exactly the last R tokens
is a window model: its state is the last R - 1 tokens read, and before the window has filled it is
padded on the left with the first token, the start symbol, like the n-gram and fixed-window models.
Since the tokens are padded before the convolutions, the zeros of each convolution's own padding
only reach outputs that are thrown away: every output sees R real or start tokens, and reading a
chunk at once gives the same numbers as reading it token by token. :class:`CachedCNNLM` reads the
same model with another state, each layer's last (K - 1)·d_l inputs, so that a new token costs one
position per layer instead of the whole window.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from course_lib.checks import ArgumentError, non_negative_int, number, positive_int
from course_lib.language_model import LanguageModel, WindowLanguageModel

__all__ = [
    "CNNLM",
    "CachedCNNLM",
    "CNNLMConfig",
    "CausalConv1d",
    "GatedConvLayer",
    "causal_conv1d",
    "cnn_lm_parameter_count",
    "doubling_dilations",
    "influence_by_layer",
    "influencing_positions",
    "receptive_field",
]


# ---------------------------------------------------------------------------------------------
# The receptive field
# ---------------------------------------------------------------------------------------------
def _check_dilations(dilations: object) -> tuple[int, ...]:
    if isinstance(dilations, (str, bytes)) or not isinstance(dilations, Sequence) or not dilations:
        raise ArgumentError("dilations must be a non-empty list of positive integers, one per layer"
                            f" (e.g. doubling_dilations(4) = (1, 2, 4, 8)), got {dilations!r}")
    return tuple(positive_int(f"dilations[{layer}]", d) for layer, d in enumerate(dilations))


def doubling_dilations(num_layers: int) -> tuple[int, ...]:
    """WaveNet's dilations, doubling per layer: ``(1, 2, 4, ..., 2^(num_layers-1))``."""
    return tuple(2**layer for layer in range(positive_int("num_layers", num_layers)))


def receptive_field(kernel_size: int, dilations: Sequence[int]) -> int:
    """``R = 1 + sum_l (K - 1)·d_l``: how many tokens, the current one included, an output reads."""
    kernel_size = positive_int("kernel_size", kernel_size)
    return 1 + sum((kernel_size - 1) * d for d in _check_dilations(dilations))


def influence_by_layer(position: int, kernel_size: int, dilations: Sequence[int]) -> list[list[int]]:
    """Which positions of each layer's input reach the output at ``position``, for a figure.

    Entry l is the sorted positions of ``X^(l)`` that the top output at ``position`` depends on:
    entry 0 the tokens, entry L (the number of layers) ``[position]``. Going down through layer l,
    each position s spreads to ``s - k·d_l`` for ``k = 0 .. K-1`` (the residual adds s itself, which
    the tap k = 0 already reads). Positions below 0 are the start-symbol padding.
    """
    position = non_negative_int("position", position)
    kernel_size = positive_int("kernel_size", kernel_size)
    dilations = _check_dilations(dilations)
    levels = [[position]]
    for d in reversed(dilations):
        levels.append(sorted({s - k * d for s in levels[-1] for k in range(kernel_size)}))
    return levels[::-1]


def influencing_positions(position: int, kernel_size: int, dilations: Sequence[int]) -> list[int]:
    """The token positions (0 = the start symbol) whose change can change the output at ``position``.

    The window's padding before the sequence repeats the start symbol, so a tap below 0 reads
    position 0.
    """
    tokens = influence_by_layer(position, kernel_size, dilations)[0]
    return sorted({max(s, 0) for s in tokens})


# ---------------------------------------------------------------------------------------------
# The causal convolution
# ---------------------------------------------------------------------------------------------
def causal_conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, dilation: int = 1,
                  past: Tensor | None = None) -> Tensor:
    """``y_t = b + sum_k W_k x_{t - d·k}`` at every position of ``x``, reading before its start from
    ``past``, the (K - 1)·d inputs that precede it (zeros when ``None``: the causal padding).

    ``x (batch, time, d_in)``, ``weight (d_out, d_in, K)`` in ``nn.Conv1d``'s layout (``W_k`` is
    ``weight[:, :, K-1-k]``), ``bias (d_out,)``, ``past (batch, (K-1)·d, d_in)`` -> ``y (batch, time,
    d_out)``. Written as the sum over the K taps of the inputs d·k positions back, each times its matrix.
    """
    dilation = positive_int("dilation", dilation)
    if not isinstance(x, Tensor) or x.dim() != 3:
        raise ArgumentError("x must be a (batch, time, d_in) tensor, got "
                            + (f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__))
    if not isinstance(weight, Tensor) or weight.dim() != 3 or weight.shape[1] != x.shape[-1]:
        raise ArgumentError(f"weight must have shape (d_out, d_in, K) with d_in = {x.shape[-1]},"
                            " got " + (f"{tuple(weight.shape)}" if isinstance(weight, Tensor)
                                       else type(weight).__name__))
    (batch, time, d_in), kernel_size = x.shape, weight.shape[-1]
    span = (kernel_size - 1) * dilation  # how far back the last tap reads
    if past is None:
        past = x.new_zeros(batch, span, d_in)
    if not isinstance(past, Tensor) or tuple(past.shape) != (batch, span, d_in):
        raise ArgumentError(f"past must hold the (K-1)·d = {span} inputs before x, shape (batch, (K-1)·d,"
                            f" d_in) = {(batch, span, d_in)}, got "
                            + (f"{tuple(past.shape)}" if isinstance(past, Tensor) else type(past).__name__))
    history = torch.cat([past, x], dim=1)  # x_t is history[:, span + t]
    y = 0
    for k in range(kernel_size):
        W_k = weight[:, :, kernel_size - 1 - k]  # (d_out, d_in)
        x_back = history[:, span - dilation * k: span - dilation * k + time]  # x_{t - d·k}, (batch, time, d_in)
        y = y + x_back @ W_k.T
    return y if bias is None else y + bias


class CausalConv1d(nn.Module):
    """:func:`causal_conv1d` with its parameters: ``weight (d_out, d_in, K)`` and ``bias (d_out,)``,
    named and laid out as in ``nn.Conv1d`` (whose state dicts load directly), initialised as PyTorch
    does, every entry uniform in ``±1/sqrt(d_in·K)``.

    ``forward(x (batch, time, d_in), past (batch, span, d_in) | None) -> (batch, time, d_out)``.
    """

    def __init__(self, d_in: int, d_out: int, kernel_size: int, dilation: int = 1) -> None:
        super().__init__()
        self.d_in = positive_int("d_in", d_in)
        self.d_out = positive_int("d_out", d_out)
        self.kernel_size = positive_int("kernel_size", kernel_size)
        self.dilation = positive_int("dilation", dilation)
        self.weight = nn.Parameter(torch.empty(self.d_out, self.d_in, self.kernel_size))
        self.bias = nn.Parameter(torch.empty(self.d_out))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.d_in * self.kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    @property
    def span(self) -> int:
        """(K - 1)·d: how many inputs before the current one the convolution reads."""
        return (self.kernel_size - 1) * self.dilation

    def forward(self, x: Tensor, past: Tensor | None = None) -> Tensor:
        return causal_conv1d(x, self.weight, self.bias, self.dilation, past)

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, d_out={self.d_out}, kernel_size={self.kernel_size}, dilation={self.dilation}"


class GatedConvLayer(nn.Module):
    """One residual gated layer: ``X + (X * W + b) ⊙ σ(X * V + c)``, ``(batch, time, d_model)`` in
    and out; ``past (batch, span, d_model)``, the inputs before X, replaces the zero padding of both
    convolutions. State dict: ``W.weight``, ``W.bias`` (b), ``V.weight``, ``V.bias`` (c)."""

    def __init__(self, d_model: int, kernel_size: int, dilation: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.W = CausalConv1d(d_model, d_model, kernel_size, dilation)
        self.V = CausalConv1d(d_model, d_model, kernel_size, dilation)
        self.dropout = nn.Dropout(dropout)

    @property
    def span(self) -> int:
        """(K - 1)·d_l: how many inputs before the current one the layer reads."""
        return self.W.span

    def forward(self, X: Tensor, past: Tensor | None = None) -> Tensor:
        h = self.W(X, past) * torch.sigmoid(self.V(X, past))  # the linear path, gated
        return X + self.dropout(h)


# ---------------------------------------------------------------------------------------------
# The language model
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CNNLMConfig:
    """The shape of a :class:`CNNLM`: V tokens, d_model channels (the embedding size too), kernel
    size K, one dilation per layer, dropout on the embeddings and on each layer's h."""

    vocab_size: int
    d_model: int = 32
    kernel_size: int = 2
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        positive_int("vocab_size", self.vocab_size)
        positive_int("d_model", self.d_model)
        positive_int("kernel_size", self.kernel_size)
        object.__setattr__(self, "dilations", _check_dilations(self.dilations))
        number("dropout", self.dropout, minimum=0.0, below=1.0)

    @property
    def num_layers(self) -> int:
        return len(self.dilations)

    @property
    def receptive_field(self) -> int:
        """``R = 1 + sum_l (K - 1)·d_l``."""
        return receptive_field(self.kernel_size, self.dilations)


def cnn_lm_parameter_count(config: CNNLMConfig) -> int:
    """``V·d`` (embedding) ``+ L·2·(d·d·K + d)`` (W, b, V, c per layer) ``+ d·V + V`` (read-out U, b_o)."""
    if not isinstance(config, CNNLMConfig):
        raise ArgumentError(f"config must be a CNNLMConfig, got {type(config).__name__}")
    V, d, K, L = config.vocab_size, config.d_model, config.kernel_size, config.num_layers
    return V * d + L * 2 * (d * d * K + d) + d * V + V


class CNNLM(nn.Module, WindowLanguageModel):
    """Embedding -> L residual gated causal convolutions -> linear read-out (see the module docstring).

    ``forward(ids (batch, time)) -> logits (batch, time, vocab_size)``: the logits at t score the
    token at t + 1, from ``ids[t-R+1 .. t]`` (the start symbol ``ids[:, 0]`` before the start).
    State dict: ``embedding.weight`` (E), ``layers.{l}.W.*``, ``layers.{l}.V.*``, ``readout.weight``
    (U) and ``readout.bias`` (b_o).

    As a language model its state is the last R - 1 tokens read, ``(batch, R - 1)`` ids, oldest
    first (fewer before R - 1 have been read); :meth:`read` computes a whole chunk in one pass of
    the convolutions, :meth:`window_log_probs` one window of R tokens at a time.
    """

    def __init__(self, config: CNNLMConfig) -> None:
        super().__init__()
        if not isinstance(config, CNNLMConfig):
            raise ArgumentError(f"config must be a CNNLMConfig, got {type(config).__name__}")
        self.config = config
        self.vocab_size = config.vocab_size
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(GatedConvLayer(config.d_model, config.kernel_size, d, config.dropout)
                                    for d in config.dilations)
        self.readout = nn.Linear(config.d_model, config.vocab_size)

    @property
    def receptive_field(self) -> int:
        """``R = 1 + sum_l (K - 1)·d_l``: the tokens an output reads, the current one included."""
        return self.config.receptive_field

    @property
    def context_size(self) -> int:  # the window of WindowLanguageModel
        return self.receptive_field

    def influencing_positions(self, position: int) -> list[int]:
        """The token positions that can change the output at ``position`` (:func:`influencing_positions`)."""
        return influencing_positions(position, self.config.kernel_size, self.config.dilations)

    def logits_of_history(self, history: Tensor) -> Tensor:
        """The convolutions over ``history (batch, length)`` ids: logits ``(batch, length, V)``. Only
        the outputs from position R - 1 on have a full window of real (or start) tokens."""
        X = self.embedding_dropout(self.embedding(history))  # X^(0), (batch, length, d_model)
        for layer in self.layers:
            X = layer(X)  # X^(l+1) = X^(l) + h^(l)
        return self.readout(X)  # U X^(L) + b_o

    def padded_history(self, ids: Tensor, state: Tensor) -> Tensor:
        """``state`` then ``ids``, padded on the left with the first token to at least R - 1 + time
        ids: ``(batch, >= R - 1 + time)``."""
        history = torch.cat([state.to(ids.device), ids], dim=1)
        missing = self.receptive_field - 1 + ids.shape[1] - history.shape[1]
        if missing > 0:
            history = torch.cat([history[:, :1].expand(-1, missing), history], dim=1)
        return history

    def forward(self, ids: Tensor) -> Tensor:
        """Logits ``(batch, time, V)`` for ``ids (batch, time)``, every position in one pass."""
        ids = self.check_ids(ids)
        return self.logits_of_history(self.padded_history(ids, ids[:, :0]))[:, -ids.shape[1]:]

    # ---- the language-model protocol ----------------------------------------------------------
    def read(self, ids: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """A chunk ``ids (batch, time)`` in one pass: ``(log_probs (batch, time, V), last R - 1 ids)``."""
        ids = self.check_ids(ids)
        history = self.padded_history(ids, state)
        logits = self.logits_of_history(history)[:, -ids.shape[1]:]
        return torch.log_softmax(logits, dim=-1), history[:, history.shape[1] - (self.receptive_field - 1):]

    def window_log_probs(self, windows: Tensor) -> Tensor:
        """``log P(. | window)`` for windows of R ids ``(positions, R)``: ``(positions, V)``, each
        window through the convolutions on its own (the last output is the only one it fills)."""
        return torch.log_softmax(self.logits_of_history(windows)[:, -1], dim=-1)

    def extra_repr(self) -> str:
        return f"receptive_field={self.receptive_field}"


# ---------------------------------------------------------------------------------------------
# Generating faster: a cache of each layer's past inputs
# ---------------------------------------------------------------------------------------------
class CachedCNNLM(nn.Module, LanguageModel):
    """A :class:`CNNLM` (the same module, the same parameters) read with a per-layer cache.

    Stepping the window model pushes the whole window of R tokens through every layer for each new
    token. Layer l reads, besides its current input, only its last (K - 1)·d_l inputs, which earlier
    steps have already computed: keep them, and a new token costs one position per layer (the fast
    generation of Paine et al., 2016, "Fast Wavenet Generation Algorithm"). The state is that cache,
    a tuple with one ``(batch, (K - 1)·d_l, d_model)`` tensor per layer, ``(R - 1)·d_model`` numbers
    per sequence in all, where the window model keeps R - 1 ids.

    Before the start, a layer's past is its first input repeated: the start-symbol padding of the
    window model gives every padded position that same activation, so both read the same numbers.
    """

    def __init__(self, model: CNNLM) -> None:
        super().__init__()
        if not isinstance(model, CNNLM):
            raise ArgumentError(f"model must be a CNNLM, got {type(model).__name__}")
        self.model = model
        self.vocab_size = model.vocab_size

    def initial_state(self, batch_size: int) -> tuple[Tensor, ...]:
        """An empty cache per layer, ``(batch, 0, d_model)``: nothing read yet."""
        reference = self.model.readout.weight
        empty = reference.new_zeros(positive_int("batch_size", batch_size), 0, self.model.config.d_model)
        return tuple(empty for _ in self.model.layers)

    def read(self, ids: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """A chunk ``ids (batch, time)`` layer by layer, each reading its cached past:
        ``(log_probs (batch, time, V), the caches after the chunk)``."""
        ids = self.check_ids(ids)
        if not isinstance(state, tuple) or len(state) != len(self.model.layers):
            raise ArgumentError(f"state must be a tuple of {len(self.model.layers)} caches, one per layer"
                                " (start from initial_state(batch_size))")
        X = self.model.embedding_dropout(self.model.embedding(ids))  # X^(0), (batch, time, d_model)
        caches = []
        for layer, past in zip(self.model.layers, state):
            if past.shape[1] == 0:  # the start: the first input repeated
                past = X[:, :1].expand(-1, layer.span, -1)
            history = torch.cat([past, X], dim=1)
            caches.append(history[:, history.shape[1] - layer.span:])  # the last (K - 1)·d_l inputs
            X = layer(X, past)  # X^(l+1)
        return torch.log_softmax(self.model.readout(X), dim=-1), tuple(caches)

    def step(self, tokens: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        log_probs, state = self.read(tokens.reshape(-1, 1), state)
        return log_probs[:, 0], state
