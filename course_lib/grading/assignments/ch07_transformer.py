"""Chapter 7 exercises: the pieces of the Transformer, then one encoder layer made of them.

Inputs are float64 NumPy arrays (boolean masks, integer sizes) from seeded generators, so the cases
are the same on every run. The references are the chapter's modules: the written-out scaled
dot-product attention and the causal mask of :mod:`course_lib.attention`; the head split and merge
of :class:`course_lib.transformer.MultiHeadAttention`; :func:`course_lib.transformer.sinusoidal_positions`;
the written-out :class:`course_lib.transformer.LayerNorm`; and a post-norm
:class:`course_lib.transformer.EncoderLayer` that loads an ``nn.TransformerEncoderLayer`` state dict
(the case's weights, under PyTorch's names).
"""
from __future__ import annotations

import numpy as np
import torch

from course_lib import attention, transformer
from course_lib.grading.cases import Assignment, Case, graded_item
from course_lib.grading.seeded import float64_tensor, layer_weights, normal_array, seeded_rng
from course_lib.grading.policies import (
    ATTENTION, EXACT, FLOAT64_REORDERED, FLOAT64_SAME_ORDER, LAYER_NORM, SOFTMAX,
)

# An nn.TransformerEncoderLayer's state dict, as the encoder-layer item receives it.
ENCODER_LAYER_PARAMS = (
    "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
    "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
    "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
)


def _bool_tensor(mask: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(mask, dtype=bool))


def padding_mask(lengths: list[int], T: int) -> np.ndarray:
    """``(batch, T)`` boolean, True at the first ``lengths[b]`` positions of row ``b``."""
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


def _heads_module(d_model: int, num_heads: int) -> transformer.MultiHeadAttention:
    with torch.random.fork_rng(devices=[]):  # leave the caller's generator as it was (check runs in a kernel)
        return transformer.MultiHeadAttention(d_model, num_heads).double()


# --------------------------------------------------------------------------- references


def scaled_dot_product_attention_reference(Q, K, V, mask) -> tuple[np.ndarray, np.ndarray]:
    """``(softmax(Q Kᵀ / √d_k) V, weights)`` with masked scores at ``-inf`` before the softmax."""
    context, weights = attention.scaled_dot_product_attention(float64_tensor(Q), float64_tensor(K), float64_tensor(V),
                                                              _bool_tensor(mask))
    return context.numpy(), weights.numpy()


def causal_mask_reference(T: int) -> np.ndarray:
    return attention.causal_mask(T).numpy()


def split_heads_reference(x: np.ndarray, num_heads: int) -> np.ndarray:
    """``(batch, T, d_model)`` -> ``(batch, heads, T, d_head)``: :meth:`MultiHeadAttention.split_heads`."""
    return _heads_module(np.shape(x)[-1], num_heads).split_heads(float64_tensor(x)).numpy()


def merge_heads_reference(heads: np.ndarray) -> np.ndarray:
    """``(batch, heads, T, d_head)`` -> ``(batch, T, heads · d_head)``: :meth:`MultiHeadAttention.merge_heads`."""
    _, num_heads, _, d_head = np.shape(heads)
    return _heads_module(num_heads * d_head, num_heads).merge_heads(float64_tensor(heads)).numpy()


def sinusoidal_positions_reference(length: int, d_model: int) -> np.ndarray:
    return transformer.sinusoidal_positions(length, d_model, dtype=torch.float64).numpy()


def layer_norm_reference(x, gamma, beta, eps) -> np.ndarray:
    """``γ ⊙ (x − μ) / √(σ² + ε) + β`` over the last axis: the written-out :class:`LayerNorm`."""
    norm = transformer.LayerNorm(np.shape(x)[-1], eps, fused=False).double()
    norm.load_state_dict({"weight": float64_tensor(gamma), "bias": float64_tensor(beta)})
    with torch.no_grad():
        return norm(float64_tensor(x)).numpy()


def encoder_layer_model(params: dict[str, np.ndarray], num_heads: int, eps: float) -> transformer.EncoderLayer:
    """A float64, written-out, post-norm :class:`EncoderLayer` holding an ``nn.TransformerEncoderLayer``
    state dict ``params`` (ReLU, no dropout)."""
    d_ff, d_model = np.shape(params["linear1.weight"])
    with torch.random.fork_rng(devices=[]):
        layer = transformer.EncoderLayer(d_model, num_heads, d_ff, layer_norm_eps=eps, fused=False).double()
    layer.load_state_dict(transformer.from_torch_state_dict({name: float64_tensor(params[name])
                                                             for name in ENCODER_LAYER_PARAMS}))
    return layer.eval()


def encoder_layer_reference(x, mask, params, num_heads, eps) -> np.ndarray:
    """``(batch, S, d_model)``; ``mask (batch, S)`` is True at real tokens (keys that may be seen)."""
    layer = encoder_layer_model(params, num_heads, eps)
    with torch.no_grad():
        return layer(float64_tensor(x), _bool_tensor(mask)[:, None, None, :]).numpy()


