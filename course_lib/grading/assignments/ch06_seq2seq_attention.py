"""Chapter 6 exercises: attention, one decoder step with it, greedy decoding and BLEU's precision.

Inputs are float64 NumPy arrays (boolean masks, integer token ids) from seeded generators, so the
cases are the same on every run. The references are the chapter's modules: the masked softmax,
the additive score and the weighted sum of :mod:`course_lib.attention`, one step of
:class:`course_lib.seq2seq.Seq2Seq` with Luong's attention and a dot score (its weights loaded
from the case), and :func:`course_lib.bleu.clipped_matches`.

The greedy-decoding item grades a loop over a *step function*; a case cannot carry a function, so
it carries a table ``log_probs (max_length, V, V)`` instead, and the decoder it stands for gives
``log_probs[t, y]`` at step ``t`` after token ``y`` (:func:`table_decoder`). The exercise notebook
wraps the student's loop the same way (``greedy_decode_on_table``).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from course_lib import attention, bleu, rnn, seq2seq
from course_lib.grading.cases import Assignment, Case, graded_item
from course_lib.grading.seeded import float64_tensor, normal_array, seeded_rng
from course_lib.grading.policies import (
    ATTENTION, EXACT, FLOAT64_REORDERED, FLOAT64_SAME_ORDER, RECURRENT_LAYERS, SOFTMAX,
)

DECODER_STEP_PARAMS = ("W_hi", "W_hh", "b_h", "W_c", "W_o", "b_o")


def padding_mask(lengths: list[int], S: int) -> np.ndarray:
    """``(batch, S)`` boolean, True at the first ``lengths[b]`` positions of row ``b``."""
    return np.arange(S)[None, :] < np.asarray(lengths)[:, None]


# --------------------------------------------------------------------------- references


def masked_attention_weights_reference(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return attention.masked_softmax(float64_tensor(scores), torch.as_tensor(np.asarray(mask, dtype=bool))).numpy()


def additive_scores_reference(query, keys, W_q, W_k, b, v) -> np.ndarray:
    """``e_i = vᵀ tanh(W_q s + W_k h_i + b)``: :class:`~course_lib.attention.AdditiveScore`, the case's weights."""
    d_attention, d_query = np.shape(W_q)
    d_key = np.shape(W_k)[1]
    with torch.random.fork_rng(devices=[]):  # leave the caller's generator as it was (check runs in a kernel)
        score = attention.AdditiveScore(d_query, d_key, d_attention).double()
    score.load_state_dict({"W_q.weight": float64_tensor(W_q), "W_k.weight": float64_tensor(W_k), "W_k.bias": float64_tensor(b),
                           "v": float64_tensor(v)})
    with torch.no_grad():
        return score(float64_tensor(query)[:, None, :], float64_tensor(keys))[:, 0].numpy()   # one query per example


def context_vector_reference(weights: np.ndarray, encoder_states: np.ndarray) -> np.ndarray:
    """``c = H^enc α``: each example's weights ``(1, S)`` times its states ``(S, d)``."""
    return (float64_tensor(weights)[:, None, :] @ float64_tensor(encoder_states))[:, 0].numpy()


def decoder_step_model(params: dict[str, np.ndarray], x_t: np.ndarray) -> seq2seq.Seq2Seq:
    """A float64 :class:`~course_lib.seq2seq.Seq2Seq` (tanh RNN, Luong's attention, dot score) that
    holds ``params``; its target embedding holds the rows of ``x_t``, so example ``b`` reads token ``b``."""
    d_hidden, d_embed = np.shape(params["W_hi"])
    vocab_size = np.shape(params["W_o"])[0]
    batch = np.shape(x_t)[0]
    if batch > vocab_size:
        raise ValueError(f"a case's batch ({batch}) must not exceed its vocabulary ({vocab_size}): "
                         "example b reads token b")
    with torch.random.fork_rng(devices=[]):
        encoder = seq2seq.Encoder(1, d_embed, rnn.RNN(d_embed, d_hidden))
        model = seq2seq.Seq2Seq(encoder, rnn.RNN(d_embed, d_hidden), vocab_size, d_embed,
                                attention="luong", score="dot").double()
    embedding = np.zeros((vocab_size, d_embed))
    embedding[:batch] = x_t
    with torch.no_grad():
        model.embedding.weight.copy_(float64_tensor(embedding))
        model.decoder_layer.weight_ih_l0.copy_(float64_tensor(params["W_hi"]))
        model.decoder_layer.weight_hh_l0.copy_(float64_tensor(params["W_hh"]))
        model.decoder_layer.bias_ih_l0.copy_(float64_tensor(params["b_h"]))
        model.decoder_layer.bias_hh_l0.zero_()   # the book's one bias b_h = b_ih + b_hh
        model.combine.weight.copy_(float64_tensor(params["W_c"]))
        model.readout.weight.copy_(float64_tensor(params["W_o"]))
        model.readout.bias.copy_(float64_tensor(params["b_o"]))
    return model


