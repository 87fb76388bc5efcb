"""Chapter 10's graded items: the references agree with independent computations (transformers'
GPT2Block and Conv1D with a causal mask, the exact formula of the tanh GELU, GPT2LMHeadModel's own
parameter count on the meta device, NumPy's least squares, GPT2LMHeadModel's loss with labels), the
mistakes the chapter warns about fail, and a wrong answer loses the points of its own item only."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from assignment_notebooks import (assert_declares, assert_only_item_lost, assert_random_numbers_untouched,
                                  points_earned, solution_variant)
from course_lib.grading.assignments import ch10_gpt as ch10
from course_lib.grading.cases import load_assignment
from course_lib.grading.policies import ATTENTION, CROSS_ENTROPY, GELU, LAYER_NORM, SOFTMAX
from course_lib.grading.runner import grade_notebook

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "ch10_gpt.ipynb"
ASSIGNMENT = load_assignment("ch10")


def erf(x):
    return np.vectorize(math.erf)(x)


def points_of(name: str, wrong) -> float:
    """The points a wrong function earns on the item ``name``'s cases."""
    return points_earned(ASSIGNMENT, name, wrong)


def hf_block(params, num_heads, eps, T):
    """transformers' GPT2Block holding ``params``, and its causal mask for T positions."""
    from transformers import GPT2Config
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    d_model, d_ff = params["mlp.c_fc.weight"].shape
    config = GPT2Config(n_embd=d_model, n_head=num_heads, n_inner=d_ff, layer_norm_epsilon=eps,
                        resid_pdrop=0.0, attn_pdrop=0.0, embd_pdrop=0.0)
    config._attn_implementation = "eager"
    block = GPT2Block(config).double().eval()
    state = block.state_dict()
    state.update({name: torch.from_numpy(value) for name, value in params.items()})
    block.load_state_dict(state)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    mask = torch.zeros(1, 1, T, T, dtype=torch.float64).masked_fill(future, -math.inf)
    return block, mask


# ------------------------------------------------------------------ the case sets themselves

def test_the_assignment_declares_six_items_worth_twelve_points_and_their_rules():
    assert ASSIGNMENT is ch10.ASSIGNMENT
    assert_declares(ASSIGNMENT, ["gelu_tanh", "causal_self_attention", "gpt_block", "parameter_count",
                                 "scaling_fit", "next_token_loss"], {"course_lib.gpt", "course_lib.transformer"}, 12)
    assert set(CROSS_ENTROPY) <= set(ASSIGNMENT.case_set("next_token_loss").forbidden)
    assert set(GELU) <= set(ASSIGNMENT.case_set("gelu_tanh").forbidden)
    assert set(ATTENTION + SOFTMAX) <= set(ASSIGNMENT.case_set("causal_self_attention").forbidden)
    assert set(ATTENTION + SOFTMAX + LAYER_NORM + GELU) <= set(ASSIGNMENT.case_set("gpt_block").forbidden)


def test_the_gelu_reference_is_the_tanh_formula_and_not_the_exact_gelu():
    for case in ch10._gelu_cases():
        x = case.kwargs["x"]
        formula = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
        np.testing.assert_allclose(ch10.gelu_tanh_reference(x), formula, rtol=1e-14, atol=1e-15)
    near = ch10._gelu_cases()[-1].kwargs["x"]
    exact = near * 0.5 * (1 + erf(near / math.sqrt(2)))
    assert np.abs(ch10.gelu_tanh_reference(near) - exact).max() > 4e-4  # the cases tell them apart


