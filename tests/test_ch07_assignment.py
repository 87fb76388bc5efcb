"""Chapter 7's graded items: the references agree with independent computations (PyTorch's
F.scaled_dot_product_attention, F.layer_norm and nn.TransformerEncoderLayer, NumPy formulas written
element by element), the mistakes the chapter warns about fail, and a wrong answer loses the points
of its own item only (full marks for the solution and zero for the exercise are checked for every
assignment in test_assignments.py)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from assignment_notebooks import (assert_declares, assert_only_item_lost, assert_random_numbers_untouched,
                                  points_earned, solution_variant)
from course_lib.grading.assignments import ch07_transformer as ch07
from course_lib.grading.cases import load_assignment
from course_lib.grading.policies import ATTENTION, LAYER_NORM, SOFTMAX
from course_lib.grading.runner import grade_notebook

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "ch07_transformer.ipynb"
ASSIGNMENT = load_assignment("ch07")


def torch64(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array, dtype=np.float64))


def points_of(name: str, wrong) -> float:
    """The points a wrong function earns on the item ``name``'s cases."""
    return points_earned(ASSIGNMENT, name, wrong)


# ------------------------------------------------------------------ the case sets themselves

def test_the_assignment_declares_seven_items_worth_ten_points_and_their_rules():
    assert ASSIGNMENT is ch07.ASSIGNMENT
    assert_declares(ASSIGNMENT, ["scaled_dot_product_attention", "causal_mask", "split_heads", "merge_heads",
                                 "sinusoidal_positions", "layer_norm", "encoder_layer"],
                    {"course_lib.attention", "course_lib.transformer"}, 10)
    for name in ("scaled_dot_product_attention", "encoder_layer"):
        assert set(ATTENTION + SOFTMAX) <= set(ASSIGNMENT.case_set(name).forbidden), name
    for name in ("layer_norm", "encoder_layer"):
        assert set(LAYER_NORM) <= set(ASSIGNMENT.case_set(name).forbidden), name


def test_every_attention_case_hides_a_key_and_has_several_queries():
    # so that masking after the softmax and the softmax over the queries fail every case
    for case in ch07._attention_cases():
        k = case.kwargs
        mask = np.broadcast_to(k["mask"], (*k["Q"].shape[:-1], k["K"].shape[-2]))
        assert not mask.all() and mask.any(axis=-1).all() and k["Q"].shape[-2] > 1, case.label


def test_the_attention_reference_equals_pytorchs_fused_attention():
    for case in ch07._attention_cases():
        k = case.kwargs
        output, weights = ch07.scaled_dot_product_attention_reference(**k)
        expected = F.scaled_dot_product_attention(torch64(k["Q"]), torch64(k["K"]), torch64(k["V"]),
                                                  attn_mask=torch.from_numpy(np.asarray(k["mask"])))
        np.testing.assert_allclose(output, expected.numpy(), rtol=1e-12, atol=1e-13, err_msg=case.label)
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-13, err_msg=case.label)
        hidden = ~np.broadcast_to(k["mask"], weights.shape)
        assert np.all(weights[hidden] == 0.0), case.label


def test_the_causal_mask_is_the_lower_triangle_with_its_diagonal():
    for case in ch07._causal_mask_cases():
        T = case.kwargs["T"]
        expected = np.array([[j <= i for j in range(T)] for i in range(T)])
        got = ch07.causal_mask_reference(T)
        assert got.dtype == bool and np.array_equal(got, expected), case.label


def test_split_heads_gives_each_head_its_block_of_features_and_merge_undoes_it():
    for case in ch07._split_heads_cases():
        x, h = case.kwargs["x"], case.kwargs["num_heads"]
        d_head = x.shape[-1] // h
        heads = ch07.split_heads_reference(x, h)
        assert heads.shape == (x.shape[0], h, x.shape[1], d_head), case.label
        for head in range(h):
            np.testing.assert_array_equal(heads[:, head], x[:, :, head * d_head:(head + 1) * d_head])
        np.testing.assert_array_equal(ch07.merge_heads_reference(heads), x)
    for case in ch07._merge_heads_cases():
        heads = case.kwargs["heads"]
        side_by_side = np.concatenate([heads[:, head] for head in range(heads.shape[1])], axis=-1)
        np.testing.assert_array_equal(ch07.merge_heads_reference(heads), side_by_side)