def decoder_step_with_attention_reference(s_prev, x_t, encoder_states, mask, params):
    """``(s_t, α_t, log p_t)`` from :meth:`Seq2Seq.step <course_lib.seq2seq.Seq2Seq.step>`."""
    model = decoder_step_model(params, x_t)
    state = seq2seq.DecoderState(float64_tensor(s_prev)[None], float64_tensor(encoder_states),
                                 torch.as_tensor(np.asarray(mask, dtype=bool)))
    with torch.no_grad():
        log_probs, next_state, weights = model.step(torch.arange(np.shape(x_t)[0]), state)
    return next_state.layer_state[0].numpy(), weights.numpy(), log_probs.numpy()


StepFunction = Callable[[int], np.ndarray]


def greedy_loop(step_fn: StepFunction, bos: int, eos: int, max_length: int) -> list[int]:
    """Arg-max decoding: feed BOS, then each prediction, until EOS (not kept) or ``max_length`` tokens."""
    token, produced = bos, []
    for _ in range(max_length):
        token = int(np.argmax(step_fn(token)))
        if token == eos:
            break
        produced.append(token)
    return produced


def table_decoder(log_probs: np.ndarray) -> StepFunction:
    """The step function of a made-up decoder: its ``t``-th call, after token ``y``, gives ``log_probs[t, y]``."""
    calls = 0

    def step_fn(previous_token: int) -> np.ndarray:
        nonlocal calls
        if calls >= len(log_probs):
            raise RuntimeError(f"the step function was called more than max_length = {len(log_probs)} times")
        row = log_probs[calls, previous_token]
        calls += 1
        return row

    return step_fn


def greedy_decode_reference(log_probs: np.ndarray, bos: int, eos: int, max_length: int) -> list[int]:
    return greedy_loop(table_decoder(log_probs), bos, eos, max_length)


def clipped_precision_reference(candidate, references, n) -> tuple[int, int]:
    return bleu.clipped_matches(candidate, references, n)


# --------------------------------------------------------------------------- cases


def _masked_softmax_cases() -> list[Case]:
    holes = np.array([[True, False, True, True, False, True],
                      [False, False, False, True, False, False],
                      [True, True, True, True, True, True],
                      [False, True, False, True, False, True]])
    largest_masked = normal_array(124, 3, 5)
    hidden = ~padding_mask([4, 2, 5], 5)
    largest_masked[hidden] = 1000.0  # subtracting the max over every position would leave exp(-1000) = 0
    return [
        Case("one row of 5 scores, nothing masked",
             {"scores": normal_array(120, 1, 5), "mask": np.ones((1, 5), dtype=bool)}),
        Case("padding: a batch of 3 sources of lengths 5, 3 and 1",
             {"scores": normal_array(121, 3, 5), "mask": padding_mask([5, 3, 1], 5)}),
        Case("masks with holes, not only padding at the end", {"scores": normal_array(122, 4, 6), "mask": holes}),
        Case("large scores (up to about ±900): exp overflows unless the largest visible score is subtracted",
             {"scores": normal_array(123, 2, 7, scale=300.0), "mask": padding_mask([7, 4], 7)}),
        Case("the masked positions hold the largest scores (1000)",
             {"scores": largest_masked, "mask": padding_mask([4, 2, 5], 5)}),
        Case("several queries per example: scores (2, 3, 4), one mask (2, 1, 4) for all of an example's rows",
             {"scores": normal_array(125, 2, 3, 4), "mask": padding_mask([4, 2], 4)[:, None, :]}),
    ]


def _additive_case(label: str, batch: int, S: int, d_query: int, d_key: int, d_attention: int, seed: int,
                   scale: float = 0.5) -> Case:
    rng = seeded_rng(seed)
    return Case(label, {
        "query": rng.normal(0, 1, (batch, d_query)), "keys": rng.normal(0, 1, (batch, S, d_key)),
        "W_q": rng.normal(0, scale, (d_attention, d_query)), "W_k": rng.normal(0, scale, (d_attention, d_key)),
        "b": rng.normal(0, scale, d_attention), "v": rng.normal(0, 1, d_attention)})


def _additive_cases() -> list[Case]:
    return [
        _additive_case("one example, 3 keys; d_query = d_key = d_attention = 4", 1, 3, 4, 4, 4, seed=130),
        _additive_case("a batch of 3, 5 keys; d_query = 2, d_key = 3, d_attention = 6", 3, 5, 2, 3, 6, seed=131),
        _additive_case("d_attention = 1: one tanh unit, v a single number", 2, 4, 3, 5, 1, seed=132),
        _additive_case("large weights: tanh saturates near -1 and +1", 2, 6, 4, 4, 3, seed=133, scale=6.0),
    ]


