"""Chapter 8 exercises: the pieces of a decoder, from the next-token scores to a stopped text.

Inputs are float64 NumPy arrays of scores (logits, ``-inf`` for a token already ruled out),
integer arrays of generated ids and plain Python values, drawn from seeded generators or written
out, so the cases are the same on every run. The references are the chapter's module,
:mod:`course_lib.decoding`: :class:`~course_lib.decoding.Temperature` followed by a softmax,
:class:`~course_lib.decoding.TopK`, :class:`~course_lib.decoding.TopP`,
:class:`~course_lib.decoding.FrequencyPresencePenalty`, :func:`~course_lib.decoding.rank_candidates`
(one step of beam search) and :class:`~course_lib.decoding.Stopping` with stop strings.
"""
from __future__ import annotations

import numpy as np
import torch

from course_lib import decoding
from course_lib.grading.cases import Assignment, Case, graded_item
from course_lib.grading.policies import EXACT, FLOAT64_REORDERED, SOFTMAX
from course_lib.grading.seeded import float64_tensor, normal_array, seeded_rng

NEG_INF = -np.inf


# --------------------------------------------------------------------------- references


def temperature_softmax_reference(logits, temperature) -> np.ndarray:
    """``softmax(z / τ)`` over the last axis: ``(batch, V)`` -> ``(batch, V)``."""
    scores = decoding.Temperature(temperature)(float64_tensor(logits), torch.zeros(1, 0, dtype=torch.long))
    return torch.softmax(scores, dim=-1).numpy()


def _processed(processor, logits, generated=None) -> np.ndarray:
    generated = torch.zeros(np.shape(logits)[0], 0, dtype=torch.long) if generated is None else \
        torch.as_tensor(np.asarray(generated, dtype=np.int64))
    return processor(float64_tensor(logits), generated).numpy()


def top_k_filter_reference(logits, k) -> np.ndarray:
    return _processed(decoding.TopK(k), logits)


def top_p_filter_reference(logits, p) -> np.ndarray:
    return _processed(decoding.TopP(p), logits)


def penalise_repeats_reference(logits, generated, frequency, presence) -> np.ndarray:
    return _processed(decoding.FrequencyPresencePenalty(frequency, presence), logits, generated)


