"""Gated recurrent networks (Chapter 5): the LSTM and the GRU, gate by gate.

The LSTM keeps a memory cell ``C`` beside the hidden state ``h``. With ``[h_{t-1}, i_t]`` the
previous hidden state stacked on the input::

    A_t     = σ(W_A [h_{t-1}, i_t] + b_A)          forget gate: how much of C_{t-1} to keep
    B_t     = σ(W_B [h_{t-1}, i_t] + b_B)          input gate: how much of the candidate to write
    Ĉ_t     = tanh(W_C [h_{t-1}, i_t] + b_C)       candidate memory (``C_hat`` in code)
    C_t     = A_t ⊙ C_{t-1} + B_t ⊙ Ĉ_t
    D_t     = σ(W_D [h_{t-1}, i_t] + b_D)          output gate
    h_t     = D_t ⊙ tanh(C_t)

Along the direct path ``∂C_t/∂C_{t-1} = diag(A_t)``: the gradient is multiplied by the forget gate,
not by a weight matrix, so where the gates stay open it travels far (the gradient highway). The
forget-gate bias starts at 1 so that the gates start open (Gers et al., 2000; Jozefowicz et al., 2015).

The GRU (Cho et al., 2014), in PyTorch's convention, with update gate ``z_t``, reset gate ``r_t``
and candidate ``n_t`` (the book's ``h̃_t``)::

    r_t = σ(W_ir i_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = σ(W_iz i_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in i_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

Cho et al. write the update the same way (``z_t`` keeps the old state) but reset the state before
the matrix, ``tanh(W_in i_t + W_hn (r_t ⊙ h_{t-1}))``: a different function of the same weights.
PyTorch resets after it, so that one product ``W_hh h_{t-1}`` serves all three gates.

Parameters are laid out as in ``nn.LSTM`` / ``nn.GRU`` so their state dicts load directly. The
gates' weights are stacked along the first axis; ``W_A [h, i]`` is split into an input part
(in ``weight_ih``) and a hidden part (in ``weight_hh``), and each ``b`` into ``bias_ih + bias_hh``::

    LSTM  weight_ih_l{l} (4*d_hidden, d_in), chunks in PyTorch's order i, f, g, o
            = the book's  B (input gate), A (forget gate), Ĉ (candidate), D (output gate)
          W_A = [weight_hh_l{l}[H:2H], weight_ih_l{l}[H:2H]],  b_A = bias_ih_l{l}[H:2H] + bias_hh_l{l}[H:2H]
    GRU   weight_ih_l{l} (3*d_hidden, d_in), chunks r, z, n

(rows ``H:2H`` with ``H = d_hidden``; the other gates likewise with their chunk.)
:func:`lstm_book_to_pytorch` and :func:`lstm_pytorch_to_book` make that map in both directions,
:func:`gru_book_to_pytorch` and :func:`gru_pytorch_to_book` the GRU's (its gates keep PyTorch's
names, ``W_ir .. b_hn``).

:data:`RECURRENT_LAYERS` names the three layers of the chapter, ``"rnn"``, ``"lstm"`` and ``"gru"``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.checks import finite_number, one_of
from course_lib.rnn import RNN, RecurrentCell, RecurrentLayer, recurrent_parameter_count

__all__ = [
    "CELLS",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "LSTMGates",
    "LSTM_GATES",
    "PYTORCH_LSTM_ORDER",
    "RECURRENT_LAYERS",
    "gru_book_to_pytorch",
    "gru_pytorch_to_book",
    "lstm_book_to_pytorch",
    "lstm_pytorch_to_book",
    "recurrent_layer",
    "gru_cell_update",
    "gru_parameter_count",
    "lstm_cell_update",
    "lstm_gates",
    "lstm_parameter_count",
]


# ---------------------------------------------------------------------------------------------
# The equations of one step
# ---------------------------------------------------------------------------------------------
class LSTMGates(NamedTuple):
    """The four gate activations of one LSTM step, each ``(batch, d_hidden)``."""

    A: Tensor  # forget gate
    B: Tensor  # input gate
    C_hat: Tensor  # candidate memory
    D: Tensor  # output gate


def lstm_gates(preactivations: Tensor) -> LSTMGates:
    """The gates from their pre-activations ``(batch, 4*d_hidden)``, stacked in PyTorch's order
    i, f, g, o (the book's B, A, Ĉ, D)."""
    i, f, g, o = preactivations.chunk(4, dim=-1)
    return LSTMGates(A=torch.sigmoid(f), B=torch.sigmoid(i), C_hat=torch.tanh(g), D=torch.sigmoid(o))


def lstm_cell_update(preactivations: Tensor, C_prev: Tensor) -> tuple[Tensor, Tensor]:
    """``(h_t, C_t)`` from the gates' pre-activations ``(batch, 4*d_hidden)`` and ``C_{t-1}``
    ``(batch, d_hidden)``: ``C_t = A_t ⊙ C_{t-1} + B_t ⊙ Ĉ_t``, ``h_t = D_t ⊙ tanh(C_t)``."""
    A, B, C_hat, D = lstm_gates(preactivations)
    C = A * C_prev + B * C_hat
    h = D * torch.tanh(C)
    return h, C


def gru_cell_update(input_terms: Tensor, hidden_terms: Tensor, h_prev: Tensor) -> Tensor:
    """``h_t`` from ``W_i· i_t + b_i·`` and ``W_h· h_{t-1} + b_h·`` (each ``(batch, 3*d_hidden)``,
    chunks r, z, n) and ``h_{t-1} (batch, d_hidden)``."""
    x_r, x_z, x_n = input_terms.chunk(3, dim=-1)
    h_r, h_z, h_n = hidden_terms.chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)  # the reset gate decides how much of the past the candidate sees
    return (1 - z) * n + z * h_prev


