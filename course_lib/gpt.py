"""GPT (Chapter 10): a decoder-only Transformer trained left to right (Radford et al., 2018, 2019).

GPT-2 is Chapter 7's :class:`~course_lib.transformer.TransformerLM` with GPT-2's choices::

    x_0 = E[w_t] + P[t]                     wte (V, d) and learned positions wpe (T_max, d)
    a_l = x_{l-1} + Attn(LN_1(x_{l-1}))     pre-norm causal multi-head self-attention
    x_l = a_l + MLP(LN_2(a_l))              MLP(h) = GELU_tanh(h W_fc + b_fc) W_proj + b_proj
    P(w_{t+1} | w_1..w_t) = softmax(LN_f(x_L) Eᵀ)          lm_head tied to wte

    loss = -(1/N) Σ_t log P(w_{t+1} | w_1..w_t)             the causal language-modelling objective

Each line is a piece of Chapter 7, imported, not copied: :class:`GPT` is a ``TransformerLM``
built from a :class:`GPTConfig`, whose defaults are GPT-2 small's (``GPTConfig.gpt2()``: 50,257
tokens, 1,024 positions, 12 blocks of 12 heads, width 768: 124,439,808 parameters with the tied
matrix counted once). Attention runs on ``F.scaled_dot_product_attention`` (``fused=True``) or on
Chapter 6's written-out attention (``model.fused = False``): same parameters, same numbers.

Hugging Face's ``GPT2LMHeadModel`` names the same tensors differently, and stores its projections
as ``Conv1D`` weights ``(d_in, d_out)``, the transpose of a ``Linear``'s ``(d_out, d_in)``:

======================================  ==========================================  ==========
``GPT2LMHeadModel``                     ``GPT``                                     transposed
======================================  ==========================================  ==========
``transformer.wte.weight``              ``embedding.weight``
``transformer.wpe.weight``              ``positions.weight``
``transformer.h.{l}.ln_1.*``            ``blocks.{l}.norm1.*``
``transformer.h.{l}.attn.c_attn.*``     ``blocks.{l}.self_attention.in_proj_*``     weight
``transformer.h.{l}.attn.c_proj.*``     ``blocks.{l}.self_attention.out_proj.*``    weight
``transformer.h.{l}.ln_2.*``            ``blocks.{l}.norm2.*``
``transformer.h.{l}.mlp.c_fc.*``        ``blocks.{l}.feed_forward.linear1.*``       weight
``transformer.h.{l}.mlp.c_proj.*``      ``blocks.{l}.feed_forward.linear2.*``       weight
``transformer.ln_f.*``                  ``norm.*``
``lm_head.weight``                      ``readout.weight`` (``embedding.weight``)
======================================  ==========================================  ==========

:func:`from_hf_state_dict` and :func:`to_hf_state_dict` translate (dropping the causal-mask
buffers ``attn.bias`` / ``attn.masked_bias`` older versions store; with tied embeddings
``readout.weight`` and ``embedding.weight`` are one tensor); :meth:`GPTConfig.from_hf`
and :meth:`GPTConfig.hf_config_kwargs` translate the configuration.

As a language model (the course's protocol) a GPT is a ``TransformerLM``: its state is Chapter
7's key-value cache, so generation reads one new position per step.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from course_lib import checks
from course_lib.transformer import TransformerLM, TransformerLMConfig

__all__ = ["GPT", "GPTConfig", "from_hf_state_dict", "to_hf_state_dict"]

IGNORE_INDEX = -100  # targets equal to it add nothing to the loss (PyTorch's convention)

# GPT-2's activation names in Hugging Face configurations, and the course's name for each.
_HF_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}


@dataclass
class GPTConfig(TransformerLMConfig):
    """The sizes of a :class:`GPT`, in the book's symbols; the defaults are GPT-2 small's.

    ``vocab_size`` V (``vocab_size``), ``max_context`` T_max (``n_positions``, nanoGPT's
    ``block_size``), ``num_layers`` L (``n_layer``), ``num_heads`` h (``n_head``), ``d_model`` d
    (``n_embd``), ``d_ff`` (``n_inner``, default 4d), ``tie_embeddings`` (``lm_head`` = ``wte``;
    the chapter measures with and without), ``dropout`` (0 for the checks against
    ``transformers``), ``activation`` GPT-2's tanh GELU. Positions are learned, as in GPT.
    """

    vocab_size: int = 50257
    d_model: int = 768
    num_heads: int = 12
    num_layers: int = 12
    positions: str = "learned"
    max_context: int | None = 1024
    activation: str = "gelu_tanh"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.positions != "learned":
            raise checks.ArgumentError(f"a GPT learns its positions (wpe); positions must be 'learned', "
                                       f"got {self.positions!r} (use TransformerLMConfig for sinusoidal ones)")

    @classmethod
    def gpt2(cls, **changes) -> "GPTConfig":
        """GPT-2 small: V = 50,257, T_max = 1,024, L = 12, h = 12, d = 768 (``changes`` override)."""
        return cls(**{**dict(vocab_size=50257, max_context=1024, num_layers=12, num_heads=12, d_model=768),
                      **changes})

    @classmethod
    def from_hf(cls, hf_config) -> "GPTConfig":
        """The configuration of a ``transformers.GPT2Config`` (read by attribute)."""
        if getattr(hf_config, "scale_attn_by_inverse_layer_idx", False):
            raise checks.ArgumentError("scale_attn_by_inverse_layer_idx=True scales each layer's attention "
                                       "differently, which GPT does not do; use a config with it False")
        dropouts = {hf_config.resid_pdrop, hf_config.embd_pdrop, hf_config.attn_pdrop}
        if len(dropouts) != 1:
            raise checks.ArgumentError(f"GPT uses one dropout probability; resid_pdrop, embd_pdrop and "
                                       f"attn_pdrop differ ({sorted(dropouts)}): set them equal")
        activation = checks.one_of("activation_function", hf_config.activation_function, _HF_ACTIVATIONS)
        return cls(vocab_size=hf_config.vocab_size, max_context=hf_config.n_positions,
                   num_layers=hf_config.n_layer, num_heads=hf_config.n_head, d_model=hf_config.n_embd,
                   d_ff=hf_config.n_inner or 4 * hf_config.n_embd, dropout=dropouts.pop(),
                   activation=_HF_ACTIVATIONS[activation], layer_norm_eps=hf_config.layer_norm_epsilon,
                   tie_embeddings=bool(getattr(hf_config, "tie_word_embeddings", True)))

    def hf_config_kwargs(self) -> dict:
        """Keyword arguments of the ``transformers.GPT2Config`` of the same model."""
        activation = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}[self.activation]
        return dict(vocab_size=self.vocab_size, n_positions=self.max_context, n_layer=self.num_layers,
                    n_head=self.num_heads, n_embd=self.d_model, n_inner=self.d_ff,
                    activation_function=activation, layer_norm_epsilon=self.layer_norm_eps,
                    resid_pdrop=self.dropout, embd_pdrop=self.dropout, attn_pdrop=self.dropout,
                    tie_word_embeddings=self.tie_embeddings)

    def parameter_count_formula(self) -> dict[str, int]:
        """The parameters of each component, by formula (d = ``d_model``, f = ``d_ff``)::

            wte  V d          wpe  T_max d          ln_f  2d          lm_head  V d (tied: wte itself)
            per block: ln_1 2d, attn.c_attn 3d² + 3d, attn.c_proj d² + d, ln_2 2d,
                       mlp.c_fc d f + f, mlp.c_proj f d + d          (12d² + 13d when f = 4d)

        ``total`` counts each tensor once, as ``model.parameters()`` does (with tied embeddings
        the matrix ``E`` once); ``total counting lm_head`` adds ``V d`` for a tied ``lm_head``
        (the figure of a paper that counts ``wte`` and ``lm_head`` apart).
        """
        d, f, V, L = self.d_model, self.d_ff, self.vocab_size, self.num_layers
        block = {"ln_1": 2 * d, "attn.c_attn": 3 * d * d + 3 * d, "attn.c_proj": d * d + d, "ln_2": 2 * d,
                 "mlp.c_fc": d * f + f, "mlp.c_proj": f * d + d}
        rows = {"wte": V * d, "wpe": self.max_context * d,
                **{f"{name} (x{L} blocks)": L * count for name, count in block.items()},
                "ln_f": 2 * d, "lm_head": 0 if self.tie_embeddings else V * d}
        total = sum(rows.values())
        return {**rows, "total": total, "total counting lm_head": total + (V * d if self.tie_embeddings else 0)}


class GPT(TransformerLM):
    """GPT-2 (module docstring): ``forward(ids, targets) -> (logits, loss)``, as nanoGPT's.

    ``ids (batch, time)`` token ids, ``time <= max_context``; ``logits (batch, time, vocab_size)``
    score the token after each position. With ``targets (batch, time)`` (the ids shifted left by
    one; ``-100`` where there is no target) ``loss`` is the mean cross-entropy in nats, else None.

    Weights start as GPT-2's: N(0, 0.02), the residual projections (``c_proj``: ``out_proj``,
    ``linear2``) N(0, 0.02/√(2L)), biases 0, layer norms γ = 1, β = 0. Dropout, when asked, acts
    where Chapter 7's block puts it: after the embeddings, on the attention weights, on each
    sublayer's output and (one more than GPT-2) on the feed-forward hidden layer.
    """

    def __init__(self, config: GPTConfig) -> None:
        if not isinstance(config, GPTConfig):
            raise checks.ArgumentError(f"config must be a GPTConfig, got {type(config).__name__}")
        super().__init__(config)

    def forward(self, ids: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        logits = self.forward_with_state(ids)[0]  # (batch, time, vocab_size)
        if targets is None:
            return logits, None
        if not isinstance(targets, Tensor) or targets.shape != ids.shape:
            got = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
            raise checks.ArgumentError(f"targets must have the shape of ids {tuple(ids.shape)} (the next token "
                                       f"at each position, -100 where there is none), got {got}")
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)
        return logits, loss

    def num_parameters(self) -> int:
        """The number of parameters, each tensor once (a tied matrix once)."""
        return sum(parameter.numel() for parameter in self.parameters())

    @classmethod
    def from_hf(cls, hf_model) -> "GPT":
        """A GPT with the configuration and weights of a ``transformers.GPT2LMHeadModel``."""
        model = cls(GPTConfig.from_hf(hf_model.config))
        model.load_hf_state_dict(hf_model.state_dict())
        return model

    def load_hf_state_dict(self, hf_state_dict: dict[str, Tensor]) -> "GPT":
        """Load a ``GPT2LMHeadModel`` state dict (:func:`from_hf_state_dict`); returns the model."""
        state = from_hf_state_dict(hf_state_dict)
        if self.config.tie_embeddings:  # one matrix, which the dict may hold under either name or both
            wte, lm_head = state.get("embedding.weight"), state.get("readout.weight")
            if wte is not None and lm_head is not None and not torch.equal(wte, lm_head):
                raise checks.ArgumentError("lm_head.weight differs from transformer.wte.weight, but this GPT ties "
                                           "them: build it with GPTConfig(..., tie_embeddings=False)")
            matrix = wte if wte is not None else lm_head
            if matrix is not None:
                state["embedding.weight"] = state["readout.weight"] = matrix
        self.load_state_dict(state)
        return self


# ---------------------------------------------------------------------------------------------
# Hugging Face's names
# ---------------------------------------------------------------------------------------------
_TOP_LEVEL = (("embedding.weight", "transformer.wte.weight"), ("positions.weight", "transformer.wpe.weight"),
              ("norm.", "transformer.ln_f."), ("readout.weight", "lm_head.weight"))
_IN_BLOCK = (("norm1.", "ln_1."), ("self_attention.in_proj_weight", "attn.c_attn.weight"),
             ("self_attention.in_proj_bias", "attn.c_attn.bias"), ("self_attention.out_proj.", "attn.c_proj."),
             ("norm2.", "ln_2."), ("feed_forward.linear1.", "mlp.c_fc."), ("feed_forward.linear2.", "mlp.c_proj."))
_CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")  # the causal mask, not a parameter
_COURSE_BLOCK = re.compile(r"blocks\.(\d+)\.(.*)")
_HF_BLOCK = re.compile(r"transformer\.h\.(\d+)\.(.*)")


def _translate(name: str, pairs) -> str | None:
    for old, new in pairs:
        if name.startswith(old):
            return new + name[len(old):]
    return None


def _hf_name(name: str) -> str:
    block = _COURSE_BLOCK.fullmatch(name)
    translated = (_translate(block[2], _IN_BLOCK) if block else _translate(name, _TOP_LEVEL))
    if translated is None:
        raise checks.ArgumentError(f"{name!r} is not a parameter of a GPT; to_hf_state_dict reads GPT state dicts")
    return f"transformer.h.{block[1]}.{translated}" if block else translated


def _course_name(hf_name: str) -> str:
    block = _HF_BLOCK.fullmatch(hf_name)
    reversed_pairs = [(new, old) for old, new in (_IN_BLOCK if block else _TOP_LEVEL)]
    translated = _translate(block[2] if block else hf_name, reversed_pairs)
    if translated is None:
        raise checks.ArgumentError(f"{hf_name!r} is not a GPT2LMHeadModel parameter GPT knows; "
                                   "from_hf_state_dict reads GPT2LMHeadModel state dicts")
    return f"blocks.{block[1]}.{translated}" if block else translated


def from_hf_state_dict(hf_state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """A ``GPT2LMHeadModel`` state dict under :class:`GPT`'s names: ``Conv1D`` weights
    ``(d_in, d_out)`` transposed to ``Linear`` weights ``(d_out, d_in)``, mask buffers dropped."""
    state = {}
    for hf_name, tensor in hf_state_dict.items():
        if hf_name.endswith(_MASK_BUFFERS):
            continue
        state[_course_name(hf_name)] = tensor.t() if hf_name.endswith(_CONV1D_WEIGHTS) else tensor
    return state


def to_hf_state_dict(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of :func:`from_hf_state_dict`: a :class:`GPT` state dict under
    ``GPT2LMHeadModel``'s names, ``Linear`` weights transposed to ``Conv1D``'s layout."""
    hf_state = {}
    for name, tensor in state_dict.items():
        hf_name = _hf_name(name)
        hf_state[hf_name] = tensor.t() if hf_name.endswith(_CONV1D_WEIGHTS) else tensor
    return hf_state
