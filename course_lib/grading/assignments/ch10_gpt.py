"""Chapter 10 exercises: GPT-2 from its Hugging Face weights, its parameter count, a scaling law,
the loss of one training step.

Inputs are float64 NumPy arrays from seeded generators (sizes are integers), so the cases are the
same on every run. Weights come as a ``GPT2LMHeadModel`` stores them: ``Conv1D`` matrices of shape
``(d_in, d_out)``, used as ``x @ W + b``. The references are the chapter's modules: Chapter 7's
``gelu_tanh``; a one-block :class:`course_lib.gpt.GPT` that loads the case's weights through
:func:`course_lib.gpt.from_hf_state_dict` (its written-out attention, causal, for the attention
item; the whole pre-norm block for the block item); :meth:`course_lib.gpt.GPTConfig.parameter_count_formula`;
the least-squares fit of ``log(L - E) = log A - α log N`` the chapter makes; and the loss
:meth:`course_lib.gpt.GPT.forward` computes, its read-out tied to ``wte``.
"""
from __future__ import annotations

import numpy as np
import torch

from course_lib import gpt, transformer
from course_lib.grading.cases import Assignment, Case, graded_item
from course_lib.grading.policies import (ATTENTION, CROSS_ENTROPY, EXACT, FLOAT64_REORDERED, GELU, LAYER_NORM,
                                        SOFTMAX)
from course_lib.grading.seeded import float64_tensor, layer_weights, normal_array, seeded_rng

# One GPT2Block's weights under GPT2LMHeadModel's names (without the "transformer.h.{l}." prefix).
BLOCK_PARAMS = ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                "mlp.c_proj.weight", "mlp.c_proj.bias")


def _one_block_gpt(params: dict[str, np.ndarray], num_heads: int, T: int, eps: float) -> gpt.GPT:
    """A float64 GPT of one block holding ``params`` (Hugging Face names), written-out attention."""
    d_model, d_ff = np.shape(params["mlp.c_fc.weight"])
    config = gpt.GPTConfig(vocab_size=2, max_context=T, num_layers=1, num_heads=num_heads, d_model=d_model,
                           d_ff=d_ff, dropout=0.0, layer_norm_eps=eps)
    with torch.random.fork_rng(devices=[]):  # leave the caller's generator as it was (check runs in a kernel)
        model = gpt.GPT(config).double()
    state = gpt.from_hf_state_dict({f"transformer.h.0.{name}": float64_tensor(params[name]) for name in params})
    model.blocks[0].load_state_dict({name.removeprefix("blocks.0."): tensor for name, tensor in state.items()},
                                    strict=False)
    model.fused = False
    return model.eval()


# --------------------------------------------------------------------------- references


def gelu_tanh_reference(x) -> np.ndarray:
    """``½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))``: Chapter 7's ``gelu_tanh``."""
    return transformer.gelu_tanh(float64_tensor(x)).numpy()


def causal_self_attention_reference(x, c_attn_weight, c_attn_bias, c_proj_weight, c_proj_bias,
                                    num_heads) -> np.ndarray:
    """``(batch, T, d)`` -> ``(batch, T, d)``: GPT-2's masked multi-head self-attention, Chapter 7's
    written-out :class:`MultiHeadAttention` with the ``Conv1D`` weights transposed into it."""
    d_model = np.shape(x)[-1]
    with torch.random.fork_rng(devices=[]):
        attention = transformer.MultiHeadAttention(d_model, num_heads, fused=False).double()
    attention.load_state_dict({"in_proj_weight": float64_tensor(c_attn_weight).T,
                               "in_proj_bias": float64_tensor(c_attn_bias),
                               "out_proj.weight": float64_tensor(c_proj_weight).T,
                               "out_proj.bias": float64_tensor(c_proj_bias)})
    with torch.no_grad():
        return attention(float64_tensor(x), causal=True).numpy()


def gpt_block_reference(x, params, num_heads, eps) -> np.ndarray:
    """``(batch, T, d)`` -> ``(batch, T, d)``: one pre-norm GPT-2 block, causal, tanh GELU."""
    model = _one_block_gpt(params, num_heads, np.shape(x)[1], eps)
    with torch.no_grad():
        return model.blocks[0](float64_tensor(x), causal=True).numpy()