# --------------------------------------------------------------------------- cases


def _attention_case(label: str, seed: int, batch_shape: tuple[int, ...], T_q: int, T_k: int, d_k: int, d_v: int,
                    mask: np.ndarray, scale: float = 1.0) -> Case:
    rng = seeded_rng(seed)
    return Case(label, {"Q": rng.normal(0, scale, (*batch_shape, T_q, d_k)),
                        "K": rng.normal(0, scale, (*batch_shape, T_k, d_k)),
                        "V": rng.normal(0, 1, (*batch_shape, T_k, d_v)), "mask": mask})


def _attention_cases() -> list[Case]:
    causal = np.tril(np.ones((5, 5), dtype=bool))
    holes = seeded_rng(205).random((2, 3, 4, 6)) < 0.6
    holes[..., 0] = True  # every query sees at least one key
    return [
        _attention_case("self-attention with the causal mask: T = 5, d_k = d_v = 4", 200, (1,), 5, 5, 4, 4, causal),
        _attention_case("padding: a batch of 3, keys of lengths 6, 4 and 2 (mask (batch, 1, T_k))", 201, (3,),
                        4, 6, 8, 3, padding_mask([6, 4, 2], 6)[:, None, :]),
        _attention_case("heads: (batch 2, heads 3), causal mask (T, T) shared by all", 202, (2, 3), 4, 4, 16, 16,
                        np.tril(np.ones((4, 4), dtype=bool))),
        _attention_case("d_k = 64 and large entries: unscaled scores would saturate the softmax", 203, (2,),
                        3, 5, 64, 2, padding_mask([5, 3], 5)[:, None, :], scale=2.0),
        _attention_case("a mask with holes, one per (example, head, query)", 204, (2, 3), 4, 6, 5, 7, holes),
    ]


def _causal_mask_cases() -> list[Case]:
    return [Case(f"T = {T}", {"T": T}) for T in (1, 2, 5, 9)]


def _split_heads_cases() -> list[Case]:
    return [
        Case("batch 1, T = 3, d_model = 4 into 2 heads of 2", {"x": normal_array(210, 1, 3, 4), "num_heads": 2}),
        Case("batch 2, T = 5, d_model = 12 into 3 heads of 4", {"x": normal_array(211, 2, 5, 12), "num_heads": 3}),
        Case("T = heads = 4: the right shape from the wrong axes", {"x": normal_array(212, 2, 4, 8), "num_heads": 4}),
        Case("d_head = 1: as many heads as features", {"x": normal_array(213, 3, 2, 6), "num_heads": 6}),
    ]


def _merge_heads_cases() -> list[Case]:
    return [
        Case("batch 1, 2 heads, T = 3, d_head = 2", {"heads": normal_array(220, 1, 2, 3, 2)}),
        Case("batch 2, 3 heads, T = 5, d_head = 4", {"heads": normal_array(221, 2, 3, 5, 4)}),
        Case("heads = T = 4: the right shape from the wrong axes", {"heads": normal_array(222, 2, 4, 4, 2)}),
        Case("d_head = 1: 4 heads of one feature, T = 2", {"heads": normal_array(223, 3, 4, 2, 1)}),
    ]


def _positions_cases() -> list[Case]:
    return [
        Case("4 positions, d_model = 4: two frequencies", {"length": 4, "d_model": 4}),
        Case("10 positions, d_model = 8", {"length": 10, "d_model": 8}),
        Case("the paper's d_model = 512, 50 positions", {"length": 50, "d_model": 512}),
        Case("3 positions, d_model = 6 (at pos = 0, sin 0 = 0 and cos 0 = 1)", {"length": 3, "d_model": 6}),
    ]


def _layer_norm_case(label: str, seed: int, shape: tuple[int, ...], eps: float, *, scale: float = 1.0,
                     shift: float = 0.0) -> Case:
    rng = seeded_rng(seed)
    d = shape[-1]
    return Case(label, {"x": shift + rng.normal(0, scale, shape), "gamma": rng.normal(1, 0.5, d),
                        "beta": rng.normal(0, 0.5, d), "eps": eps})


def _layer_norm_cases() -> list[Case]:
    return [
        _layer_norm_case("one vector of 4 features, eps = 1e-5", 230, (1, 4), 1e-5),
        _layer_norm_case("(batch 2, T 3, d_model 8), features far from 0 (mean 5)", 231, (2, 3, 8), 1e-5,
                         shift=5.0),
        _layer_norm_case("small features (standard deviation 0.01) and eps = 1e-3", 232, (3, 6), 1e-3,
                         scale=0.01),
        _layer_norm_case("d_model = 64, eps = 0.1", 233, (2, 64), 0.1),
    ]