def beam_step_reference(beam_log_probs, next_log_probs, beam_width) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(log P (b,), parent (b,), token (b,))`` of the ``b = beam_width`` best candidates, best first."""
    best, parents, tokens = decoding.rank_candidates(float64_tensor(beam_log_probs), float64_tensor(next_log_probs),
                                                     beam_width)
    return best.numpy(), parents.numpy(), tokens.numpy()


def tokens_to_keep_reference(pieces, stop_strings, max_tokens) -> int:
    """How many of the generated ``pieces`` a decoder returns: it stops after ``max_tokens`` pieces, or
    after the piece that completes a stop string in the text ``"".join(pieces)``."""
    stopping = decoding.Stopping(max_tokens, stop_strings=tuple(stop_strings), detokenize="".join)
    for count in range(1, min(len(pieces), max_tokens) + 1):
        if stopping.reached_stop_string(list(pieces[:count])):
            return count
    return min(len(pieces), max_tokens)


# --------------------------------------------------------------------------- cases


def _temperature_cases() -> list[Case]:
    large = normal_array(300, 2, 6, scale=3.0) + np.array([[900.0], [-900.0]])
    ruled_out = normal_array(301, 3, 5)
    ruled_out[0, 1] = ruled_out[1, [0, 4]] = ruled_out[2, 2] = NEG_INF
    return [
        Case("a batch of 3 over 8 tokens, τ = 1: the plain softmax",
             {"logits": normal_array(302, 3, 8), "temperature": 1.0}),
        Case("τ = 0.5 sharpens", {"logits": normal_array(303, 2, 10), "temperature": 0.5}),
        Case("τ = 4 flattens", {"logits": normal_array(304, 2, 10), "temperature": 4.0}),
        Case("scores near +900 and -900: exponentials must not overflow", {"logits": large, "temperature": 0.7}),
        Case("-inf scores (tokens ruled out) get probability 0", {"logits": ruled_out, "temperature": 1.3}),
        Case("τ = 0.01: almost all the mass on the best token",
             {"logits": normal_array(305, 2, 7), "temperature": 0.01}),
    ]


def _top_k_cases() -> list[Case]:
    ties = np.array([[3.0, 2.0, 2.0, 2.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    ruled_out = normal_array(311, 2, 6)
    ruled_out[:, 2] = NEG_INF
    return [
        Case("k = 3 of 10 tokens, a batch of 4", {"logits": normal_array(310, 4, 10), "k": 3}),
        Case("k = 1: the best token alone", {"logits": normal_array(312, 3, 6), "k": 1}),
        Case("ties with the k-th score: all of them stay", {"logits": ties, "k": 2}),
        Case("k larger than the vocabulary keeps everything", {"logits": normal_array(313, 2, 4), "k": 10}),
        Case("a -inf score stays -inf", {"logits": ruled_out, "k": 3}),
    ]


def _log_probs(*rows: list[float]) -> np.ndarray:
    return np.log(np.array(rows, dtype=np.float64))


def _top_p_cases() -> list[Case]:
    # probabilities written out so that where p falls is clear: well inside one token's share
    crossing = _log_probs([0.5, 0.3, 0.1, 0.06, 0.04], [0.4, 0.35, 0.2, 0.05, 1e-9])
    return [
        Case("p = 0.85: 0.5 + 0.3 = 0.8 < p, so the third token, which crosses p, stays",
             {"logits": crossing, "p": 0.85}),
        Case("p = 0.6: the first token (0.5) does not reach p; the second does",
             {"logits": crossing, "p": 0.6}),
        Case("p = 0.3: the best token alone reaches p", {"logits": crossing, "p": 0.3}),
        Case("p = 1: every token with any probability stays", {"logits": normal_array(320, 3, 8), "p": 1.0}),
        Case("random scores over 12 tokens, p = 0.9, a batch of 5",
             {"logits": normal_array(321, 5, 12, scale=2.0), "p": 0.9}),
        Case("scores not normalised (logits, not log-probabilities), p = 0.7",
             {"logits": normal_array(322, 3, 9, scale=2.0) + 40.0, "p": 0.7}),
    ]


def _penalty_cases() -> list[Case]:
    return [
        Case("one row; token 2 generated three times, token 0 once; frequency 0.5, presence 0",
             {"logits": normal_array(330, 1, 5), "generated": np.array([[2, 0, 2, 2]]), "frequency": 0.5,
              "presence": 0.0}),
        Case("the same history; frequency 0, presence 0.7: paid once per token that appeared",
             {"logits": normal_array(331, 1, 5), "generated": np.array([[2, 0, 2, 2]]), "frequency": 0.0,
              "presence": 0.7}),
        Case("both penalties, a batch of 3 with different histories",
             {"logits": normal_array(332, 3, 7), "generated": np.array([[1, 1, 1, 4], [0, 2, 3, 6], [5, 5, 0, 5]]),
              "frequency": 0.4, "presence": 0.3}),
        Case("nothing generated yet: no change", {"logits": normal_array(333, 2, 4),
                                                  "generated": np.zeros((2, 0), dtype=np.int64),
                                                  "frequency": 1.0, "presence": 1.0}),
        Case("negative penalties reward repetition", {"logits": normal_array(334, 2, 6),
                                                      "generated": np.array([[3, 3], [0, 5]]),
                                                      "frequency": -0.2, "presence": -0.5}),
    ]


def _beam_case(label: str, seed: int, beam: int, vocab: int, first_step: bool = False) -> Case:
    rng = seeded_rng(seed)
    live = np.sort(rng.normal(-3.0, 1.0, beam))[::-1].copy()
    if first_step:
        live[1:] = NEG_INF          # only the prompt is alive: the other slots must not compete
    scores = rng.normal(0.0, 2.0, (beam, vocab))
    next_log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    return Case(label, {"beam_log_probs": live, "next_log_probs": next_log_probs, "beam_width": beam})


def _beam_cases() -> list[Case]:
    return [
        _beam_case("a beam of 3 over 5 tokens", 340, 3, 5),
        _beam_case("a beam of 2 over 8 tokens", 341, 2, 8),
        _beam_case("the first step: one live sequence, the other slots at -inf", 342, 4, 6, first_step=True),
        _beam_case("a beam of 5 over 3 tokens (fewer tokens than slots)", 343, 5, 3),
        _beam_case("a beam of 1: greedy search", 344, 1, 7),
    ]


def _stopping_cases() -> list[Case]:
    return [
        Case("'The end.' arrives in three pieces",
             {"pieces": ["Once", " upon", " a", " time", ".", " The", " e", "nd", ".", " Then"],
              "stop_strings": ["The end."], "max_tokens": 50}),
        Case("no stop string appears: stop at max_tokens", {"pieces": ["a", "b", "c", "d", "e", "f"],
                                                            "stop_strings": ["z"], "max_tokens": 4}),
        Case("no stop string, fewer pieces than max_tokens", {"pieces": ["a", "b"], "stop_strings": ["z"],
                                                             "max_tokens": 4}),
        Case("two stop strings: the first completed wins", {"pieces": ["Q", ":", " why", "?", "\n", "A", ":"],
                                                            "stop_strings": ["\n", "A:"], "max_tokens": 20}),
        Case("the stop string inside one piece", {"pieces": ["ab", "c#d", "ef"], "stop_strings": ["#"],
                                                  "max_tokens": 10}),
        Case("max_tokens comes before the stop string", {"pieces": ["x", "y", "STOP", "z"],
                                                         "stop_strings": ["STOP"], "max_tokens": 2}),
    ]


ASSIGNMENT = Assignment(
    name="ch08", title="Chapter 8: decoding",
    case_sets=(
        graded_item("ch08.temperature_softmax", points=1, make_cases=_temperature_cases,
                    reference=temperature_softmax_reference, tolerance=FLOAT64_REORDERED, forbidden=SOFTMAX,
                    hint="""Divide the scores by the temperature before the exponential, subtract each row's
                            largest score so that nothing overflows, and normalise over the tokens. See
                            "Temperature" in Chapter 8."""),
        graded_item("ch08.top_k_filter", points=2, make_cases=_top_k_cases, reference=top_k_filter_reference,
                    tolerance=EXACT,
                    hint="""Keep every score at least as large as the k-th largest of its row, ties
                            included, and set the others to -inf; k may exceed the vocabulary. See
                            "Top-k sampling" in Chapter 8."""),
        graded_item("ch08.top_p_filter", points=2, make_cases=_top_p_cases, reference=top_p_filter_reference,
                    tolerance=EXACT,
                    hint="""The nucleus is the smallest set of most probable tokens whose mass reaches p:
                            the token that carries the mass past p belongs to it; take probabilities from
                            the scores. See "Nucleus (top-p) sampling" in Chapter 8."""),
        graded_item("ch08.penalise_repeats", points=2, make_cases=_penalty_cases,
                    reference=penalise_repeats_reference, tolerance=FLOAT64_REORDERED,
                    hint="""The frequency penalty is paid once per occurrence, the presence penalty once per
                            token that occurred at all; each row has its own history. See "Penalties for
                            repetition" in Chapter 8."""),
        graded_item("ch08.beam_step", points=2, make_cases=_beam_cases, reference=beam_step_reference,
                    tolerance=FLOAT64_REORDERED,
                    hint="""A candidate's score is its parent's log-probability plus the token's; rank all
                            b x V candidates together, and recover the parent and token from the position
                            in the flattened array. See "Beam search" in Chapter 8."""),
        graded_item("ch08.tokens_to_keep", points=1, make_cases=_stopping_cases,
                    reference=tokens_to_keep_reference, tolerance=EXACT,
                    hint="""A stop string can be split across pieces: look for it in the text generated so
                            far, not in the newest piece alone, and never return more than max_tokens. See
                            "Stopping" in Chapter 8."""),
    ),
    reference_modules=("course_lib.decoding",),
)