def parameter_count_reference(vocab_size, n_positions, n_layer, n_embd, n_inner, tie_word_embeddings) -> int:
    """The parameters of a ``GPT2LMHeadModel`` of this configuration, each tensor once."""
    config = gpt.GPTConfig(vocab_size=vocab_size, max_context=n_positions, num_layers=n_layer, num_heads=1,
                           d_model=n_embd, d_ff=n_inner or 4 * n_embd, tie_embeddings=tie_word_embeddings)
    return config.parameter_count_formula()["total"]


def scaling_fit_reference(N, L, E) -> tuple[float, float]:
    """``(A, α)`` of ``L(N) = E + A N^(-α)``: least squares of ``log(L - E)`` on ``log N``."""
    slope, intercept = np.polyfit(np.log(np.asarray(N, dtype=float)), np.log(np.asarray(L) - E), 1)
    return float(np.exp(intercept)), float(-slope)


def next_token_loss_reference(hidden, wte, tokens, pad_id) -> float:
    """The loss of :meth:`course_lib.gpt.GPT.forward` for the ids ``tokens``, given its final hidden
    states: a GPT whose embedding (and so its tied read-out) is ``wte`` scores ``hidden``; the
    targets are ``tokens`` shifted left by one, ``IGNORE_INDEX`` where the target is ``pad_id``."""
    vocab_size, d_model = np.shape(wte)
    config = gpt.GPTConfig(vocab_size=vocab_size, max_context=1, num_layers=1, num_heads=1, d_model=d_model,
                           dropout=0.0)
    with torch.random.fork_rng(devices=[]):
        model = gpt.GPT(config).double()
    with torch.no_grad():
        model.embedding.weight.copy_(float64_tensor(wte))
        logits = model.readout(float64_tensor(hidden))[:, :-1]  # position t scores token t + 1
    targets = torch.as_tensor(np.asarray(tokens)[:, 1:], dtype=torch.long)
    targets = targets.masked_fill(targets == pad_id, gpt.IGNORE_INDEX)
    return float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                                   ignore_index=gpt.IGNORE_INDEX))


# --------------------------------------------------------------------------- cases


def _gelu_cases() -> list[Case]:
    return [
        Case("x from -4 to 4 in steps of 0.5", {"x": np.linspace(-4, 4, 17)}),
        Case("a (2, 3, 5) array of N(0, 2²) entries", {"x": normal_array(300, 2, 3, 5, scale=2.0)}),
        Case("large inputs, |x| up to 30 (the tanh saturates), and x = ±2.5",
             {"x": np.array([-30.0, -12.0, -2.5, 2.5, 12.0, 30.0])}),
        Case("x near -2.7, where the approximation is furthest from x Φ(x)",
             {"x": np.linspace(-3.0, -2.4, 13)}),
    ]


def attention_params(d_model: int, seed: int, scale: float = 0.4) -> dict[str, np.ndarray]:
    """``c_attn`` and ``c_proj`` weights and biases in ``Conv1D``'s layout ``(d_in, d_out)``."""
    rng = seeded_rng(seed)
    return {"c_attn_weight": rng.normal(0, scale, (d_model, 3 * d_model)),
            "c_attn_bias": rng.normal(0, scale, 3 * d_model),
            "c_proj_weight": rng.normal(0, scale, (d_model, d_model)),
            "c_proj_bias": rng.normal(0, scale, d_model)}


def _attention_case(label: str, batch: int, T: int, d_model: int, num_heads: int, seed: int) -> Case:
    return Case(label, {"x": normal_array(seed, batch, T, d_model), **attention_params(d_model, seed + 1),
                        "num_heads": num_heads})


def _attention_cases() -> list[Case]:
    return [
        _attention_case("one sequence of 4 tokens, d = 4, 2 heads", 1, 4, 4, 2, seed=310),
        _attention_case("a batch of 2, T = 6, d = 6, 3 heads", 2, 6, 6, 3, seed=312),
        _attention_case("one head, T = 5, d = 8", 2, 5, 8, 1, seed=314),
        _attention_case("4 heads of 4, T = 7", 1, 7, 16, 4, seed=316),
    ]