def test_the_block_and_attention_references_equal_transformers_gpt2block():
    for case in ch10._block_cases():
        k = case.kwargs
        block, mask = hf_block(k["params"], k["num_heads"], k["eps"], k["x"].shape[1])
        with torch.no_grad():
            expected = block(torch.from_numpy(k["x"]), attention_mask=mask)
            expected = expected[0] if isinstance(expected, tuple) else expected
            attention = block.attn(block.ln_1(torch.from_numpy(k["x"])), attention_mask=mask)[0]
        np.testing.assert_allclose(ch10.gpt_block_reference(**k), expected.numpy(), rtol=1e-10, atol=1e-12)
        p = k["params"]
        normed = block.ln_1(torch.from_numpy(k["x"])).detach().numpy()
        ours = ch10.causal_self_attention_reference(normed, p["attn.c_attn.weight"], p["attn.c_attn.bias"],
                                                    p["attn.c_proj.weight"], p["attn.c_proj.bias"], k["num_heads"])
        np.testing.assert_allclose(ours, attention.numpy(), rtol=1e-10, atol=1e-12, err_msg=case.label)


def test_the_parameter_count_reference_equals_transformers_on_the_meta_device():
    from transformers import GPT2Config, GPT2LMHeadModel

    for case in ch10._count_cases():
        k = case.kwargs
        with torch.device("meta"):
            model = GPT2LMHeadModel(GPT2Config(vocab_size=k["vocab_size"], n_positions=k["n_positions"],
                                               n_layer=k["n_layer"], n_embd=k["n_embd"], n_head=1,
                                               n_inner=k["n_inner"],
                                               tie_word_embeddings=k["tie_word_embeddings"]))
        assert ch10.parameter_count_reference(**k) == sum(p.numel() for p in model.parameters()), case.label


def test_the_scaling_fit_reference_recovers_an_exact_law_and_equals_lstsq():
    A, alpha = ch10.scaling_fit_reference(**ch10._scaling_cases()[0].kwargs)
    assert A == pytest.approx(30.0, rel=1e-10) and alpha == pytest.approx(0.3, rel=1e-10)
    for case in ch10._scaling_cases():
        k = case.kwargs
        design = np.stack([np.ones(len(k["N"])), np.log(k["N"])], axis=1)
        (intercept, slope), *_ = np.linalg.lstsq(design, np.log(k["L"] - k["E"]), rcond=None)
        assert ch10.scaling_fit_reference(**k) == pytest.approx((math.exp(intercept), -slope), rel=1e-9)


def test_the_loss_reference_equals_gpt2lmheadmodels_loss_with_labels():
    """transformers' model runs the case's tokens; its last hidden states and wte go to the
    reference, and its own loss (labels = the tokens, -100 at padding) must come out."""
    from transformers import GPT2Config, GPT2LMHeadModel

    for case in ch10._loss_cases():
        k = case.kwargs
        vocab_size, d_model = k["wte"].shape
        torch.manual_seed(7)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_embd=d_model, n_layer=2, n_head=2,
                                           n_positions=16, resid_pdrop=0.0, attn_pdrop=0.0, embd_pdrop=0.0,
                                           bos_token_id=0, eos_token_id=0)).double().eval()
        ids = torch.from_numpy(k["tokens"])
        labels = ids.masked_fill(ids == k["pad_id"], -100)
        with torch.no_grad():
            output = model(ids, labels=labels, output_hidden_states=True)
        hidden, wte = output.hidden_states[-1].numpy(), model.transformer.wte.weight.detach().numpy()
        ours = ch10.next_token_loss_reference(hidden, wte, k["tokens"], k["pad_id"])
        # transformers computes its loss in float32, whatever the model's dtype
        assert ours == pytest.approx(output.loss.item(), rel=1e-6), case.label


def test_the_loss_cases_have_what_their_labels_say():
    one, padded, large, inside = (case.kwargs for case in ch10._loss_cases())
    assert not (one["tokens"] == one["pad_id"]).any()
    assert [int((row != 0).sum()) for row in padded["tokens"]] == [8, 5, 3]
    assert np.abs(large["hidden"] @ large["wte"].T).max() > 710  # exp overflows float64 past ~709.8
    assert inside["pad_id"] == 3 and (inside["tokens"][1, 4:] == 3).all() and (inside["tokens"][0] != 3).all()