def _check_forget_bias(forget_bias: object) -> float:
    return finite_number("forget_bias", forget_bias)


def _set_forget_bias(bias_ih: Tensor, bias_hh: Tensor, d_hidden: int, forget_bias: float) -> None:
    """``b_A = forget_bias``: all of it in ``bias_ih``'s f chunk, none in ``bias_hh``'s."""
    with torch.no_grad():
        bias_ih[d_hidden : 2 * d_hidden].fill_(forget_bias)
        bias_hh[d_hidden : 2 * d_hidden].zero_()


# ---------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------
class LSTMCell(RecurrentCell):
    """One LSTM step; loads ``nn.LSTMCell`` state dicts.

    ``forward(i_t (batch, d_in), state=(h_prev, C_prev) | None) -> (h_t, C_t)``, each
    ``(batch, d_hidden)``; a missing state is zeros. The forget-gate bias starts at ``forget_bias``.
    """

    gate_count = 4

    def __init__(self, d_in: int, d_hidden: int, forget_bias: float = 1.0) -> None:
        self.forget_bias = _check_forget_bias(forget_bias)
        super().__init__(d_in, d_hidden)

    def reset_parameters(self) -> None:
        """PyTorch's uniform initialisation, then the forget-gate bias ``b_A = forget_bias``."""
        super().reset_parameters()
        _set_forget_bias(self.bias_ih, self.bias_hh, self.d_hidden, self.forget_bias)

    def forward(self, i_t: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        i_t = self.check_step_input(i_t)
        if state is None:
            h_prev = C_prev = None
        elif isinstance(state, (tuple, list)) and len(state) == 2:
            h_prev, C_prev = state
        else:
            raise TypeError(
                f"state must be a pair (h_prev, C_prev) of (batch, d_hidden) tensors, got {type(state).__name__}"
            )
        h_prev = self.check_step_state("h_prev", h_prev, i_t.shape[0])
        C_prev = self.check_step_state("C_prev", C_prev, i_t.shape[0])
        preactivations = F.linear(i_t, self.weight_ih, self.bias_ih) + F.linear(h_prev, self.weight_hh, self.bias_hh)
        return lstm_cell_update(preactivations, C_prev)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, forget_bias={self.forget_bias}"


class GRUCell(RecurrentCell):
    """One GRU step; loads ``nn.GRUCell`` state dicts.

    ``forward(i_t (batch, d_in), h_prev (batch, d_hidden) | None) -> h_t (batch, d_hidden)``.
    """

    gate_count = 3

    def forward(self, i_t: Tensor, h_prev: Tensor | None = None) -> Tensor:
        i_t = self.check_step_input(i_t)
        h_prev = self.check_step_state("h_prev", h_prev, i_t.shape[0])
        input_terms = F.linear(i_t, self.weight_ih, self.bias_ih)
        hidden_terms = F.linear(h_prev, self.weight_hh, self.bias_hh)
        return gru_cell_update(input_terms, hidden_terms, h_prev)


# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------
class LSTM(RecurrentLayer):
    """A stack of LSTM layers, batch-first; loads ``nn.LSTM(batch_first=True)`` state dicts.

    ``forward(inputs (batch, time, d_in), (h_0, C_0) | None) -> (outputs (batch, time, d_hidden),
    (h_T, C_T))`` with the states ``(num_layers, batch, d_hidden)``. ``fused=True`` runs
    ``nn.LSTM`` on the same parameters. The forget-gate bias of every layer starts at ``forget_bias``.
    """

    gate_count = 4
    state_names = ("h_0", "C_0")

    def __init__(
        self, d_in: int, d_hidden: int, num_layers: int = 1, *, forget_bias: float = 1.0, fused: bool = False
    ) -> None:
        self.forget_bias = _check_forget_bias(forget_bias)
        super().__init__(d_in, d_hidden, num_layers, fused=fused)

    def reset_parameters(self) -> None:
        """PyTorch's uniform initialisation, then the forget-gate bias ``b_A = forget_bias``."""
        super().reset_parameters()
        for layer in range(self.num_layers):
            _, _, bias_ih, bias_hh = self.layer_parameters(layer)
            _set_forget_bias(bias_ih, bias_hh, self.d_hidden, self.forget_bias)

    def layer_forward(self, x, state, layer):
        W_ih, W_hh, b_ih, b_hh = self.layer_parameters(layer)
        # All four gates' input terms for every time step in one matrix product; inside the loop
        # one more product per step gives all four gates' hidden terms at once.
        input_terms = F.linear(x, W_ih, b_ih + b_hh)  # (batch, time, 4*d_hidden)
        h, C = state
        hidden_states = []
        for input_terms_t in input_terms.unbind(dim=1):  # unbind: one gradient op, not one per step
            preactivations = torch.addmm(input_terms_t, h, W_hh.t())
            h, C = lstm_cell_update(preactivations, C)
            hidden_states.append(h)
        return torch.stack(hidden_states, dim=1), (h, C)

    def torch_module(self, device="meta"):
        return nn.LSTM(self.d_in, self.d_hidden, self.num_layers, batch_first=True, device=device)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, forget_bias={self.forget_bias}"


class GRU(RecurrentLayer):
    """A stack of GRU layers, batch-first; loads ``nn.GRU(batch_first=True)`` state dicts.

    ``forward(inputs (batch, time, d_in), h_0 (num_layers, batch, d_hidden) | None)
    -> (outputs (batch, time, d_hidden), h_T (num_layers, batch, d_hidden))``.
    """

    gate_count = 3

    def layer_forward(self, x, state, layer):
        W_ih, W_hh, b_ih, b_hh = self.layer_parameters(layer)
        # b_hn sits inside r_t ⊙ (...), so the two biases cannot be merged as in the LSTM.
        input_terms = F.linear(x, W_ih, b_ih)  # (batch, time, 3*d_hidden)
        (h,) = state
        hidden_states = []
        for input_terms_t in input_terms.unbind(dim=1):
            hidden_terms = torch.addmm(b_hh, h, W_hh.t())
            h = gru_cell_update(input_terms_t, hidden_terms, h)
            hidden_states.append(h)
        return torch.stack(hidden_states, dim=1), (h,)

    def torch_module(self, device="meta"):
        return nn.GRU(self.d_in, self.d_hidden, self.num_layers, batch_first=True, device=device)


# ---------------------------------------------------------------------------------------------
# Parameter counts
# ---------------------------------------------------------------------------------------------
def lstm_parameter_count(d_in: int, d_hidden: int, num_layers: int = 1) -> int:
    """Parameters of :class:`LSTM` (and ``nn.LSTM``): ``4 * d_hidden * (d_layer_in + d_hidden + 2)``
    per layer, four times a vanilla RNN's."""
    return recurrent_parameter_count(4, d_in, d_hidden, num_layers)


def gru_parameter_count(d_in: int, d_hidden: int, num_layers: int = 1) -> int:
    """Parameters of :class:`GRU` (and ``nn.GRU``): ``3 * d_hidden * (d_layer_in + d_hidden + 2)`` per layer."""
    return recurrent_parameter_count(3, d_in, d_hidden, num_layers)


# ---------------------------------------------------------------------------------------------
# The book's gate names and PyTorch's stacked layout
# ---------------------------------------------------------------------------------------------
LSTM_GATES = ("A", "B", "C", "D")  # the book's forget, input, candidate (Ĉ) and output gates
PYTORCH_LSTM_ORDER = ("B", "A", "C", "D")  # the book's names of PyTorch's chunks i, f, g, o
GRU_GATES = ("r", "z", "n")  # PyTorch's chunks: reset, update, candidate (the book's h̃)


def lstm_book_to_pytorch(weights: Mapping[str, object]) -> dict[str, Tensor]:
    """The book's ``W_A .. W_D (d_hidden, d_hidden + d_in)``, acting on ``[h, i]``, and
    ``b_A .. b_D (d_hidden,)`` as an ``nn.LSTMCell`` state dict.

    ``W_X [h, i] = W_X[:, :H] h + W_X[:, H:] i``: the first ``H`` columns go to ``weight_hh``, the
    rest to ``weight_ih``; the chunks are stacked in PyTorch's order i, f, g, o = B, A, Ĉ, D, and
    all of each bias goes to ``bias_ih`` (``bias_hh`` is zero). Arrays keep their dtype.
    """
    W = {gate: torch.as_tensor(weights[f"W_{gate}"]) for gate in LSTM_GATES}
    b = {gate: torch.as_tensor(weights[f"b_{gate}"]) for gate in LSTM_GATES}
    H = W["A"].shape[0]
    return {
        "weight_ih": torch.cat([W[gate][:, H:] for gate in PYTORCH_LSTM_ORDER]),
        "weight_hh": torch.cat([W[gate][:, :H] for gate in PYTORCH_LSTM_ORDER]),
        "bias_ih": torch.cat([b[gate] for gate in PYTORCH_LSTM_ORDER]),
        "bias_hh": torch.zeros(4 * H, dtype=b["A"].dtype),
    }


def lstm_pytorch_to_book(state_dict: Mapping[str, Tensor], layer: int | None = None) -> dict[str, Tensor]:
    """``W_A .. W_D`` on ``[h, i]`` and ``b_A .. b_D = bias_ih + bias_hh`` from an LSTM cell's state
    dict (``layer=None``) or from layer ``layer`` of an LSTM layer's (names ending ``_l{layer}``)."""
    suffix = "" if layer is None else f"_l{layer}"
    weight_ih, weight_hh, bias_ih, bias_hh = (
        torch.as_tensor(state_dict[f"{name}{suffix}"]) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    chunks = zip(PYTORCH_LSTM_ORDER, weight_hh.chunk(4), weight_ih.chunk(4), (bias_ih + bias_hh).chunk(4))
    book: dict[str, Tensor] = {}
    for gate, W_h, W_i, b in chunks:
        book[f"W_{gate}"] = torch.cat([W_h, W_i], dim=1)
        book[f"b_{gate}"] = b
    return {name: book[name] for name in sorted(book)}


def gru_book_to_pytorch(weights: Mapping[str, object]) -> dict[str, Tensor]:
    """``W_ir, W_iz, W_in (d_hidden, d_in)``, ``W_hr, W_hz, W_hn (d_hidden, d_hidden)`` and their
    biases ``b_ir .. b_hn`` as an ``nn.GRUCell`` state dict (chunks r, z, n)."""
    p = {name: torch.as_tensor(value) for name, value in weights.items()}
    return {
        "weight_ih": torch.cat([p[f"W_i{gate}"] for gate in GRU_GATES]),
        "weight_hh": torch.cat([p[f"W_h{gate}"] for gate in GRU_GATES]),
        "bias_ih": torch.cat([p[f"b_i{gate}"] for gate in GRU_GATES]),
        "bias_hh": torch.cat([p[f"b_h{gate}"] for gate in GRU_GATES]),
    }


def gru_pytorch_to_book(state_dict: Mapping[str, Tensor], layer: int | None = None) -> dict[str, Tensor]:
    """The inverse of :func:`gru_book_to_pytorch` (``layer`` as in :func:`lstm_pytorch_to_book`)."""
    suffix = "" if layer is None else f"_l{layer}"
    named: dict[str, Tensor] = {}
    for kind, prefix in (("weight_ih", "W_i"), ("weight_hh", "W_h"), ("bias_ih", "b_i"), ("bias_hh", "b_h")):
        for gate, chunk in zip(GRU_GATES, torch.as_tensor(state_dict[f"{kind}{suffix}"]).chunk(3)):
            named[f"{prefix}{gate}"] = chunk
    return named


# ---------------------------------------------------------------------------------------------
# The three layers of the chapter, by name
# ---------------------------------------------------------------------------------------------
RECURRENT_LAYERS: dict[str, type[RecurrentLayer]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
CELLS = tuple(RECURRENT_LAYERS)


def recurrent_layer(cell: str, d_in: int, d_hidden: int, num_layers: int = 1, *, fused: bool = False) -> RecurrentLayer:
    """A fresh :class:`~course_lib.rnn.RNN` (tanh), :class:`LSTM` or :class:`GRU`, named by ``cell``."""
    return RECURRENT_LAYERS[one_of("cell", cell, CELLS)](d_in, d_hidden, num_layers, fused=fused)