def test_the_positional_encoding_reference_is_the_papers_formula_entry_by_entry():
    for case in ch07._positions_cases():
        length, d = case.kwargs["length"], case.kwargs["d_model"]
        expected = np.array([[(math.sin if k % 2 == 0 else math.cos)(pos / 10000 ** ((k - k % 2) / d))
                              for k in range(d)] for pos in range(length)])
        np.testing.assert_allclose(ch07.sinusoidal_positions_reference(length, d), expected, rtol=1e-12,
                                   atol=1e-13, err_msg=case.label)


def test_the_layer_norm_reference_equals_pytorchs_layer_norm():
    for case in ch07._layer_norm_cases():
        k = case.kwargs
        expected = F.layer_norm(torch64(k["x"]), (k["x"].shape[-1],), torch64(k["gamma"]), torch64(k["beta"]),
                                k["eps"])
        np.testing.assert_allclose(ch07.layer_norm_reference(**k), expected.numpy(), rtol=1e-12, atol=1e-13,
                                   err_msg=case.label)


def pytorch_encoder_layer(x, mask, params, num_heads, eps):
    d_ff, d_model = params["linear1.weight"].shape
    with torch.random.fork_rng(devices=[]):
        layer = torch.nn.TransformerEncoderLayer(d_model, num_heads, d_ff, dropout=0.0, layer_norm_eps=eps,
                                                 batch_first=True).double()
    layer.load_state_dict({name: torch64(value) for name, value in params.items()})
    layer.train()  # dropout is 0; training mode keeps PyTorch off its fused inference path
    with torch.no_grad():
        return layer(torch64(x), src_key_padding_mask=~torch.from_numpy(mask)).numpy()


def test_the_encoder_layer_reference_equals_nn_transformer_encoder_layer():
    for case in ch07._encoder_layer_cases():
        np.testing.assert_allclose(ch07.encoder_layer_reference(**case.kwargs), pytorch_encoder_layer(**case.kwargs),
                                   rtol=1e-10, atol=1e-12, err_msg=case.label)


def test_the_references_do_not_disturb_the_callers_random_numbers():
    assert_random_numbers_untouched(
        (ch07.split_heads_reference, ch07._split_heads_cases()[0]),
        (ch07.merge_heads_reference, ch07._merge_heads_cases()[0]),
        (ch07.encoder_layer_reference, ch07._encoder_layer_cases()[0]),
    )


# ------------------------------------------------------------------ the mistakes the chapter warns about

def softmax(z, axis=-1):
    exps = np.exp(z - z.max(axis=axis, keepdims=True))
    return exps / exps.sum(axis=axis, keepdims=True)


def test_attention_mistakes_fail():
    def unscaled(Q, K, V, mask):
        weights = softmax(np.where(mask, Q @ np.swapaxes(K, -1, -2), -np.inf))
        return weights @ V, weights

    def masked_after_the_softmax(Q, K, V, mask):
        weights = softmax(Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])) * mask
        return weights @ V, weights

    def softmax_over_the_queries(Q, K, V, mask):
        scores = np.where(mask, Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1]), -1e9)
        weights = softmax(scores, axis=-2)
        return weights @ V, weights

    for wrong in (unscaled, masked_after_the_softmax, softmax_over_the_queries):
        assert points_of("scaled_dot_product_attention", wrong) == 0, wrong.__name__


def test_a_causal_mask_of_the_future_or_without_the_diagonal_fails():
    assert points_of("causal_mask", lambda T: np.triu(np.ones((T, T), dtype=bool))) < 1  # T = 1 is both
    assert points_of("causal_mask", lambda T: np.tril(np.ones((T, T), dtype=bool), k=-1)) == 0
    assert points_of("causal_mask", lambda T: np.tril(np.ones((T, T)))) == 0  # 1.0 and 0.0 are not a mask