def test_the_references_leave_the_callers_random_numbers_alone():
    assert_random_numbers_untouched((ch10.gpt_block_reference, ch10._block_cases()[0]),
                                    (ch10.causal_self_attention_reference, ch10._attention_cases()[0]),
                                    (ch10.next_token_loss_reference, ch10._loss_cases()[0]))


# ------------------------------------------------------------------ classic mistakes lose their item

def test_gelu_mistakes_fail():
    def exact(x):
        return x * 0.5 * (1 + erf(x / math.sqrt(2)))

    def without_the_cubic_term(x):
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * x))

    for wrong in (exact, without_the_cubic_term):
        assert points_of("gelu_tanh", wrong) == 0, wrong.__name__


def attention(x, c_attn_weight, c_attn_bias, c_proj_weight, c_proj_bias, num_heads, *, transpose=False,
              causal=True, scale=True, interleaved=False):
    batch, T, d = x.shape
    d_k = d // num_heads
    W = c_attn_weight.reshape(3 * d, d).T if transpose else c_attn_weight   # a Linear's reading of the bytes
    projected = x @ W + c_attn_bias
    if interleaved:  # q, k, v taken as every third feature
        parts = [projected[..., i::3] for i in range(3)]
    else:
        parts = np.split(projected, 3, axis=-1)
    q, k, v = (part.reshape(batch, T, num_heads, d_k).transpose(0, 2, 1, 3) for part in parts)
    scores = q @ k.transpose(0, 1, 3, 2) / (math.sqrt(d_k) if scale else 1.0)
    if causal:
        scores = np.where(np.triu(np.ones((T, T), dtype=bool), 1), -np.inf, scores)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return (weights @ v).transpose(0, 2, 1, 3).reshape(batch, T, d) @ c_proj_weight + c_proj_bias


def test_attention_mistakes_fail():
    assert points_of("causal_self_attention", attention) == 3  # the test's attention is right
    for mistake in ("transpose", "interleaved"):
        assert points_of("causal_self_attention", lambda **k: attention(**k, **{mistake: True})) == 0, mistake
    for mistake in ("causal", "scale"):
        assert points_of("causal_self_attention", lambda **k: attention(**k, **{mistake: False})) == 0, mistake


def test_block_mistakes_fail():
    def norm(z, gamma, beta, eps):
        return gamma * (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + eps) + beta

    def block(x, params, num_heads, eps, *, pre_norm=True, gelu=ch10.gelu_tanh_reference):
        p = params

        def attend(h):
            return attention(h, p["attn.c_attn.weight"], p["attn.c_attn.bias"], p["attn.c_proj.weight"],
                             p["attn.c_proj.bias"], num_heads)

        def mlp(h):
            return gelu(h @ p["mlp.c_fc.weight"] + p["mlp.c_fc.bias"]) @ p["mlp.c_proj.weight"] + p["mlp.c_proj.bias"]

        if pre_norm:
            a = x + attend(norm(x, p["ln_1.weight"], p["ln_1.bias"], eps))
            return a + mlp(norm(a, p["ln_2.weight"], p["ln_2.bias"], eps))
        a = norm(x + attend(x), p["ln_1.weight"], p["ln_1.bias"], eps)
        return norm(a + mlp(a), p["ln_2.weight"], p["ln_2.bias"], eps)

    def exact_gelu(z):
        return z * 0.5 * (1 + erf(z / math.sqrt(2)))

    assert points_of("gpt_block", block) == 2
    assert points_of("gpt_block", lambda **k: block(**k, pre_norm=False)) == 0
    assert points_of("gpt_block", lambda **k: block(**k, gelu=exact_gelu)) == 0
    assert points_of("gpt_block", lambda **k: block(**k, gelu=lambda z: np.maximum(z, 0.0))) == 0