def _attention_weights(seed: int, lengths: list[int], S: int) -> np.ndarray:
    """Rows that sum to 1 with zeros at padding: a softmax of random scores over each row's length."""
    scores = normal_array(seed, len(lengths), S)
    mask = padding_mask(lengths, S)
    exps = np.where(mask, np.exp(scores - scores.max(axis=1, keepdims=True)), 0.0)
    return exps / exps.sum(axis=1, keepdims=True)


def _context_cases() -> list[Case]:
    one_hot = np.zeros((2, 4))
    one_hot[0, 2] = one_hot[1, 0] = 1.0
    return [
        Case("one-hot weights pick one encoder state per example",
             {"weights": one_hot, "encoder_states": normal_array(140, 2, 4, 3)}),
        Case("uniform weights average the states", {"weights": np.full((1, 5), 0.2),
                                                    "encoder_states": normal_array(141, 1, 5, 2)}),
        Case("a batch of 3 with padding (weight 0 past each length); S = 6, d = 4",
             {"weights": _attention_weights(142, [6, 4, 2], 6), "encoder_states": normal_array(143, 3, 6, 4)}),
        Case("S = d = 5: summing over the wrong axis gives the right shape, not the right numbers",
             {"weights": _attention_weights(144, [5, 5], 5), "encoder_states": normal_array(145, 2, 5, 5)}),
    ]


def decoder_step_params(d_embed: int, d_hidden: int, vocab_size: int, seed: int,
                        scale: float = 0.5) -> dict[str, np.ndarray]:
    """``W_hi (d, d_embed)``, ``W_hh (d, d)``, ``b_h (d,)``, ``W_c (d, 2d)`` on ``[c_t; s_t]``,
    ``W_o (V, d)``, ``b_o (V,)``: Gaussian times ``scale``."""
    rng = seeded_rng(seed)
    shapes = {"W_hi": (d_hidden, d_embed), "W_hh": (d_hidden, d_hidden), "b_h": (d_hidden,),
              "W_c": (d_hidden, 2 * d_hidden), "W_o": (vocab_size, d_hidden), "b_o": (vocab_size,)}
    return {name: rng.normal(0.0, scale, shapes[name]) for name in DECODER_STEP_PARAMS}


def _decoder_step_case(label: str, lengths: list[int], S: int, d_embed: int, d_hidden: int, vocab_size: int,
                       seed: int) -> Case:
    rng = seeded_rng(seed)
    batch = len(lengths)
    mask = padding_mask(lengths, S)
    states = np.tanh(rng.normal(0, 1, (batch, S, d_hidden))) * mask[:, :, None]  # zero at padding, as encoded
    return Case(label, {"s_prev": np.tanh(rng.normal(0, 1, (batch, d_hidden))),
                        "x_t": rng.normal(0, 1, (batch, d_embed)), "encoder_states": states, "mask": mask,
                        "params": decoder_step_params(d_embed, d_hidden, vocab_size, seed + 1)})


def _decoder_step_cases() -> list[Case]:
    return [
        _decoder_step_case("one example, 4 source positions; d_embed = 3, d_hidden = 4, V = 5",
                           [4], 4, 3, 4, 5, seed=150),
        _decoder_step_case("a batch of 3 sources of lengths 6, 3 and 1 (padding masked)",
                           [6, 3, 1], 6, 2, 5, 7, seed=152),
        _decoder_step_case("d_embed = 6 > d_hidden = 3, V = 10", [5, 5], 5, 6, 3, 10, seed=154),
        _decoder_step_case("a longer source: 12 positions, a batch of 2", [12, 9], 12, 4, 6, 8, seed=156),
    ]


def decoder_table(seed: int, vocab_size: int, max_length: int, bos: int, eos: int,
                  eos_at: int | None) -> np.ndarray:
    """``log_probs (max_length, V, V)``: random rows, made so that greedy decoding from ``bos``
    predicts EOS first at step ``eos_at`` (0-based; never when None)."""
    logits = seeded_rng(seed).normal(0.0, 2.0, (max_length, vocab_size, vocab_size))
    token = bos
    for t in range(max_length):
        row = logits[t, token]
        if t == eos_at:
            row[eos] = row.max() + 1.0
            break
        row[eos] = row.min() - 1.0
        token = int(np.argmax(row))
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _greedy_case(label: str, seed: int, vocab_size: int, max_length: int, eos_at: int | None,
                 bos: int = 2, eos: int = 3) -> Case:
    return Case(label, {"log_probs": decoder_table(seed, vocab_size, max_length, bos, eos, eos_at),
                        "bos": bos, "eos": eos, "max_length": max_length})