def block_params(d_model: int, d_ff: int, seed: int, scale: float = 0.3) -> dict[str, np.ndarray]:
    """One ``GPT2Block``'s weights under Hugging Face's names (``Conv1D`` layout), γ near 1."""
    shapes = {"attn.c_attn.weight": (d_model, 3 * d_model), "attn.c_attn.bias": (3 * d_model,),
              "attn.c_proj.weight": (d_model, d_model), "attn.c_proj.bias": (d_model,),
              "mlp.c_fc.weight": (d_model, d_ff), "mlp.c_fc.bias": (d_ff,),
              "mlp.c_proj.weight": (d_ff, d_model), "mlp.c_proj.bias": (d_model,)}
    params = layer_weights(seed, shapes, ("ln_1", "ln_2"), d_model, scale)
    return {name: params[name] for name in BLOCK_PARAMS}


def _block_case(label: str, batch: int, T: int, d_model: int, num_heads: int, d_ff: int, seed: int,
                eps: float = 1e-5, shift: float = 0.0) -> Case:
    return Case(label, {"x": shift + normal_array(seed, batch, T, d_model),
                        "params": block_params(d_model, d_ff, seed + 1), "num_heads": num_heads, "eps": eps})


def _block_cases() -> list[Case]:
    return [
        _block_case("one sequence of 4 tokens, d = 4, 2 heads, d_ff = 16", 1, 4, 4, 2, 16, seed=320),
        _block_case("a batch of 2, T = 5, d = 6, 3 heads, d_ff = 24", 2, 5, 6, 3, 24, seed=322),
        _block_case("inputs far from 0 (mean 3): the norm comes first", 2, 4, 8, 2, 32, seed=324, shift=3.0),
        _block_case("d_ff = 12 (not 4d), eps = 1e-3", 1, 6, 8, 4, 12, seed=326, eps=1e-3),
    ]


def _count_case(label: str, V: int, T: int, L: int, d: int, inner: int | None, tied: bool) -> Case:
    return Case(label, {"vocab_size": V, "n_positions": T, "n_layer": L, "n_embd": d, "n_inner": inner,
                        "tie_word_embeddings": tied})


def _count_cases() -> list[Case]:
    return [
        _count_case("GPT-2 small: 50,257 tokens, 1,024 positions, 12 blocks of width 768", 50257, 1024, 12, 768,
                    None, True),
        _count_case("GPT-2 medium: 24 blocks of width 1,024", 50257, 1024, 24, 1024, None, True),
        _count_case("a small GPT with its own lm_head (untied)", 100, 32, 2, 16, None, False),
        _count_case("n_inner = 40 instead of 4d = 64", 65, 64, 3, 16, 40, True),
    ]


def _scaling_case(label: str, N, E: float, A: float, alpha: float, noise: float, seed: int) -> Case:
    N = np.asarray(N, dtype=float)
    wiggle = np.exp(seeded_rng(seed).normal(0, noise, N.shape))
    return Case(label, {"N": N, "L": E + A * N ** -alpha * wiggle, "E": E})


def _scaling_cases() -> list[Case]:
    return [
        _scaling_case("an exact law: A = 30, alpha = 0.3, E = 1.07", [1e4, 3e4, 1e5, 3e5], 1.07, 30.0, 0.3, 0.0,
                      330),
        _scaling_case("five sizes with noise, E = 1.5", [2e4, 5e4, 1e5, 2e5, 4e5], 1.5, 8.0, 0.25, 0.05, 331),
        _scaling_case("Kaplan et al.'s range: N from 1e6 to 1e9, alpha = 0.076", [1e6, 1e7, 1e8, 1e9], 1.69,
                      11.0, 0.076, 0.01, 332),
        _scaling_case("integer sizes in a list, E = 0", [3312, 25472, 84912, 150080], 0.0, 2.0, 0.5, 0.1, 333),
    ]


