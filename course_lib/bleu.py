"""BLEU (Papineni et al., 2002), from its definition: how a translation is scored in Chapter 6.

For a corpus of candidate translations ``c`` with reference translations ``r``::

    p_n  = Σ_sentences Σ_{g ∈ n-grams(c)} min(count_c(g), max_r count_r(g))
           ─────────────────────────────────────────────────────────────────     clipped precision
                   Σ_sentences Σ_{g ∈ n-grams(c)} count_c(g)

    BP   = 1                    if L_c > L_r                                    brevity penalty
           exp(1 - L_r / L_c)   if L_c <= L_r   (candidate and reference lengths over the corpus)

    BLEU = BP · exp( (1/N) Σ_{n=1..N} log p_n )                                 N = 4 usually

Clipping stops a candidate from earning credit by repeating a correct word; the brevity penalty
stops it from earning credit by saying only the words it is sure of. With several references per
sentence, ``L_r`` counts the reference length closest to the candidate's (the shorter on a tie).

Scores are on sacrebleu's 0-100 scale, and equal ``sacrebleu.corpus_bleu`` on the same
already-tokenised text (``tokenize="none"``, ``smooth_method="none"`` or ``"exp"``).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from course_lib import checks

__all__ = ["BLEUScore", "SMOOTHINGS", "brevity_penalty", "clipped_matches", "corpus_bleu", "ngrams"]

SMOOTHINGS = ("none", "exp")


def ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    """The n-grams of ``tokens`` with their counts."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def clipped_matches(candidate: Sequence[str], references: Sequence[Sequence[str]], n: int) -> tuple[int, int]:
    """``(matches, total)`` for one sentence: each candidate n-gram counts at most as often as in one reference."""
    counts = ngrams(candidate, n)
    most_in_a_reference: Counter[tuple[str, ...]] = Counter()
    for reference in references:
        most_in_a_reference |= ngrams(reference, n)  # elementwise max
    matches = sum(min(count, most_in_a_reference[gram]) for gram, count in counts.items())
    return matches, sum(counts.values())


def brevity_penalty(candidate_length: int, reference_length: int) -> float:
    """``1`` if the candidates are longer than the references, else ``exp(1 - L_r/L_c)`` (0 for ``L_c = 0``)."""
    if candidate_length > reference_length:
        return 1.0
    return math.exp(1.0 - reference_length / candidate_length) if candidate_length > 0 else 0.0


def _closest_length(length: int, references: Sequence[Sequence[str]]) -> int:
    return min((abs(len(reference) - length), len(reference)) for reference in references)[1]


@dataclass(frozen=True)
class BLEUScore:
    """The score (0-100) and everything it is made of."""

    score: float
    precisions: tuple[float, ...]  # p_n in percent, n = 1..N (smoothed where smoothing applied)
    matches: tuple[int, ...]
    totals: tuple[int, ...]
    brevity_penalty: float
    candidate_length: int
    reference_length: int

    def __str__(self) -> str:
        precisions = "/".join(f"{p:.1f}" for p in self.precisions)
        return (f"BLEU = {self.score:.2f} {precisions} (BP = {self.brevity_penalty:.3f}, "
                f"L_c = {self.candidate_length}, L_r = {self.reference_length})")


def corpus_bleu(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]] | Sequence[Sequence[Sequence[str]]],
                *, max_n: int = 4, smoothing: str = "none") -> BLEUScore:
    """Corpus BLEU of tokenised ``candidates`` against ``references``.

    ``references[i]`` is one token list, or a list of token lists (several references for sentence
    ``i``). ``smoothing="none"`` is the definition (any ``p_n = 0`` makes BLEU 0); ``"exp"`` is
    sacrebleu's default: the k-th order with no match gets ``p_n = 1 / (2^k · total_n)``.
    """
    max_n = checks.positive_int("max_n", max_n)
    checks.one_of("smoothing", smoothing, SMOOTHINGS)
    candidates, reference_sets = _check_corpus(candidates, references)
    matches, totals = [0] * max_n, [0] * max_n
    candidate_length = reference_length = 0
    for candidate, reference_set in zip(candidates, reference_sets):
        candidate_length += len(candidate)
        reference_length += _closest_length(len(candidate), reference_set)
        for n in range(1, max_n + 1):
            m, t = clipped_matches(candidate, reference_set, n)
            matches[n - 1] += m
            totals[n - 1] += t
    bp = brevity_penalty(candidate_length, reference_length)
    precisions = _precisions(matches, totals, smoothing)
    if not any(matches) or any(p == 0 for p in precisions):
        score = 0.0
    else:
        score = bp * math.exp(sum(math.log(p) for p in precisions) / max_n)
    return BLEUScore(score, tuple(precisions), tuple(matches), tuple(totals), bp, candidate_length,
                     reference_length)


def _precisions(matches: list[int], totals: list[int], smoothing: str) -> list[float]:
    precisions, halvings = [], 1
    for m, t in zip(matches, totals):
        if t == 0:
            precisions.append(0.0)
        elif m == 0 and smoothing == "exp":
            halvings *= 2
            precisions.append(100.0 / (halvings * t))
        else:
            precisions.append(100.0 * m / t)
    return precisions


def _check_corpus(candidates, references) -> tuple[list[list[str]], list[list[list[str]]]]:
    if isinstance(candidates, str) or isinstance(references, str):
        raise checks.ArgumentError("candidates and references must be lists of token lists, not strings; "
                                   "tokenise first (e.g. text.split())")
    candidates, references = list(candidates), list(references)
    if len(candidates) != len(references):
        raise checks.ArgumentError(f"{len(candidates)} candidates but {len(references)} references: "
                                   "give one reference (or one list of references) per candidate")
    checked_candidates = [_tokens(candidate, f"candidate {i}") for i, candidate in enumerate(candidates)]
    reference_sets = []
    for i, reference in enumerate(references):
        reference = list(reference) if not isinstance(reference, str) else reference
        if isinstance(reference, str) or not reference:
            raise checks.ArgumentError(f"reference {i} must be a non-empty list of tokens or of token lists")
        several = not isinstance(reference[0], str)
        reference_sets.append([_tokens(r, f"reference {i}") for r in (reference if several else [reference])])
    return checked_candidates, reference_sets


def _tokens(tokens: object, what: str) -> list[str]:
    if isinstance(tokens, str) or not isinstance(tokens, Sequence) or not all(isinstance(t, str) for t in tokens):
        raise checks.ArgumentError(f"{what} must be a list of str tokens, got {type(tokens).__name__}")
    return list(tokens)
