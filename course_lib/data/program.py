"""Probabilistic programs with an exact log-probability: the machinery behind the generated corpora.

A *probabilistic program* writes a text token by token and makes every random decision by a
draw from an explicit finite distribution (:class:`Categorical`). The probability of one run is
the product of the probabilities of its decisions,

    log p(run) = sum_k log p(decision_k | earlier decisions).

When each text has exactly one run that writes it (one *derivation*), this is the probability of
the text. The programs of the course (the story grammar in :mod:`course_lib.data.stories`, the
source language of :mod:`course_lib.data.translation`) are built so, and tests check it with
the two searches here: :func:`enumerate_derivations` lists every run of a small program, and
:func:`find_derivations` parses a text back into every run that writes it.

A program is a function ``write(choose, out)`` that appends its tokens to ``out`` (through
``out.append``/``out.extend`` only) and makes each decision by ``choose(distribution)``, which
returns an option. The *chooser* decides how: :class:`SamplingChooser` draws from a seeded
generator and adds up log-probabilities (:func:`draw`); the searches replay every sequence of
decisions instead.

Because the probability is exact, the average of ``-log p`` over a sample, per predicted unit,
is the program's own cross-entropy: the *entropy floor* no language model can beat in
expectation (:func:`entropy_floor`).
"""
from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from course_lib.checks import ArgumentError, number, one_of
from course_lib.data.text import detokenize, word_tokenize

UNITS = ("token", "char")


# ---------------------------------------------------------------------------------------------
# Distributions
# ---------------------------------------------------------------------------------------------


class Categorical:
    """A finite distribution: ``options[i]`` with probability ``weights[i] / sum(weights)``.

    ``log_probs[i]`` is the exact natural log of that probability; weights must be positive
    (an option that can never be chosen does not belong in the list).
    """

    __slots__ = ("options", "weights", "cumulative", "total", "log_probs")

    def __init__(self, options: Sequence[Any], weights: Sequence[float] | None = None):
        options = tuple(options)
        if not options:
            raise ArgumentError("a Categorical needs at least one option")
        if weights is None:
            weights = (1.0,) * len(options)
        else:
            weights = tuple(number(f"weights[{i}]", w, above=0.0, what="a positive finite number")
                            for i, w in enumerate(weights))
        if len(weights) != len(options):
            raise ArgumentError(f"{len(options)} options but {len(weights)} weights; give one weight per option")
        self.options = options
        self.weights = weights
        self.cumulative = tuple(_running_sum(weights))
        self.total = self.cumulative[-1]
        log_total = math.log(self.total)
        self.log_probs = tuple(math.log(w) - log_total for w in weights)

    def __len__(self) -> int:
        return len(self.options)

    def __repr__(self) -> str:
        shown = ", ".join(f"{option!r}: {math.exp(lp):.3f}" for option, lp in zip(self.options[:5], self.log_probs))
        return f"Categorical({{{shown}{', ...' if len(self) > 5 else ''}}})"

    def without(self, excluded: object) -> Categorical:
        """The same distribution conditioned on not choosing ``excluded`` (renormalised)."""
        return self.restricted([option for option in self.options if option != excluded])

    def restricted(self, allowed: Sequence[Any]) -> Categorical:
        """The same distribution conditioned on the option being in ``allowed`` (renormalised)."""
        kept = [(option, w) for option, w in zip(self.options, self.weights) if option in allowed]
        if not kept:
            raise ArgumentError(f"none of {list(allowed)!r} is an option of this distribution")
        return Categorical([option for option, _ in kept], [w for _, w in kept])