def test_parameter_count_mistakes_fail():
    def count(vocab_size, n_positions, n_layer, n_embd, n_inner, tie_word_embeddings, *, biases=True,
              final_norm=True, tied_twice=False):
        d, f = n_embd, n_inner or 4 * n_embd
        block = 4 * d + 4 * d * d + d * f * 2 + ((3 * d + d + f + d) if biases else 0)
        total = vocab_size * d + n_positions * d + n_layer * block + (2 * d if final_norm else 0)
        return total + (vocab_size * d if (tied_twice or not tie_word_embeddings) else 0)

    assert points_of("parameter_count", count) == 2
    for mistake in ({"biases": False}, {"final_norm": False}):
        assert points_of("parameter_count", lambda **k: count(**k, **mistake)) == 0, mistake
    # the untied case cannot tell: the three tied ones can
    assert points_of("parameter_count", lambda **k: count(**k, tied_twice=True)) == 0.5


def test_scaling_fit_mistakes_fail():
    def fit(N, L, E, *, subtract_floor=True, sign=-1.0):
        slope, intercept = np.polyfit(np.log(N), np.log(np.asarray(L) - (E if subtract_floor else 0.0)), 1)
        return float(np.exp(intercept)), float(sign * slope)

    assert points_of("scaling_fit", fit) == 2
    assert points_of("scaling_fit", lambda **k: fit(**k, sign=1.0)) == 0
    assert points_of("scaling_fit", lambda **k: fit(**k, subtract_floor=False)) == 0.5  # E = 0 in one case


def test_loss_mistakes_fail():
    def loss(hidden, wte, tokens, pad_id, *, shift=True, skip_padding=True, per_story=False, stable=True):
        logits = hidden @ wte.T
        targets = tokens
        if shift:
            logits, targets = logits[:, :-1], tokens[:, 1:]
        top = logits.max(-1, keepdims=True) if stable else 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            log_probs = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
        picked = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
        counted = (targets != pad_id) if skip_padding else np.ones(targets.shape, dtype=bool)
        if per_story:
            return float(np.mean([row[keep].mean() for row, keep in zip(picked, counted)]))
        return float(picked[counted].sum() / counted.sum())

    assert points_of("next_token_loss", loss) == 2
    assert points_of("next_token_loss", lambda **k: loss(**k, shift=False)) == 0
    # the one case without padding cannot tell these two from the right answer; the three others can
    assert points_of("next_token_loss", lambda **k: loss(**k, skip_padding=False)) == 0.5
    assert points_of("next_token_loss", lambda **k: loss(**k, per_story=True)) == 0.5
    assert points_of("next_token_loss", lambda **k: loss(**k, stable=False)) == 1.5  # the overflow case


# ------------------------------------------------------------------ grading the notebooks

def test_wrong_answers_lose_exactly_the_points_of_their_item(tmp_path):
    post_norm = solution_variant(SOLUTION, tmp_path, "post_norm",
                                 "    a = x + attended\n",
                                 "    a = layer_norm(x + attended, p[\"ln_1.weight\"], p[\"ln_1.bias\"], eps)\n")
    no_final_norm = solution_variant(SOLUTION, tmp_path, "no_final_norm", "n_layer * block + 2 * d",
                                     "n_layer * block")
    positive_slope = solution_variant(SOLUTION, tmp_path, "positive_slope",
                                      "float(np.exp(intercept)), float(-slope)",
                                      "float(np.exp(intercept)), float(slope)")
    unshifted = solution_variant(SOLUTION, tmp_path, "unshifted",
                                 "(hidden @ wte.T)[:, :-1]                    # position t scores token t + 1\n"
                                 "    targets = tokens[:, 1:]",
                                 "hidden @ wte.T\n    targets = tokens")
    for path, item, reason in ((post_norm, "ch10.gpt_block", None), (no_final_norm, "ch10.parameter_count", None),
                               (positive_slope, "ch10.scaling_fit", None), (unshifted, "ch10.next_token_loss", None)):
        assert_only_item_lost(grade_notebook(path), ASSIGNMENT, item, reason)
