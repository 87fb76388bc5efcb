"""Recurrent neural networks (Chapter 4): the cell, the layer, and backpropagation through time.

The chapter's equations, one step of a vanilla RNN reading input ``i_t``::

    h_t = f(W_hi i_t + W_hh h_{t-1} + b_h)          f = tanh (or relu)
    o_t = g(W_oh h_t + b_o)                          g = softmax for a language model

and the loss is summed over time, ``L = sum_t l_t(o_t, y_t)``.

Two twins of these equations live here:

* PyTorch modules, written out as a loop over time (:class:`RNNCell`, :class:`RNN`,
  and :class:`RecurrentLM`, a language model around any recurrent layer), whose parameters are named and shaped exactly as in ``nn.RNN`` so that
  ``load_state_dict`` from PyTorch works directly;
* a NumPy forward and hand-written backward pass (:func:`rnn_forward_numpy`,
  :func:`rnn_backward_numpy`) that spell out backpropagation through time step by step,
  with optional truncation.

Mapping of PyTorch's parameter names to the book's symbols (layer ``l``; layer 0 reads the
input, layer ``l > 0`` reads the hidden states of layer ``l - 1``)::

    weight_ih_l{l}   (d_hidden, d_in)       W_hi
    weight_hh_l{l}   (d_hidden, d_hidden)   W_hh
    bias_ih_l{l}     (d_hidden,)            } PyTorch keeps two biases that are only ever added:
    bias_hh_l{l}     (d_hidden,)            } b_h = bias_ih + bias_hh

The read-out ``W_oh, b_o`` is an ordinary ``nn.Linear(d_hidden, vocab_size)`` (``weight`` is ``W_oh``).

Also here: the norms of ``dh_T/dh_k`` behind the vanishing/exploding-gradient picture
(Pascanu, Mikolov and Bengio, 2013) and gradient-norm clipping, the usual cure for explosion.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from course_lib.checks import number, one_of, positive_int
from course_lib.language_model import LanguageModel

__all__ = [
    "ACTIVATIONS",
    "RNN",
    "RNNCell",
    "RecurrentCell",
    "RecurrentLM",
    "RecurrentLayer",
    "clip_grad_norm",
    "hidden_state_jacobian_norms",
    "rnn_backward_numpy",
    "rnn_forward_numpy",
    "rnn_parameter_count",
    "rnn_params_numpy",
    "recurrent_parameter_count",
]

ACTIVATIONS = ("tanh", "relu")


# ---------------------------------------------------------------------------------------------
# Argument checks shared by every recurrent module
# ---------------------------------------------------------------------------------------------
def _check_activation(activation: object, allowed: tuple[str, ...] = ACTIVATIONS) -> str:
    return one_of("activation/nonlinearity", activation, allowed)


def _check_tensor_like(name: str, tensor: object, reference: Tensor) -> Tensor:
    """``tensor`` if it is a floating tensor with ``reference``'s dtype and device."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor, got dtype {tensor.dtype}"
            " (token ids go through an embedding first)"
        )
    if tensor.dtype != reference.dtype:
        raise TypeError(
            f"{name} has dtype {tensor.dtype} but the parameters are {reference.dtype};"
            " convert one of them (e.g. module.double() or tensor.float())"
        )
    if tensor.device != reference.device:
        raise ValueError(
            f"{name} is on {tensor.device} but the parameters are on {reference.device}; move one with .to(device)"
        )
    return tensor


def _check_shape(name: str, tensor: Tensor, expected: tuple[int, ...], layout: str) -> None:
    if tuple(tensor.shape) != expected:
        raise ValueError(f"{name} must have shape {layout} = {expected}, got {tuple(tensor.shape)}")


def pytorch_uniform_init(module: nn.Module, d_hidden: int) -> None:
    """PyTorch's initialisation of recurrent weights: every entry uniform in
    ``(-1/sqrt(d_hidden), 1/sqrt(d_hidden))``.

    Drawn from PyTorch's global generator, like every ``nn`` module: seed it first
    (``course_lib.seed_everything``).
    """
    bound = 1.0 / math.sqrt(d_hidden)
    for parameter in module.parameters():
        nn.init.uniform_(parameter, -bound, bound)