def _loss_case(label: str, lengths: list[int], vocab_size: int, d_model: int, pad_id: int, seed: int,
               scale: float = 1.0) -> Case:
    """Stories of ``lengths`` tokens (never ``pad_id``), padded at the end to the longest."""
    rng = seeded_rng(seed)
    T = max(lengths)
    words = [i for i in range(vocab_size) if i != pad_id]
    tokens = np.full((len(lengths), T), pad_id, dtype=np.int64)
    for row, length in enumerate(lengths):
        tokens[row, :length] = rng.choice(words, size=length)
    return Case(label, {"hidden": scale * rng.normal(0, 1, (len(lengths), T, d_model)),
                        "wte": rng.normal(0, 1, (vocab_size, d_model)), "tokens": tokens, "pad_id": pad_id})


def _loss_cases() -> list[Case]:
    return [
        _loss_case("one sequence of 6 tokens, V = 7, d = 4, no padding", [6], 7, 4, pad_id=0, seed=340),
        _loss_case("3 stories of 8, 5 and 3 tokens, padded with pad_id = 0", [8, 5, 3], 10, 6, pad_id=0, seed=341),
        _loss_case("logits in the hundreds (exp overflows unless the largest is taken off first)", [7, 4], 9, 8,
                   pad_id=0, seed=342, scale=100.0),
        _loss_case("pad_id = 3, inside the vocabulary; stories of 9 and 4 tokens", [9, 4], 11, 6, pad_id=3,
                   seed=343),
    ]


ASSIGNMENT = Assignment(
    name="ch10", title="Chapter 10: GPT",
    case_sets=(
        graded_item("ch10.gelu_tanh", points=1, make_cases=_gelu_cases, reference=gelu_tanh_reference,
                    tolerance=FLOAT64_REORDERED, forbidden=GELU,
                    hint="""GPT-2 does not use x times the normal distribution function itself but its tanh
                            approximation, whose cubic term has its own coefficient. See "The GELU of GPT-2"
                            in Chapter 10."""),
        graded_item("ch10.causal_self_attention", points=3, make_cases=_attention_cases,
                    reference=causal_self_attention_reference, tolerance=FLOAT64_REORDERED,
                    forbidden=ATTENTION + SOFTMAX,
                    hint="""A Conv1D weight is (inputs, outputs); the queries, keys and values are three
                            consecutive blocks of c_attn's outputs, and no position sees a later one. See
                            "GPT-2, line by line" in Chapter 10."""),
        graded_item("ch10.gpt_block", points=2, make_cases=_block_cases, reference=gpt_block_reference,
                    tolerance=FLOAT64_REORDERED, forbidden=ATTENTION + SOFTMAX + LAYER_NORM + GELU,
                    hint="""GPT-2 normalises each sublayer's input, not the residual sum, and its feed-forward
                            layer uses the tanh GELU. See "From GPT-1 to GPT-2" in Chapter 10."""),
        graded_item("ch10.parameter_count", points=2, make_cases=_count_cases,
                    reference=parameter_count_reference, tolerance=EXACT,
                    hint="""Count every weight and bias of a block, the two embeddings, the final layer norm,
                            and the output matrix only when it is not the embedding matrix. See "Counting
                            GPT-2 small's parameters" in Chapter 10."""),
        graded_item("ch10.scaling_fit", points=2, make_cases=_scaling_cases, reference=scaling_fit_reference,
                    tolerance=FLOAT64_REORDERED,
                    hint="""The power law is a straight line in log-log axes only once the floor E is taken
                            off the loss; alpha is positive when the loss falls. See "Scaling: loss against
                            size" in Chapter 10."""),
        graded_item("ch10.next_token_loss", points=2, make_cases=_loss_cases, reference=next_token_loss_reference,
                    tolerance=FLOAT64_REORDERED, forbidden=CROSS_ENTROPY,
                    hint="""Position t predicts the token at t + 1; a padding target counts for nothing, and
                            the mean is over the tokens counted, not the stories. See "A decoder that only
                            looks back" in Chapter 10."""),
    ),
    reference_modules=("course_lib.gpt", "course_lib.transformer"),
)