def encoder_layer_params(d_model: int, d_ff: int, seed: int, scale: float = 0.3) -> dict[str, np.ndarray]:
    """An ``nn.TransformerEncoderLayer`` state dict of Gaussian weights (γ near 1)."""
    shapes = {"self_attn.in_proj_weight": (3 * d_model, d_model), "self_attn.in_proj_bias": (3 * d_model,),
              "self_attn.out_proj.weight": (d_model, d_model), "self_attn.out_proj.bias": (d_model,),
              "linear1.weight": (d_ff, d_model), "linear1.bias": (d_ff,),
              "linear2.weight": (d_model, d_ff), "linear2.bias": (d_model,)}
    params = layer_weights(seed, shapes, ("norm1", "norm2"), d_model, scale)
    return {name: params[name] for name in ENCODER_LAYER_PARAMS}


def _encoder_layer_case(label: str, lengths: list[int], S: int, d_model: int, num_heads: int, d_ff: int,
                        seed: int, eps: float = 1e-5) -> Case:
    return Case(label, {"x": normal_array(seed, len(lengths), S, d_model), "mask": padding_mask(lengths, S),
                        "params": encoder_layer_params(d_model, d_ff, seed + 1), "num_heads": num_heads,
                        "eps": eps})


def _encoder_layer_cases() -> list[Case]:
    return [
        _encoder_layer_case("one sentence of 4 tokens; d_model = 4, 2 heads, d_ff = 8", [4], 4, 4, 2, 8, seed=240),
        _encoder_layer_case("a batch of 3 of lengths 5, 3 and 1 (padding masked); d_model = 6, 3 heads",
                            [5, 3, 1], 5, 6, 3, 12, seed=242),
        _encoder_layer_case("one head, d_model = 8, d_ff = 16", [6, 6], 6, 8, 1, 16, seed=244),
        _encoder_layer_case("4 heads, d_model = 16, d_ff = 32, eps = 1e-3", [7, 4], 7, 16, 4, 32, seed=246, eps=1e-3),
    ]


ASSIGNMENT = Assignment(
    name="ch07", title="Chapter 7: the Transformer",
    case_sets=(
        graded_item("ch07.scaled_dot_product_attention", points=2, make_cases=_attention_cases,
                    reference=scaled_dot_product_attention_reference, tolerance=FLOAT64_REORDERED,
                    forbidden=ATTENTION + SOFTMAX,
                    hint="""The scores are divided by the square root of the key width, hidden keys are
                            out before the softmax, and each query's weights run over the keys. See
                            "Scaled dot-product attention" in Chapter 7."""),
        graded_item("ch07.causal_mask", points=1, make_cases=_causal_mask_cases, reference=causal_mask_reference,
                    tolerance=EXACT,
                    hint="""Position i may look at itself and at every earlier position, never at a later
                            one; the answer is boolean, True where looking is allowed. See "Masks" in
                            Chapter 7."""),
        graded_item("ch07.split_heads", points=1, make_cases=_split_heads_cases, reference=split_heads_reference,
                    tolerance=EXACT,
                    hint="""Each head owns a block of consecutive features of every position; cut the last
                            axis first, then bring the head axis in front of time. See "Multi-head
                            attention" in Chapter 7."""),
        graded_item("ch07.merge_heads", points=1, make_cases=_merge_heads_cases, reference=merge_heads_reference,
                    tolerance=EXACT,
                    hint="""Merging undoes the split: time must be next to the batch again before the
                            heads' features are laid side by side. See "Multi-head attention" in
                            Chapter 7."""),
        graded_item("ch07.sinusoidal_positions", points=1, make_cases=_positions_cases,
                    reference=sinusoidal_positions_reference, tolerance=FLOAT64_REORDERED,
                    hint="""Even columns hold sines, odd columns cosines, and columns 2i and 2i+1 share one
                            frequency, whose exponent is 2i/d_model. See "Positions" in Chapter 7."""),
        graded_item("ch07.layer_norm", points=2, make_cases=_layer_norm_cases, reference=layer_norm_reference,
                    tolerance=FLOAT64_REORDERED, forbidden=LAYER_NORM,
                    hint="""The variance is the mean squared deviation over the features (divided by d, not
                            d - 1), and epsilon is added to it under the root. See "Residual connections
                            and layer normalisation" in Chapter 7."""),
        graded_item("ch07.encoder_layer", points=2, make_cases=_encoder_layer_cases,
                    reference=encoder_layer_reference, tolerance=FLOAT64_REORDERED,
                    forbidden=ATTENTION + SOFTMAX + LAYER_NORM,
                    hint="""Post-norm: each sublayer's output is added to its input and then normalised;
                            padding hides keys, not queries. See "The encoder and the decoder" in
                            Chapter 7."""),
    ),
    reference_modules=("course_lib.attention", "course_lib.transformer"),
)