# ---------------------------------------------------------------------------------------------
# Cells: one time step
# ---------------------------------------------------------------------------------------------
class RecurrentCell(nn.Module):
    """One time step of a recurrent network; the parameter layout of PyTorch's ``nn.*Cell``.

    ``weight_ih`` is ``(gate_count * d_hidden, d_in)``, ``weight_hh`` is
    ``(gate_count * d_hidden, d_hidden)``, ``bias_ih`` and ``bias_hh`` are
    ``(gate_count * d_hidden,)``; the gates are stacked along the first axis.
    """

    gate_count: ClassVar[int] = 1

    def __init__(self, d_in: int, d_hidden: int) -> None:
        super().__init__()
        self.d_in = positive_int("d_in", d_in)
        self.d_hidden = positive_int("d_hidden", d_hidden)
        rows = self.gate_count * self.d_hidden
        self.weight_ih = nn.Parameter(torch.empty(rows, self.d_in))
        self.weight_hh = nn.Parameter(torch.empty(rows, self.d_hidden))
        self.bias_ih = nn.Parameter(torch.empty(rows))
        self.bias_hh = nn.Parameter(torch.empty(rows))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        pytorch_uniform_init(self, self.d_hidden)

    def check_step_input(self, i_t: object) -> Tensor:
        i_t = _check_tensor_like("input i_t", i_t, self.weight_ih)
        if i_t.dim() != 2 or i_t.shape[1] != self.d_in:
            raise ValueError(
                f"input i_t must have shape (batch, d_in) = (batch, {self.d_in}), got {tuple(i_t.shape)}"
                " (for a single example, add a batch dimension with i_t.unsqueeze(0))"
            )
        return i_t

    def check_step_state(self, name: str, state: object, batch: int) -> Tensor:
        if state is None:
            return self.weight_ih.new_zeros(batch, self.d_hidden)
        state = _check_tensor_like(name, state, self.weight_ih)
        _check_shape(name, state, (batch, self.d_hidden), "(batch, d_hidden)")
        return state

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, d_hidden={self.d_hidden}"


class RNNCell(RecurrentCell):
    """``h_t = f(W_hi i_t + b_ih + W_hh h_{t-1} + b_hh)``; loads ``nn.RNNCell`` state dicts.

    ``forward(i_t (batch, d_in), h_prev (batch, d_hidden) | None) -> h_t (batch, d_hidden)``;
    a missing ``h_prev`` is zeros.
    """

    def __init__(self, d_in: int, d_hidden: int, nonlinearity: str = "tanh") -> None:
        nonlinearity = _check_activation(nonlinearity)
        super().__init__(d_in, d_hidden)
        self.nonlinearity = nonlinearity

    def forward(self, i_t: Tensor, h_prev: Tensor | None = None) -> Tensor:
        i_t = self.check_step_input(i_t)
        h_prev = self.check_step_state("h_prev", h_prev, i_t.shape[0])
        f = torch.tanh if self.nonlinearity == "tanh" else torch.relu
        return f(F.linear(i_t, self.weight_ih, self.bias_ih) + F.linear(h_prev, self.weight_hh, self.bias_hh))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, nonlinearity={self.nonlinearity!r}"