def _running_sum(values: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def zipf_weights(n: int, exponent: float = 1.0) -> list[float]:
    """``1 / (rank + 1) ** exponent`` for ranks ``0 .. n - 1``: a few common words, a long tail."""
    return [1.0 / (rank + 1) ** exponent for rank in range(n)]


def zipf(options: Sequence[Any], exponent: float = 1.0) -> Categorical:
    """A Zipf-weighted distribution over ``options`` (listed most frequent first)."""
    return Categorical(options, zipf_weights(len(options), exponent))


def interleave(*groups: Sequence[Any]) -> list[Any]:
    """Ranks of several lists merged: the first of each, then the second of each, ...

    Zipf-weighting the merged list gives equal ranks equal weights across the lists.
    """
    merged: list[Any] = []
    for rank in range(max(len(group) for group in groups)):
        merged.extend(group[rank] for group in groups if rank < len(group))
    return merged


def optional(words: Sequence[str], none_weight: float) -> Categorical:
    """``None`` (leave the word out) with weight ``none_weight`` against the Zipf-weighted words."""
    weights = zipf_weights(len(words))
    total = sum(weights)
    return Categorical((None, *words), [none_weight * total] + weights)


# ---------------------------------------------------------------------------------------------
# Programs, choosers and sampling
# ---------------------------------------------------------------------------------------------

Choose = Callable[[Categorical], Any]
Write = Callable[[Choose, list], Any]  # write(choose, out): one run of a program


class SamplingChooser:
    """Draws each decision from a seeded ``random.Random`` and adds up the log-probabilities.

    ``choose`` is the chooser; ``logprob`` the sum so far; with ``record=True`` the indices of
    the chosen options are kept in ``decisions`` (what :func:`find_derivations` recovers from text).
    """

    def __init__(self, rng: random.Random, record: bool = False):
        self.rng = rng
        self.logprob = 0.0
        self.decisions: list[int] | None = [] if record else None

    def choose(self, distribution: Categorical) -> Any:
        # The same inverse-CDF draw as random.choices, without its per-call set-up.
        options = distribution.options
        index = bisect(distribution.cumulative, self.rng.random() * distribution.total, 0, len(options) - 1)
        self.logprob += distribution.log_probs[index]
        if self.decisions is not None:
            self.decisions.append(index)
        return options[index]


class Run(NamedTuple):
    """One run of a program: the tokens it wrote, their exact log-probability, and what it returned."""

    tokens: list[str]
    logprob: float
    value: Any  # what ``write`` returned, e.g. a syntax tree of the text


def draw(write: Write, rng: random.Random) -> Run:
    """One run of the program ``write``, sampled from ``rng``."""
    chooser = SamplingChooser(rng)
    out: list[str] = []
    value = write(chooser.choose, out)
    return Run(out, chooser.logprob, value)


def derive_seed(seed: int, *labels: object) -> int:
    """A seed for one named stream (a split, a probe distance), independent of the others."""
    digest = hashlib.sha256(":".join(map(str, ("lm-course", seed, *labels))).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class Sample:
    """One text written by a program and its exact probability under the program."""

    text: str  # tokens joined by :func:`detokenize`: single spaces, no newlines
    logprob: float  # natural log of the probability of this text

    @property
    def tokens(self) -> list[str]:
        """The text's word tokens (:func:`word_tokenize`), without an end-of-text token."""
        return word_tokenize(self.text)


# ---------------------------------------------------------------------------------------------
# Every derivation: brute-force enumeration and parsing by search
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Derivation:
    """One run of the program: its text, log-probability and the index chosen at each decision."""

    text: str
    logprob: float
    decisions: tuple[int, ...]


class _Branch(Exception):
    """Raised by the replaying chooser when it reaches a decision its path does not cover."""

    def __init__(self, distribution: Categorical):
        self.distribution = distribution


class _Mismatch(Exception):
    """Raised when the program writes a token that the target text does not have there."""


class _Complete(Exception):
    """Raised when the program has written the whole target and only its beginning was asked for."""


class _ReplayChooser:
    """Follows a fixed list of decision indices, then stops at the first new decision."""

    def __init__(self, path: tuple[int, ...]):
        self.path = path
        self.position = 0
        self.logprob = 0.0

    def choose(self, distribution: Categorical) -> Any:
        if self.position == len(self.path):
            raise _Branch(distribution)
        index = self.path[self.position]
        self.position += 1
        self.logprob += distribution.log_probs[index]
        return distribution.options[index]


class _TokensMatching(list):
    """A token list that only accepts the tokens of ``target``, in order."""

    def __init__(self, target: Sequence[str], prefix_only: bool):
        super().__init__()
        self.target = target
        self.prefix_only = prefix_only

    def append(self, token: str) -> None:
        if len(self) >= len(self.target) or self.target[len(self)] != token:
            raise _Mismatch
        super().append(token)
        if self.prefix_only and len(self) == len(self.target):
            raise _Complete

    def extend(self, tokens: Sequence[str]) -> None:
        for token in tokens:
            self.append(token)


def _search(
    write: Write, target: Sequence[str] | None, root: tuple[int, ...] = (), prefix_only: bool = False,
    reach: list[int] | None = None,
) -> Iterator[Derivation]:
    """Depth-first over decision sequences below ``root``, re-running the program once per node of the tree.

    With a ``target``, branches that write anything else are abandoned; with ``prefix_only``, a
    run stops with success as soon as the whole target is written. ``reach``, a one-element list,
    is raised to the largest number of target tokens any run wrote.
    """
    stack: list[tuple[int, ...]] = [tuple(root)]
    while stack:
        path = stack.pop()
        chooser = _ReplayChooser(path)
        out: list[str] = [] if target is None else _TokensMatching(target, prefix_only)
        try:
            write(chooser.choose, out)
        except _Branch as branch:
            stack.extend(path + (index,) for index in reversed(range(len(branch.distribution))))
            continue
        except _Mismatch:
            continue
        except _Complete:
            pass
        else:
            if target is not None and (prefix_only or len(out) != len(target)):
                continue
        finally:
            if reach is not None:
                reach[0] = max(reach[0], len(out))
        if chooser.position < len(path):
            raise ArgumentError(f"the decision prefix {root} is longer than the text it leads to")
        yield Derivation(detokenize(out), chooser.logprob, path)


def enumerate_derivations(write: Write, prefix: Sequence[int] = ()) -> Iterator[Derivation]:
    """Every derivation of the program ``write``, by brute force: only for tiny programs.

    With ``prefix``, only the derivations whose first decisions are these option indices (a
    subtree; its probabilities add up to the probability of the prefix).
    """
    return _search(write, None, tuple(prefix))


def find_derivations(write: Write, tokens: Sequence[str]) -> list[Derivation]:
    """Every derivation of the program ``write`` that writes exactly ``tokens`` (parsing by search).

    The search follows the program and abandons a branch as soon as it writes a token that
    ``tokens`` does not have there. For a text the program cannot write the list is empty; for a
    program with one derivation per text it has at most one element.
    """
    return list(_search(write, list(tokens)))


def replay(write: Write, decisions: Sequence[int]) -> Run:
    """The run of the program ``write`` that makes ``decisions`` (option indices, as in a :class:`Derivation`)."""
    chooser = _ReplayChooser(tuple(decisions))
    out: list[str] = []
    try:
        value = write(chooser.choose, out)
    except _Branch:
        raise ArgumentError(f"the decisions {tuple(decisions)} stop before the program has finished") from None
    if chooser.position < len(decisions):
        raise ArgumentError(f"the decisions {tuple(decisions)} are more than the program makes")
    return Run(out, chooser.logprob, value)


def text_logprob(write: Write, tokens: Sequence[str]) -> float:
    """The exact natural-log probability that the program writes ``tokens`` (``-inf`` if it cannot)."""
    return log_total(find_derivations(write, tokens))


def prefix_logprob_of(write: Write, tokens: Sequence[str]) -> float:
    """The log-probability that the program's tokens begin with ``tokens`` (0 for no tokens).

    The program's own next-token distribution follows from it:
    ``p(w | prefix) = exp(prefix_logprob_of(write, prefix + [w]) - prefix_logprob_of(write, prefix))``.
    """
    tokens = list(tokens)
    if not tokens:
        return 0.0
    return log_total(list(_search(write, tokens, prefix_only=True)))


def longest_possible_prefix(write: Write, tokens: Sequence[str]) -> int:
    """The length of the longest beginning of ``tokens`` that some run of the program writes
    (``len(tokens)`` when the program can begin with all of them): one search, which follows
    every run as far as it agrees with ``tokens``."""
    tokens = list(tokens)
    reach = [0]
    for _ in _search(write, tokens, prefix_only=True, reach=reach):
        return len(tokens)
    return reach[0]


def log_total(found: Sequence[Derivation]) -> float:
    """``log(sum(exp(d.logprob)))`` over the derivations, computed stably; ``-inf`` for none."""
    if not found:
        return -math.inf
    top = max(d.logprob for d in found)
    return top + math.log(math.fsum(math.exp(d.logprob - top) for d in found))


# ---------------------------------------------------------------------------------------------
# The entropy floor
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntropyFloor:
    """The generator's cross-entropy on a set of texts: the best any model can do on average.

    ``nats`` per unit; ``bits = nats / ln 2``; ``perplexity = exp(nats)``; ``units`` is the
    number of predicted units it was averaged over.
    """

    nats: float
    unit: str
    units: int

    @property
    def bits(self) -> float:
        return self.nats / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats)

    def __str__(self) -> str:
        return f"{self.nats:.4f} nats/{self.unit} = {self.bits:.4f} bits/{self.unit} (perplexity {self.perplexity:.3f})"


def predicted_units(sample: Sample | str, unit: str = "token") -> int:
    """How many units a language model predicts for one text: its tokens plus the end of the text.

    ``unit="token"``: ``len(word_tokenize(text)) + 1``; ``unit="char"``: ``len(text) + 1``.
    The ``+ 1`` is the end-of-text symbol (``</s>``, or the newline that separates texts),
    which the model must predict too and whose probability the generator includes.
    ``sample`` is a text or anything with a ``.text`` (a :class:`Sample`, a story).
    """
    one_of("unit", unit, UNITS)
    text = sample if isinstance(sample, str) else sample.text
    return len(word_tokenize(text)) + 1 if unit == "token" else len(text) + 1


def entropy_floor(samples: Sequence[Sample] | Sample, unit: str = "token") -> EntropyFloor:
    """The generator's cross-entropy on ``samples``, per predicted unit: ``-sum(logprob) / units``.

    ``samples`` are texts with their exact log-probability (anything with ``.text`` and
    ``.logprob``: a :class:`Sample`, a story). Units are counted by :func:`predicted_units`:
    each text contributes ``len(word_tokenize(text)) + 1`` word tokens, or ``len(text) + 1``
    characters, the ``+ 1`` being the end of the text. A model evaluated the same way (one text
    at a time, the end included) has a cross-entropy at least this large in expectation; in bits
    divide by ``ln 2`` (``.bits``).
    """
    one_of("unit", unit, UNITS)
    if isinstance(samples, Sample):
        samples = [samples]
    if not samples:
        raise ArgumentError("entropy_floor needs at least one text with its log-probability")
    units = sum(predicted_units(sample, unit) for sample in samples)
    return EntropyFloor(-math.fsum(sample.logprob for sample in samples) / units, unit, units)
