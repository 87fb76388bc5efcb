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

Parameters are laid out as in ``nn.LSTM`` / ``nn.GRU`` so their state dicts load directly. The
gates' weights are stacked along the first axis; ``W_A [h, i]`` is split into an input part
(in ``weight_ih``) and a hidden part (in ``weight_hh``), and each ``b`` into ``bias_ih + bias_hh``::

    LSTM  weight_ih_l{l} (4*d_hidden, d_in), chunks in PyTorch's order i, f, g, o
            = the book's  B (input gate), A (forget gate), Ĉ (candidate), D (output gate)
          W_A = [weight_hh_l{l}[H:2H], weight_ih_l{l}[H:2H]],  b_A = bias_ih_l{l}[H:2H] + bias_hh_l{l}[H:2H]
    GRU   weight_ih_l{l} (3*d_hidden, d_in), chunks r, z, n

(rows ``H:2H`` with ``H = d_hidden``; the other gates likewise with their chunk.)
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.rnn import RecurrentCell, RecurrentLayer, recurrent_parameter_count, rnn_parameter_count

__all__ = [
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "LSTMGates",
    "gru_cell_update",
    "gru_parameter_count",
    "lstm_cell_update",
    "lstm_gates",
    "lstm_parameter_count",
    "rnn_parameter_count",
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
    if isinstance(forget_bias, bool) or not isinstance(forget_bias, (int, float)) or not math.isfinite(forget_bias):
        raise ValueError(f"forget_bias must be a finite number, got {forget_bias!r}")
    return float(forget_bias)


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