# ---------------------------------------------------------------------------------------------
# Layers: a whole sequence, one or more stacked layers
# ---------------------------------------------------------------------------------------------
class RecurrentLayer(nn.Module):
    """What :class:`RNN`, ``LSTM`` and ``GRU`` share: PyTorch's parameter layout, the checks on
    inputs and states, and stacking layers.

    ``forward(inputs (batch, time, d_in), state=None) -> (outputs, final_state)`` with
    ``outputs`` the hidden states of the top layer, ``(batch, time, d_hidden)``, and the state
    per layer ``(num_layers, batch, d_hidden)`` (a pair ``(h, C)`` for the LSTM), exactly as
    ``nn.RNN/nn.LSTM/nn.GRU(batch_first=True)`` return them.

    ``fused=True`` runs PyTorch's own module on these same parameters (for speed once the
    chapter has taught the loop); the state dict is the same either way, so the switch can be
    flipped on a trained model.

    Subclasses set ``gate_count`` and ``state_names`` and write ``layer_forward``, the loop over
    time of one layer.
    """

    gate_count: ClassVar[int] = 1
    state_names: ClassVar[tuple[str, ...]] = ("h_0",)

    def __init__(self, d_in: int, d_hidden: int, num_layers: int = 1, *, fused: bool = False) -> None:
        super().__init__()
        self.d_in = positive_int("d_in", d_in)
        self.d_hidden = positive_int("d_hidden", d_hidden)
        self.num_layers = positive_int("num_layers", num_layers)
        self.fused = bool(fused)
        rows = self.gate_count * self.d_hidden
        for layer in range(self.num_layers):
            d_layer_in = self.d_in if layer == 0 else self.d_hidden
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(rows, d_layer_in)))
            self.register_parameter(f"weight_hh_l{layer}", nn.Parameter(torch.empty(rows, self.d_hidden)))
            self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(rows)))
            self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(rows)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        pytorch_uniform_init(self, self.d_hidden)

    def layer_parameters(self, layer: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of layer ``layer``."""
        if not 0 <= layer < self.num_layers:
            raise ValueError(f"layer must be in [0, {self.num_layers}), got {layer}")
        return tuple(getattr(self, f"{kind}_l{layer}") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def layer_forward(
        self, x: Tensor, state: tuple[Tensor, ...], layer: int
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One layer over the whole sequence: ``x (batch, time, d_layer_in)`` and the layer's
        initial state (a tuple of ``(batch, d_hidden)`` tensors) to the hidden states
        ``(batch, time, d_hidden)`` and the final state."""
        raise NotImplementedError

    def torch_module(self, device: str | torch.device = "meta") -> nn.RNNBase:
        """The PyTorch module with this layer's architecture (its own weights are not used)."""
        raise NotImplementedError

    def forward(self, inputs: Tensor, state: Tensor | tuple[Tensor, Tensor] | None = None):
        reference = self.weight_ih_l0
        inputs = _check_tensor_like("inputs", inputs, reference)
        if inputs.dim() != 3:
            raise ValueError(
                f"inputs must have shape (batch, time, d_in), got a {inputs.dim()}-D tensor of shape"
                f" {tuple(inputs.shape)} (for a single sequence, add a batch dimension with inputs.unsqueeze(0))"
            )
        batch, time, d_in = inputs.shape
        if d_in != self.d_in:
            raise ValueError(f"inputs have d_in = {d_in} features per step but the layer expects d_in = {self.d_in}")
        if time == 0:
            raise ValueError("inputs have length 0 (time = 0); a recurrent layer needs at least one time step")
        states = self.check_state(state, batch)

        if self.fused:
            torch_state = states[0] if len(states) == 1 else states
            return functional_call(self.torch_module(), dict(self.named_parameters()), (inputs, torch_state))

        x, finals = inputs, []
        for layer in range(self.num_layers):
            x, final = self.layer_forward(x, tuple(s[layer] for s in states), layer)
            finals.append(final)
        stacked = tuple(torch.stack([final[j] for final in finals]) for j in range(len(self.state_names)))
        return x, (stacked[0] if len(stacked) == 1 else stacked)

    def check_state(self, state: object, batch: int) -> tuple[Tensor, ...]:
        """The initial state as a tuple of ``(num_layers, batch, d_hidden)`` tensors (zeros if None)."""
        shape = (self.num_layers, batch, self.d_hidden)
        reference = self.weight_ih_l0
        if state is None:
            return tuple(reference.new_zeros(shape) for _ in self.state_names)
        if len(self.state_names) == 1:
            parts = (state,)
        elif isinstance(state, (tuple, list)) and len(state) == len(self.state_names):
            parts = tuple(state)
        else:
            raise TypeError(
                f"the initial state must be a pair ({', '.join(self.state_names)}) of tensors of shape"
                f" (num_layers, batch, d_hidden), got {type(state).__name__}"
            )
        for name, part in zip(self.state_names, parts):
            _check_tensor_like(f"initial state {name}", part, reference)
            _check_shape(f"initial state {name}", part, shape, "(num_layers, batch, d_hidden)")
        return parts

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, d_hidden={self.d_hidden}, num_layers={self.num_layers}, fused={self.fused}"


class RNN(RecurrentLayer):
    """A stack of vanilla RNN layers, batch-first; loads ``nn.RNN(batch_first=True)`` state dicts.

    ``forward(inputs (batch, time, d_in), h_0 (num_layers, batch, d_hidden) | None)
    -> (outputs (batch, time, d_hidden), h_T (num_layers, batch, d_hidden))``.
    """

    def __init__(
        self, d_in: int, d_hidden: int, num_layers: int = 1, nonlinearity: str = "tanh", *, fused: bool = False
    ) -> None:
        nonlinearity = _check_activation(nonlinearity)
        super().__init__(d_in, d_hidden, num_layers, fused=fused)
        self.nonlinearity = nonlinearity

    def layer_forward(self, x, state, layer):
        W_hi, W_hh, b_ih, b_hh = self.layer_parameters(layer)
        f = torch.tanh if self.nonlinearity == "tanh" else torch.relu
        # W_hi i_t + b_h for every t in one matrix product, outside the loop: only the
        # W_hh h_{t-1} term depends on the previous step and must wait for it.
        input_terms = F.linear(x, W_hi, b_ih + b_hh)  # (batch, time, d_hidden)
        (h,) = state
        hidden_states = []
        # unbind, not input_terms[:, t]: its gradient is one stack instead of T full-size scatters
        for input_terms_t in input_terms.unbind(dim=1):
            h = f(torch.addmm(input_terms_t, h, W_hh.t()))
            hidden_states.append(h)
        return torch.stack(hidden_states, dim=1), (h,)

    def torch_module(self, device="meta"):
        return nn.RNN(
            self.d_in, self.d_hidden, self.num_layers, nonlinearity=self.nonlinearity, batch_first=True, device=device
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, nonlinearity={self.nonlinearity!r}"


def recurrent_parameter_count(gate_count: int, d_in: int, d_hidden: int, num_layers: int = 1) -> int:
    """Parameters of a stack of recurrent layers with ``gate_count`` gates in PyTorch's layout.

    Per layer: ``gate_count * d_hidden * (d_layer_in + d_hidden + 2)`` (two weight matrices,
    two bias vectors); layer 0 reads ``d_in`` features, the others ``d_hidden``.
    """
    gate_count = positive_int("gate_count", gate_count)
    d_in = positive_int("d_in", d_in)
    d_hidden = positive_int("d_hidden", d_hidden)
    num_layers = positive_int("num_layers", num_layers)
    first = gate_count * d_hidden * (d_in + d_hidden + 2)
    rest = gate_count * d_hidden * (d_hidden + d_hidden + 2)
    return first + (num_layers - 1) * rest


def rnn_parameter_count(d_in: int, d_hidden: int, num_layers: int = 1) -> int:
    """Parameters of :class:`RNN` (and ``nn.RNN``): ``d_hidden * (d_layer_in + d_hidden + 2)`` per layer."""
    return recurrent_parameter_count(1, d_in, d_hidden, num_layers)


# ---------------------------------------------------------------------------------------------
# Backpropagation through time, by hand, in NumPy
# ---------------------------------------------------------------------------------------------
PARAM_NAMES = ("W_hi", "W_hh", "b_h", "W_oh", "b_o")


def rnn_params_numpy(d_in: int, d_hidden: int, d_out: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float64 parameters ``W_hi (d_hidden, d_in), W_hh (d_hidden, d_hidden), b_h (d_hidden,),
    W_oh (d_out, d_hidden), b_o (d_out,)``, uniform in ``±1/sqrt(d_hidden)`` as PyTorch draws them."""
    d_in = positive_int("d_in", d_in)
    d_hidden = positive_int("d_hidden", d_hidden)
    d_out = positive_int("d_out", d_out)
    rng = np.random.default_rng(seed)
    bound = 1.0 / math.sqrt(d_hidden)
    shapes = {"W_hi": (d_hidden, d_in), "W_hh": (d_hidden, d_hidden), "b_h": (d_hidden,),
              "W_oh": (d_out, d_hidden), "b_o": (d_out,)}
    return {name: rng.uniform(-bound, bound, size=shape) for name, shape in shapes.items()}


def _check_numpy_params(params: object) -> dict[str, np.ndarray]:
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict with keys {PARAM_NAMES}, got {type(params).__name__}")
    missing = [name for name in PARAM_NAMES if name not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; it needs {PARAM_NAMES} (see rnn_params_numpy)")
    p = {name: np.asarray(params[name], dtype=np.float64) for name in PARAM_NAMES}
    if p["W_hh"].ndim != 2 or p["W_hh"].shape[0] != p["W_hh"].shape[1]:
        raise ValueError(f"W_hh must be square (d_hidden, d_hidden), got {p['W_hh'].shape}")
    H = p["W_hh"].shape[0]
    if p["W_hi"].ndim != 2 or p["W_hi"].shape[0] != H:
        raise ValueError(f"W_hi must have shape (d_hidden, d_in) = ({H}, d_in), got {p['W_hi'].shape}")
    if p["b_h"].shape != (H,):
        raise ValueError(f"b_h must have shape (d_hidden,) = ({H},), got {p['b_h'].shape}")
    if p["W_oh"].ndim != 2 or p["W_oh"].shape[1] != H:
        raise ValueError(f"W_oh must have shape (d_out, d_hidden) = (d_out, {H}), got {p['W_oh'].shape}")
    if p["b_o"].shape != (p["W_oh"].shape[0],):
        raise ValueError(f"b_o must have shape (d_out,) = ({p['W_oh'].shape[0]},), got {p['b_o'].shape}")
    return p


def _activation_derivative(activation: str, h: np.ndarray) -> np.ndarray:
    """``f'(a_t)`` written through ``h_t = f(a_t)``: ``1 - h_t^2`` for tanh, ``[h_t > 0]`` for relu."""
    return 1.0 - h**2 if activation == "tanh" else (h > 0).astype(h.dtype)


def rnn_forward_numpy(
    params: Mapping[str, np.ndarray],
    inputs: np.ndarray,
    targets: np.ndarray,
    h0: np.ndarray | None = None,
    activation: str = "tanh",
) -> tuple[float, dict]:
    """Forward pass of a one-layer RNN with a softmax read-out, one sequence, in float64.

    ``inputs (time, d_in)`` are ``i_1 .. i_T``; ``targets (time,)`` are class indices ``y_t`` in
    ``[0, d_out)``; ``h0 (d_hidden,)`` defaults to zeros. For t = 1..T::

        a_t = W_hi i_t + W_hh h_{t-1} + b_h,   h_t = f(a_t)
        z_t = W_oh h_t + b_o,                  p_t = softmax(z_t)
        L   = sum_t -log p_t[y_t]

    Returns ``(L, cache)``; the cache keeps what :func:`rnn_backward_numpy` needs
    (``h`` is ``(time + 1, d_hidden)`` with ``h[0] = h_0``, ``p`` is ``(time, d_out)``).
    """
    p = _check_numpy_params(params)
    activation = _check_activation(activation)
    W_hi, W_hh, b_h, W_oh, b_o = (p[name] for name in PARAM_NAMES)
    H, D = W_hi.shape
    V = W_oh.shape[0]

    inputs = np.asarray(inputs, dtype=np.float64)
    if inputs.ndim != 2 or inputs.shape[1] != D:
        raise ValueError(f"inputs must have shape (time, d_in) = (time, {D}), got {inputs.shape}")
    T = inputs.shape[0]
    if T == 0:
        raise ValueError("inputs have length 0; the sequence needs at least one time step")
    targets = np.asarray(targets)
    if targets.shape != (T,) or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(
            f"targets must be integer class indices of shape (time,) = ({T},), got {targets.dtype} {targets.shape}"
        )
    if targets.min() < 0 or targets.max() >= V:
        raise ValueError(
            f"targets must lie in [0, d_out) = [0, {V}), got values in [{targets.min()}, {targets.max()}]"
        )
    h_init = np.zeros(H) if h0 is None else np.asarray(h0, dtype=np.float64)
    if h_init.shape != (H,):
        raise ValueError(f"h0 must have shape (d_hidden,) = ({H},), got {h_init.shape}")

    f = np.tanh if activation == "tanh" else (lambda a: np.maximum(a, 0.0))
    h = np.zeros((T + 1, H))
    h[0] = h_init
    probs = np.zeros((T, V))
    loss = 0.0
    for t in range(1, T + 1):
        i_t = inputs[t - 1]
        h[t] = f(W_hi @ i_t + W_hh @ h[t - 1] + b_h)
        z_t = W_oh @ h[t] + b_o
        z_t = z_t - z_t.max()  # softmax is unchanged by a shift; this one keeps exp from overflowing
        log_p_t = z_t - np.log(np.exp(z_t).sum())
        probs[t - 1] = np.exp(log_p_t)
        loss -= log_p_t[targets[t - 1]]
    cache = {"params": p, "inputs": inputs, "targets": targets, "h": h, "p": probs, "activation": activation}
    return float(loss), cache


def rnn_backward_numpy(cache: dict, k: int | None = None) -> dict[str, np.ndarray]:
    """Backpropagation through time for :func:`rnn_forward_numpy`: the gradient of ``L``.

    Going backwards from t = T, with ``dh_next = dL/dh_t`` arriving from the future::

        dz_t  = p_t - onehot(y_t)                       (softmax + cross-entropy)
        dW_oh += dz_t h_t^T,   db_o += dz_t
        dh_t  = W_oh^T dz_t + dh_next                   (read-out now + all later steps)
        δ_t   = f'(a_t) ⊙ dh_t = diag(1 - h_t^2) dh_t   (for tanh)
        dW_hi += δ_t i_t^T,   dW_hh += δ_t h_{t-1}^T,   db_h += δ_t
        dh_next = W_hh^T δ_t                            (on to h_{t-1})

    so the error reaching ``h_k`` from step t has been multiplied by ``W_hh^T diag(f'(a))`` once per
    step between them: the product that vanishes or explodes.

    ``k`` truncates: the sequence is cut into chunks of ``k`` steps (1..k, k+1..2k, ...) and no
    gradient crosses a cut, exactly as when training detaches the hidden state every ``k`` steps;
    a loss reaches back at most ``k`` steps. ``h0`` gets the gradient of the first chunk.
    Returns a dict with ``W_hi, W_hh, b_h, W_oh, b_o, h0``, each shaped as its parameter.
    """
    if not isinstance(cache, dict) or "h" not in cache or "p" not in cache:
        raise TypeError("cache must be the dict returned by rnn_forward_numpy")
    if k is not None:
        k = positive_int("k (truncation length)", k)
    p = cache["params"]
    W_hh, W_oh = p["W_hh"], p["W_oh"]
    inputs, targets, h, probs = cache["inputs"], cache["targets"], cache["h"], cache["p"]
    T = inputs.shape[0]

    grads = {name: np.zeros_like(p[name]) for name in PARAM_NAMES}
    dh_next = np.zeros(W_hh.shape[0])
    for t in range(T, 0, -1):
        dz_t = probs[t - 1].copy()
        dz_t[targets[t - 1]] -= 1.0
        grads["W_oh"] += np.outer(dz_t, h[t])
        grads["b_o"] += dz_t
        dh_t = W_oh.T @ dz_t + dh_next
        delta_t = _activation_derivative(cache["activation"], h[t]) * dh_t
        grads["W_hi"] += np.outer(delta_t, inputs[t - 1])
        grads["W_hh"] += np.outer(delta_t, h[t - 1])
        grads["b_h"] += delta_t
        dh_next = W_hh.T @ delta_t
        if k is not None and (t - 1) > 0 and (t - 1) % k == 0:
            dh_next = np.zeros_like(dh_next)  # h_{t-1} closes a chunk: it was detached
    grads["h0"] = dh_next
    return grads


# ---------------------------------------------------------------------------------------------
# Vanishing and exploding gradients
# ---------------------------------------------------------------------------------------------
def hidden_state_jacobian_norms(
    W_hh: np.ndarray,
    T: int,
    activation: str = "tanh",
    *,
    h0: np.ndarray | None = None,
    input_terms: np.ndarray | None = None,
    norm: str = "spectral",
) -> np.ndarray:
    """Norms of ``dh_T/dh_k`` for k = T, T-1, ..., 0 (entry ``s`` is ``s`` steps back), float64.

    The trajectory is ``h_t = f(W_hh h_{t-1} + u_t)`` from ``h0 (d_hidden,)`` (default zeros),
    where ``input_terms (T, d_hidden)`` holds ``u_t = W_hi i_t + b_h`` (default zeros: no input).
    Each step's Jacobian is ``dh_t/dh_{t-1} = diag(f'(a_t)) W_hh``, and ``dh_T/dh_k`` is their
    product for t = T down to k + 1 (Pascanu et al., 2013). ``activation`` is ``"tanh"``,
    ``"relu"`` or ``"linear"`` (then the product is just ``W_hh^(T-k)``); ``norm`` is
    ``"spectral"`` (largest singular value) or ``"frobenius"``.
    With ``relu`` and a zero state, every unit is off (f'(0) = 0, as in PyTorch): pass ``h0`` or
    ``input_terms`` for a non-trivial trajectory.
    """
    activation = _check_activation(activation, ACTIVATIONS + ("linear",))
    if norm not in ("spectral", "frobenius"):
        raise ValueError(f"norm must be 'spectral' or 'frobenius', got {norm!r}")
    T = positive_int("T", T)
    W_hh = np.asarray(W_hh, dtype=np.float64)
    if W_hh.ndim != 2 or W_hh.shape[0] != W_hh.shape[1]:
        raise ValueError(f"W_hh must be a square matrix (d_hidden, d_hidden), got shape {W_hh.shape}")
    H = W_hh.shape[0]
    h = np.zeros(H) if h0 is None else np.asarray(h0, dtype=np.float64)
    if h.shape != (H,):
        raise ValueError(f"h0 must have shape (d_hidden,) = ({H},), got {h.shape}")
    u = np.zeros((T, H)) if input_terms is None else np.asarray(input_terms, dtype=np.float64)
    if u.shape != (T, H):
        raise ValueError(f"input_terms must have shape (T, d_hidden) = ({T}, {H}), got {u.shape}")

    # Forward: keep f'(a_t) of every step.
    slopes = np.zeros((T, H))
    for t in range(T):
        a_t = W_hh @ h + u[t]
        if activation == "tanh":
            h = np.tanh(a_t)
            slopes[t] = 1.0 - h**2
        elif activation == "relu":
            h = np.maximum(a_t, 0.0)
            slopes[t] = (a_t > 0).astype(np.float64)
        else:
            h = a_t
            slopes[t] = 1.0

    matrix_norm = (lambda M: np.linalg.norm(M, 2)) if norm == "spectral" else (lambda M: np.linalg.norm(M, "fro"))
    jacobian = np.eye(H)  # dh_T/dh_T
    norms = [matrix_norm(jacobian)]
    for t in range(T - 1, -1, -1):
        jacobian = jacobian @ (slopes[t][:, None] * W_hh)  # ... times diag(f'(a_t)) W_hh
        norms.append(matrix_norm(jacobian))
    return np.array(norms)


def clip_grad_norm(
    parameters: Tensor | Iterable[Tensor], max_norm: float, *, error_if_nonfinite: bool = False
) -> Tensor:
    """Rescale the gradients in place so that their joint 2-norm is at most ``max_norm``.

    The norm is taken over all gradients as if they were one long vector,
    ``||g|| = sqrt(sum_p sum_j g_pj^2)``; every gradient is multiplied by
    ``min(1, max_norm / (||g|| + 1e-6))`` (the direction is kept, only the length is capped).
    Returns ``||g||`` before clipping, as ``torch.nn.utils.clip_grad_norm_`` does; parameters
    without a gradient are skipped, and with none at all the norm is 0.
    """
    max_norm = number("max_norm", max_norm, above=0.0, what="a positive finite number")
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    for parameter in parameters:
        if not isinstance(parameter, Tensor):
            raise TypeError(f"parameters must be tensors (e.g. model.parameters()), got {type(parameter).__name__}")
    grads = [parameter.grad for parameter in parameters if parameter.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    with torch.no_grad():
        total_norm = torch.sqrt(sum(grad.pow(2).sum() for grad in grads))
        if error_if_nonfinite and not torch.isfinite(total_norm):
            raise RuntimeError(f"the total gradient norm is {total_norm.item()}; the gradients cannot be clipped")
        scale = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)
        for grad in grads:
            grad.mul_(scale.to(grad.dtype))
    return total_norm


# ---------------------------------------------------------------------------------------------
# A recurrent language model: embedding, any recurrent layer, read-out
# ---------------------------------------------------------------------------------------------
class RecurrentLM(nn.Module, LanguageModel):
    """Embedding -> a recurrent layer -> linear read-out to vocabulary logits::

        i_t = E[x_t],   (h_t, state_t) = layer(i_t, state_{t-1}),   o_t = softmax(W_oh h_t + b_o)

    ``layer`` is any :class:`RecurrentLayer` (:class:`RNN` here, ``LSTM`` and ``GRU`` from
    :mod:`course_lib.lstm`); the embedding has the layer's ``d_in`` features.
    ``forward(ids (batch, time)) -> logits (batch, time, vocab_size)``: the logits at position t
    score the token at t + 1. State-dict names: ``embedding.weight``, ``rnn.*`` (PyTorch's
    ``nn.RNN/LSTM/GRU`` names), ``readout.weight`` (W_oh) and ``readout.bias`` (b_o).

    As a :class:`~course_lib.language_model.LanguageModel` its state is the layer's,
    ``(num_layers, batch, d_hidden)`` (a pair ``(h, C)`` for the LSTM), batch along dimension 1.
    """

    state_batch_dim = 1

    def __init__(self, vocab_size: int, layer: RecurrentLayer) -> None:
        super().__init__()
        if not isinstance(layer, RecurrentLayer):
            raise TypeError(f"layer must be a RecurrentLayer (RNN, LSTM or GRU of course_lib), "
                            f"got {type(layer).__name__}")
        self.vocab_size = positive_int("vocab_size", vocab_size)
        self.embedding = nn.Embedding(self.vocab_size, layer.d_in)
        self.rnn = layer
        self.readout = nn.Linear(layer.d_hidden, self.vocab_size)

    def reset_parameters(self) -> None:
        """Draw every weight afresh, in the order embedding, layer, read-out (the order in which a
        recipe's seed has always drawn them, so that its checkpoint can be reproduced)."""
        self.embedding.reset_parameters()
        self.rnn.reset_parameters()
        self.readout.reset_parameters()

    @property
    def fused(self) -> bool:
        return self.rnn.fused

    @fused.setter
    def fused(self, value: bool) -> None:
        self.rnn.fused = bool(value)

    def forward_with_state(self, ids: Tensor, state=None):
        """``(logits (batch, time, vocab_size), final state)``; pass the state back in to continue
        a sequence (as when generating one token at a time)."""
        ids = self.check_ids(ids)
        hidden_states, state = self.rnn(self.embedding(ids), state)
        return self.readout(hidden_states), state

    def forward(self, ids: Tensor, state=None) -> Tensor:
        return self.forward_with_state(ids, state)[0]

    # ---- the language-model protocol ----------------------------------------------------------
    def initial_state(self, batch_size: int):
        """Zeros, ``(num_layers, batch, d_hidden)`` (the LSTM: a pair of them)."""
        states = self.rnn.check_state(None, positive_int("batch_size", batch_size))
        return states[0] if len(states) == 1 else states

    def read(self, ids: Tensor, state):
        """The whole chunk in one pass of the layer: ``(log_probs (batch, time, vocab), state)``."""
        logits, state = self.forward_with_state(ids, state)
        return torch.log_softmax(logits, dim=-1), state

    def step(self, tokens: Tensor, state):
        log_probs, state = self.read(tokens.reshape(-1, 1), state)
        return log_probs[:, 0], state