def test_heads_reshaped_without_the_transpose_fail():
    def split_on_the_wrong_axis(x, num_heads):
        batch, T, d_model = x.shape
        return x.reshape(batch, num_heads, T, d_model // num_heads)

    def merged_without_the_transpose(heads):
        batch, num_heads, T, d_head = heads.shape
        return heads.reshape(batch, T, num_heads * d_head)

    assert points_of("split_heads", split_on_the_wrong_axis) == 0
    assert points_of("merge_heads", merged_without_the_transpose) == 0


def test_positional_encoding_mistakes_fail():
    def encodings(length, d_model, exponent, first=np.sin, second=np.cos):
        angles = np.arange(length)[:, None] / 10000 ** exponent(d_model)
        pe = np.empty((length, d_model))
        pe[:, 0::2], pe[:, 1::2] = first(angles), second(angles)
        return pe

    def without_the_factor_2(length, d_model):
        return encodings(length, d_model, lambda d: np.arange(d // 2) / d)

    def sin_and_cos_swapped(length, d_model):
        return encodings(length, d_model, lambda d: np.arange(0, d, 2) / d, np.cos, np.sin)

    for wrong in (without_the_factor_2, sin_and_cos_swapped):
        assert points_of("sinusoidal_positions", wrong) == 0, wrong.__name__


def test_layer_norm_mistakes_fail():
    def unbiased_variance(x, gamma, beta, eps):
        return gamma * (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, ddof=1, keepdims=True) + eps) + beta

    def eps_outside_the_root(x, gamma, beta, eps):
        return gamma * (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + eps) + beta

    for wrong in (unbiased_variance, eps_outside_the_root):
        assert points_of("layer_norm", wrong) == 0, wrong.__name__


def test_encoder_layer_mistakes_fail():
    def layer(x, mask, params, num_heads, eps, *, norm_first=False, use_mask=True):
        p = params

        def norm(v, n):
            return ch07.layer_norm_reference(v, p[f"norm{n}.weight"], p[f"norm{n}.bias"], eps)

        def self_attention(v):
            q, k, val = (ch07.split_heads_reference(part, num_heads)
                         for part in np.split(v @ p["self_attn.in_proj_weight"].T + p["self_attn.in_proj_bias"], 3, -1))
            key_mask = mask[:, None, None, :] if use_mask else np.ones((1, 1, 1, 1), dtype=bool)
            heads, _ = ch07.scaled_dot_product_attention_reference(q, k, val, key_mask)
            return ch07.merge_heads_reference(heads) @ p["self_attn.out_proj.weight"].T + p["self_attn.out_proj.bias"]

        def feed_forward(v):
            hidden = np.maximum(0.0, v @ p["linear1.weight"].T + p["linear1.bias"])
            return hidden @ p["linear2.weight"].T + p["linear2.bias"]

        if norm_first:
            x = x + self_attention(norm(x, 1))
            return x + feed_forward(norm(x, 2))
        x = norm(x + self_attention(x), 1)
        return norm(x + feed_forward(x), 2)

    def right(**kwargs):
        return layer(**kwargs)

    def pre_norm(**kwargs):
        return layer(**kwargs, norm_first=True)

    def padding_not_masked(**kwargs):
        return layer(**kwargs, use_mask=False)

    assert points_of("encoder_layer", right) == 2  # the test's own layer is right, so its variants are fair
    assert points_of("encoder_layer", pre_norm) == 0
    assert points_of("encoder_layer", padding_not_masked) < 2  # a batch without padding cannot tell


# ------------------------------------------------------------------ grading the notebooks

def test_wrong_answers_lose_exactly_the_points_of_their_item(tmp_path):
    future_mask = solution_variant(SOLUTION, tmp_path, "future_mask", "np.tril(np.ones((T, T), dtype=bool))",
                                   "np.triu(np.ones((T, T), dtype=bool), k=1)")
    swapped = solution_variant(SOLUTION, tmp_path, "swapped",
                               "0::2] = np.sin(angles)\n    encodings[:, 1::2] = np.cos(angles)",
                               "0::2] = np.cos(angles)\n    encodings[:, 1::2] = np.sin(angles)")
    sublayer_normalised = solution_variant(SOLUTION, tmp_path, "sublayer_normalised",
                                "z = layer_norm(x + attended, p[\"norm1.weight\"], p[\"norm1.bias\"], eps)",
                                "z = x + layer_norm(attended, p[\"norm1.weight\"], p[\"norm1.bias\"], eps)")
    fused_norm = solution_variant(
        SOLUTION, tmp_path, "fused_norm", "    ### BEGIN SOLUTION\n    projected = ",
        "    ### BEGIN SOLUTION\n    import torch\n    torch.nn.functional.layer_norm(torch.zeros(1, 2), (2,))\n"
        "    projected = ")
    for path, item, reason in ((future_mask, "ch07.causal_mask", None),
                               (swapped, "ch07.sinusoidal_positions", None),
                               (sublayer_normalised, "ch07.encoder_layer", None),
                               (fused_norm, "ch07.encoder_layer", "forbidden API: torch.nn.functional.layer_norm")):
        assert_only_item_lost(grade_notebook(path), ASSIGNMENT, item, reason)