def _greedy_cases() -> list[Case]:
    return [
        _greedy_case("EOS at the 5th step: 4 tokens, EOS not kept", 160, 8, 10, eos_at=4),
        _greedy_case("no EOS: stop after max_length = 6 tokens", 161, 7, 6, eos_at=None),
        _greedy_case("EOS first: an empty translation", 162, 6, 5, eos_at=0),
        _greedy_case("max_length = 1", 163, 9, 1, eos_at=None),
        _greedy_case("EOS at the last allowed step, other ids for BOS and EOS", 164, 12, 7, eos_at=6,
                     bos=0, eos=11),
    ]


def _clipped_precision_cases() -> list[Case]:
    cat = ["the", "cat", "is", "on", "the", "mat"]
    there = ["there", "is", "a", "cat", "on", "the", "mat"]
    kelo = "Mia vavo ko dose na kasi dume sufo gadu ne Tom nimo ki peve sabi ko fome na .".split()
    gloss = "sufo dume fome sabi peve ki Tom nimo ne gadu kasi Mia dose vavo .".split()
    return [
        Case("Papineni et al.'s example: 'the' seven times, unigrams",
             {"candidate": ["the"] * 7, "references": [cat, there], "n": 1}),
        Case("bigrams of a candidate against two references",
             {"candidate": ["the", "cat", "the", "cat", "on", "the", "mat"], "references": [cat, there], "n": 2}),
        Case("a word repeated more often in one reference than in the other: the clip is the larger count",
             {"candidate": ["the", "the", "the", "cat"], "references": [["the", "cat"], cat], "n": 1}),
        Case("n longer than the candidate: no n-grams at all",
             {"candidate": ["the", "cat"], "references": [cat], "n": 3}),
        Case("a Kelo gloss in English word order against the translation, bigrams",
             {"candidate": gloss, "references": [kelo], "n": 2}),
        Case("Kelo, unigrams: every word of the gloss is in the translation",
             {"candidate": gloss, "references": [kelo], "n": 1}),
    ]


ASSIGNMENT = Assignment(
    name="ch06", title="Chapter 6: sequence to sequence and attention",
    case_sets=(
        graded_item("ch06.masked_attention_weights", points=2, make_cases=_masked_softmax_cases,
                    reference=masked_attention_weights_reference, tolerance=FLOAT64_SAME_ORDER,
                    forbidden=ATTENTION + SOFTMAX,
                    hint="""A masked position must be out of the softmax before it is normalised, and each
                            row of weights runs over the source positions only. See "Masks" in Chapter 6."""),
        graded_item("ch06.additive_scores", points=2, make_cases=_additive_cases,
                    reference=additive_scores_reference, tolerance=FLOAT64_REORDERED, forbidden=ATTENTION,
                    hint="""Each key is projected by its own matrix, the query by another, and both meet
                            with the bias inside the tanh; v turns the result into one number per key. See
                            "Three scores" in Chapter 6."""),
        graded_item("ch06.context_vector", points=1, make_cases=_context_cases,
                    reference=context_vector_reference, tolerance=FLOAT64_SAME_ORDER, forbidden=ATTENTION,
                    hint="""The context is a weighted sum over source positions: one weight per encoder
                            state, each example with its own weights. See "The context vector" in Chapter 6."""),
        graded_item("ch06.decoder_step_with_attention", points=2, make_cases=_decoder_step_cases,
                    reference=decoder_step_with_attention_reference, tolerance=FLOAT64_REORDERED,
                    forbidden=ATTENTION + SOFTMAX + RECURRENT_LAYERS,
                    hint="""In this decoder the query is the state the step has just computed, not the one
                            it was given; the context comes first in what W_c reads. See "Decoding with
                            attention" in Chapter 6."""),
        graded_item("ch06.greedy_decode", points=1, make_cases=_greedy_cases,
                    reference=greedy_decode_reference, tolerance=EXACT, function="greedy_decode_on_table",
                    hint="""Each step reads the token chosen at the step before; EOS ends the output without
                            being part of it, and max_length counts the tokens produced. See "Greedy
                            decoding" in Chapter 6."""),
        graded_item("ch06.clipped_precision", points=2, make_cases=_clipped_precision_cases,
                    reference=clipped_precision_reference, tolerance=EXACT,
                    hint="""A candidate n-gram earns at most as many matches as it occurs in a single
                            reference, the reference where it occurs most. See "BLEU" in Chapter 6."""),
    ),
    reference_modules=("course_lib.attention", "course_lib.seq2seq", "course_lib.bleu"),
)
