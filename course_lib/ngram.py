"""N-gram language models: Chapter 1's equations, as code.

The chain rule writes the probability of a sequence as a product of next-token probabilities,

    P(w_1 ... w_T </s>) = prod_t P(w_t | w_1 ... w_{t-1}),

and an order-n model makes the Markov assumption that only the last n-1 tokens matter:
P(w_t | h) with the context h = w_{t-n+1} ... w_{t-1}. Everything below estimates that one
conditional distribution from counts c(h, w):

=================  ==========================================================================
``"mle"``          P_MLE(w | h) = c(h, w) / c(h),  with c(h) = sum_w' c(h, w')
``"laplace"``      (c(h, w) + 1) / (c(h) + |V|)
``"add_k"``        (c(h, w) + k) / (c(h) + k |V|)           (NLTK calls it Lidstone, k "gamma")
``"interpolated"`` sum_m lambda_m P_MLE(w | last m-1 tokens of h) + lambda_0 / |V|
``"kneser_ney"``   interpolated Kneser-Ney with absolute discount d and continuation counts
=================  ==========================================================================

Conventions the rest of the course relies on
--------------------------------------------
* **Padding.** A sequence of an order-n model is padded with n-1 ``"<s>"`` on the left and ONE
  ``"</s>"`` on the right (:func:`pad_sequence`). The model predicts every real token and the
  final ``"</s>"``, so it is a proper distribution over finite sequences; ``"<s>"`` is never
  predicted. Sequences given to the model must not contain ``"<s>"`` or ``"</s>"`` themselves.
* **Counts.** c(.) counts n-grams *at predicted positions*: the n-gram ending at each predicted
  token and, for the lower orders, its suffixes. So the m-gram counts of an order-n model are
  exactly ``count_ngrams(sequences, m)`` for every m <= n (rare words mapped to ``"<unk>"``),
  and ``"<s>"`` is never counted as a predicted word at any order. (NLTK's
  ``padded_everygram_pipeline`` also counts the all-``"<s>"`` k-grams at the start of each
  sentence; with those its Kneser-Ney sums to more than 1 after ``"<s>" "<s>"``.)
* **Vocabulary.** V = the training tokens seen at least ``unk_cutoff`` times, plus ``"<unk>"``,
  ``"<s>"`` and ``"</s>"`` (always, whatever the cutoff); |V| counts all of them. This is NLTK's
  choice when its vocabulary is built from the padded text (``"<s>"`` and ``"</s>"`` are in that
  text, and ``<UNK>`` is always added). Every other token maps to ``"<unk>"``, at fit and at
  scoring time; a literal ``"<unk>"`` in the data is that same symbol. Because ``"<s>"`` is in V,
  smoothing that spreads mass over V (add-k, the uniform term) gives it a sliver although no
  real sequence ever contains it: the next-token distribution sums to 1 over V, as NLTK's does.

Speed: tokens become integer ids, and the counts live in :mod:`course_lib.ngram_counts`, an
engine of packed int64 keys and look-up tables, so ``fit``, ``sequence_logprob``,
``cross_entropy`` and ``perplexity`` handle whole arrays of positions at once. ``prob`` runs the
same code on a single position, so the two can never disagree. ``benchmarks/bench_ngram.py``
times it against NLTK.

The model also speaks the course's :mod:`~course_lib.language_model` protocol over the ids of its
vocabulary (``encode``/``decode``), and saves its counts as integer arrays (``save``/``load``).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from course_lib.checkpoint import load_arrays, save_arrays
from course_lib.checks import ArgumentError, finite_number, integer, non_negative_int, number
from course_lib.language_model import WindowLanguageModel, sample
from course_lib.ngram_counts import CountLookup, NGramCounts

__all__ = [
    "BOS", "EOS", "UNK", "SMOOTHINGS", "NGramLM", "pad_sequence", "count_ngrams", "mle_probability",
    "add_k_probability", "perplexity_from_logprobs", "continuation_probability", "HeldOutCount", "held_out_counts",
]

BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"
SMOOTHINGS = ("mle", "laplace", "add_k", "interpolated", "kneser_ney")

# Ids of the special symbols; the kept words follow in sorted order.
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIALS = (UNK, BOS, EOS)


# --------------------------------------------------------------------------------------------
# Input checks shared by the functions and the model
# --------------------------------------------------------------------------------------------

def _check_order(n: object, name: str = "n") -> int:
    return integer(name, n, minimum=1, what="an integer >= 1 (1 = unigram, 2 = bigram, ...)")


def _check_tokens(tokens: object, what: str = "tokens") -> list[str]:
    if isinstance(tokens, str):
        raise TypeError(f"{what} must be a sequence of string tokens, not one str; split it first, "
                        f"e.g. {tokens.split()[:3]!r}")
    try:
        tokens = list(tokens)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be a sequence of string tokens, got {type(tokens).__name__}") from None
    for token in tokens:
        if not isinstance(token, str):
            raise TypeError(f"{what} must contain only str tokens, got {type(token).__name__} {token!r}")
    return tokens


def _check_k(k: object, allow_zero: bool) -> float:
    k = finite_number("k", k)
    if k < 0 or (k == 0 and not allow_zero):
        raise ValueError(f"k must be {'>= 0' if allow_zero else '> 0'}, got {k}"
                         + ("" if allow_zero else " (k = 0 is smoothing='mle')"))
    return float(k)


def _check_ngram_counts(ngram_counts: object, length: int | None = None) -> dict[tuple[str, ...], int]:
    """Every key a tuple of one common length, every value a non-negative integer count."""
    if not isinstance(ngram_counts, Mapping):
        raise TypeError(f"ngram_counts must be a dict {{(w1, ..., wn): count}}, got {type(ngram_counts).__name__}")
    for gram, count in ngram_counts.items():
        if not isinstance(gram, tuple):
            raise ValueError(f"ngram_counts keys must be tuples of tokens, got {type(gram).__name__} {gram!r}; "
                             "use tuple(ngram) as the key")
        if length is None:
            length = len(gram)
        if len(gram) != length:
            raise ValueError(f"ngram_counts mixes n-gram lengths ({length} and {len(gram)}, key {gram!r}); "
                             "keep one dict per order")
        integer(f"ngram_counts[{gram!r}]", count, minimum=0, what="a non-negative integer count")
    return ngram_counts  # type: ignore[return-value]


def _check_ngram(ngram: object, ngram_counts: Mapping) -> tuple[str, ...]:
    if isinstance(ngram, str) or not isinstance(ngram, (tuple, list)):
        raise TypeError(f"ngram must be a tuple of tokens (*h, w), got {type(ngram).__name__} {ngram!r}")
    ngram = tuple(ngram)
    if len(ngram) == 0:
        raise ValueError("ngram must hold at least the word w; got an empty tuple")
    _check_ngram_counts(ngram_counts, length=len(ngram))
    return ngram


# --------------------------------------------------------------------------------------------
# The small reference functions of Chapter 1 (the exercises are graded against these)
# --------------------------------------------------------------------------------------------

def pad_sequence(tokens: Sequence[str], n: int) -> list[str]:
    """n-1 ``"<s>"`` on the left, one ``"</s>"`` on the right.

    >>> pad_sequence(["the", "cat"], 3)
    ['<s>', '<s>', 'the', 'cat', '</s>']
    """
    n = _check_order(n)
    return [BOS] * (n - 1) + _check_tokens(tokens) + [EOS]


def count_ngrams(sequences: list[list[str]], n: int) -> dict[tuple[str, ...], int]:
    """c(w_1 ... w_n): how often each n-gram occurs in the padded sequences.

    >>> count_ngrams([["a", "b"]], 2)
    {('<s>', 'a'): 1, ('a', 'b'): 1, ('b', '</s>'): 1}
    """
    n = _check_order(n)
    if isinstance(sequences, str):
        raise TypeError("sequences must be a list of token lists, not one str")
    counts: Counter[tuple[str, ...]] = Counter()
    for tokens in sequences:
        padded = pad_sequence(tokens, n)
        counts.update(tuple(padded[i:i + n]) for i in range(len(padded) - n + 1))
    return dict(counts)


def _context_count(context: tuple[str, ...], ngram_counts: Mapping[tuple[str, ...], int]) -> int:
    """c(h) = sum_w' c(h, w'): the n-grams that start with the context h."""
    return sum(count for gram, count in ngram_counts.items() if gram[:-1] == context)


def mle_probability(ngram: tuple[str, ...], ngram_counts: dict[tuple[str, ...], int]) -> float:
    """P_MLE(w | h) = c(h, w) / sum_w' c(h, w') for ``ngram = (*h, w)``.

    Raises ValueError when the context h never occurs: the estimate is 0/0 there.
    """
    ngram = _check_ngram(ngram, ngram_counts)
    context = ngram[:-1]
    c_h = _context_count(context, ngram_counts)
    if c_h == 0:
        raise ValueError(f"the context {context!r} never occurs in ngram_counts, so P_MLE is 0/0 there; "
                         "smoothing (add-k, interpolation, Kneser-Ney) gives it a value")
    return ngram_counts.get(ngram, 0) / c_h


def add_k_probability(ngram: tuple[str, ...], ngram_counts: dict[tuple[str, ...], int],
                      vocab_size: int, k: float = 1.0) -> float:
    """P_add-k(w | h) = (c(h, w) + k) / (sum_w' c(h, w') + k |V|); k = 1 is Laplace smoothing.

    An unseen context gets the uniform 1/|V| (for k > 0); with k = 0 it is 0/0 and raises.
    """
    ngram = _check_ngram(ngram, ngram_counts)
    integer("vocab_size", vocab_size, minimum=1, what="a positive integer |V|")
    k = _check_k(k, allow_zero=True)
    c_h = _context_count(ngram[:-1], ngram_counts)
    denominator = c_h + k * vocab_size
    if denominator == 0:
        raise ValueError(f"the context {ngram[:-1]!r} never occurs and k = 0, so the estimate is 0/0; use k > 0")
    return (ngram_counts.get(ngram, 0) + k) / denominator


def perplexity_from_logprobs(logprobs: Iterable[float]) -> float:
    """exp(-mean(logprobs)): natural logs, one entry per predicted token.

    A token of probability 0 (logprob ``-inf``) makes the perplexity ``+inf``: the model
    says the text is impossible. Empty input, NaN and ``+inf`` raise ValueError.
    """
    if isinstance(logprobs, (str, bytes)):
        raise TypeError("logprobs must be a sequence of numbers, not a str")
    try:
        values = np.asarray(list(logprobs) if not isinstance(logprobs, np.ndarray) else logprobs, dtype=float)
    except (TypeError, ValueError):
        raise TypeError("logprobs must be a sequence of numbers (natural-log probabilities)") from None
    if values.ndim != 1:
        raise ValueError(f"logprobs must be one-dimensional (one entry per token), got shape {values.shape}")
    if values.size == 0:
        raise ValueError("perplexity of no tokens is undefined: logprobs is empty")
    if np.isnan(values).any() or np.isposinf(values).any():
        raise ValueError("logprobs contains NaN or +inf; log-probabilities are finite numbers <= 0 or -inf")
    if np.isneginf(values).any():
        return math.inf
    return math.exp(-math.fsum(values.tolist()) / values.size)


def continuation_probability(bigram_counts: dict[tuple[str, str], int]) -> dict[str, float]:
    """Kneser-Ney's P_cont(w) = |{v : c(v, w) > 0}| / |{(v, w') : c(v, w') > 0}|.

    How many distinct words w follows, over the number of distinct bigram types: "Francisco"
    is frequent but follows only "San", so its continuation probability is small.
    Returns one entry per word that ends some bigram of positive count.
    """
    _check_ngram_counts(bigram_counts, length=2)
    # N1+(. w): each key (v, w) is one distinct predecessor v of w
    distinct_predecessors: Counter[str] = Counter(w for (_, w), count in bigram_counts.items() if count > 0)
    bigram_types = sum(distinct_predecessors.values())
    if bigram_types == 0:
        raise ValueError("bigram_counts has no bigram with a positive count; P_cont is undefined")
    return {w: n_w / bigram_types for w, n_w in distinct_predecessors.items()}


class HeldOutCount(NamedTuple):
    """The n-grams seen ``count`` times in one half: how many, and how often they occur in the other."""

    count: int  # c, the count in the training half
    ngrams: int  # how many n-gram types have that count there
    held_out_mean: float  # their mean count in the held-out half
    discount: float  # c - held_out_mean: what absolute discounting subtracts


def held_out_counts(train: list[list[str]], held_out: list[list[str]], n: int = 2,
                    max_count: int = 9) -> list[HeldOutCount]:
    """Church and Gale's table: for c = 1 .. ``max_count``, the n-grams seen c times in ``train``
    and their mean count in ``held_out`` (two halves of the same size, so the counts compare).

        held_out_mean(c) = sum_{g : c_train(g) = c} c_held_out(g) / |{g : c_train(g) = c}|

    Counts are :func:`count_ngrams`' (padded sequences). Where the held-out mean is about c - d
    for every c, absolute discounting with discount d is what the data ask for. A count with no
    n-gram is left out of the table.
    """
    n = _check_order(n)
    max_count = integer("max_count", max_count, minimum=1)
    train_counts, later = count_ngrams(train, n), count_ngrams(held_out, n)
    types, totals = Counter(), Counter()  # per training count c: n-gram types, their held-out total
    for gram, c in train_counts.items():
        if c <= max_count:
            types[c] += 1
            totals[c] += later.get(gram, 0)
    rows = []
    for c in sorted(types):
        mean = totals[c] / types[c]
        rows.append(HeldOutCount(c, types[c], mean, c - mean))
    return rows


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------

class _TokenIds(dict):
    """token -> id, with every token outside V mapped to the id of "<unk>"."""

    def __missing__(self, token: str) -> int:
        if not isinstance(token, str):
            raise TypeError(f"tokens must be str, got {type(token).__name__} {token!r}")
        return UNK_ID


class NGramLM(WindowLanguageModel):
    """An order-n language model P(w | h) with one of the smoothings in ``SMOOTHINGS``.

    Two views of the same model: strings (``prob``, ``cross_entropy``, ``generate``, ...), and ids
    of its vocabulary (``encode``/``decode``) through the course's
    :class:`~course_lib.language_model.LanguageModel` protocol, whose state is the last n-1 ids
    and whose first input is ``"<s>"`` (id ``BOS_ID``).

    Parameters
    ----------
    order : n (1 = unigram, 2 = bigram, ...).
    smoothing : ``"mle"``, ``"laplace"``, ``"add_k"``, ``"interpolated"`` or ``"kneser_ney"``.
    k : the pseudo-count of ``"add_k"`` (> 0). ``"laplace"`` is k = 1.
    discount : Kneser-Ney's absolute discount d, 0 <= d <= 1 (0.75 is the textbook value;
        NLTK's ``KneserNeyInterpolated`` defaults to 0.1).
    lambdas : ``"interpolated"`` weights (lambda_n, ..., lambda_1, lambda_0): lambda_m weighs the
        MLE of order m and lambda_0 the uniform 1/|V|. n+1 non-negative numbers summing to 1,
        lambda_0 > 0 so that no word gets probability 0. Default: lambda_0 = 0.01 and the rest
        split in proportion 2^m, so higher orders weigh more (n = 3: 0.566, 0.283, 0.141, 0.01).
    unk_cutoff : tokens seen fewer times than this in training become ``"<unk>"``.
    interpolate_uniform : Kneser-Ney only. True (default): the recursion ends, as in Chen &
        Goodman (1998) and Jurafsky & Martin (ch. 3), with the discounted unigram level
        interpolated with the uniform 1/|V|,
        so every word of V gets probability > 0, and order 1 is defined. False: it ends with the
        bare continuation probability P_cont(w), exactly as NLTK's ``KneserNeyInterpolated``; a
        word never seen as a continuation (often ``"<unk>"``) then gets probability 0, and
        order 1 has no lower order to end with, so it is refused (NLTK divides by zero there).

    Contexts
    --------
    ``prob(w, context)`` uses the last n-1 tokens of ``context``; a shorter context is
    left-padded with ``"<s>"``, and unknown tokens become ``"<unk>"``. A context never seen in
    training is handled by each smoothing's formula: add-k gives 1/|V|; interpolation and
    Kneser-Ney drop the orders whose context is unseen (Kneser-Ney: alpha = 0, gamma = 1, as
    NLTK); MLE is 0/0 there and, like NLTK's ``MLE.score``, ``prob`` returns 0 for every word,
    while ``next_token_distribution`` and ``generate`` raise.

    Unseen n-grams under MLE give probability 0, so ``cross_entropy`` and ``perplexity`` return
    ``inf`` (the model calls the text impossible); use a smoothing to get a finite value.
    """

    def __init__(self, order: int, smoothing: str = "mle", *, k: float = 1.0, discount: float = 0.75,
                 lambdas: Sequence[float] | None = None, unk_cutoff: int = 1,
                 interpolate_uniform: bool = True):
        self._order = _check_order(order, "order")
        if not isinstance(smoothing, str) or smoothing not in SMOOTHINGS:
            raise ArgumentError(f"unknown smoothing {smoothing!r}; choose one of {', '.join(SMOOTHINGS)}")
        self._smoothing = smoothing
        self._k = _check_k(k, allow_zero=False)
        if smoothing == "laplace" and self._k != 1.0:
            raise ValueError(f"'laplace' is add-k with k = 1; for k = {k} use smoothing='add_k'")
        self._discount = number("discount d", discount, minimum=0.0, maximum=1.0,
                                what="a number in [0, 1] (so each distribution sums to 1)")
        self._lambdas = self._check_lambdas(lambdas)
        self._unk_cutoff = integer("unk_cutoff", unk_cutoff, minimum=1)
        if not isinstance(interpolate_uniform, bool):
            raise TypeError(f"interpolate_uniform must be True or False, got {interpolate_uniform!r}")
        if smoothing == "kneser_ney" and not interpolate_uniform and self._order == 1:
            raise ValueError("order-1 Kneser-Ney needs interpolate_uniform=True: without the uniform "
                             "distribution there is no lower order to interpolate with")
        self._interpolate_uniform = interpolate_uniform
        self._vocabulary: tuple[str, ...] | None = None

    def _check_lambdas(self, lambdas: Sequence[float] | None) -> tuple[float, ...]:
        n = self._order
        if lambdas is None:
            weights = [2.0 ** m for m in range(n, 0, -1)]
            return tuple(0.99 * w / sum(weights) for w in weights) + (0.01,)
        if isinstance(lambdas, (str, bytes)) or not isinstance(lambdas, Iterable):
            raise TypeError(f"lambdas must be a sequence of {n + 1} numbers, got {type(lambdas).__name__}")
        values = tuple(lambdas)
        if len(values) != n + 1:
            raise ValueError(f"lambdas must have order + 1 = {n + 1} entries (lambda_{n}, ..., lambda_1 for the "
                             f"MLE orders, then lambda_0 for the uniform 1/|V|), got {len(values)}")
        for value in values:
            number("each of the lambdas", value, minimum=0.0, what="a finite non-negative number")
        if abs(math.fsum(values) - 1.0) > 1e-9:
            raise ValueError(f"lambdas must sum to 1, got sum {math.fsum(values)!r} for {values!r}")
        if values[-1] <= 0:
            raise ValueError("lambda_0 (the last entry, weight of the uniform 1/|V|) must be > 0, "
                             "or unseen words get probability 0")
        return tuple(float(v) for v in values)

    # ---- read-only properties ----------------------------------------------------------------

    @property
    def order(self) -> int:
        """n."""
        return self._order

    @property
    def smoothing(self) -> str:
        return self._smoothing

    @property
    def k(self) -> float:
        return self._k

    @property
    def discount(self) -> float:
        """Kneser-Ney's d."""
        return self._discount

    @property
    def lambdas(self) -> tuple[float, ...]:
        """(lambda_n, ..., lambda_1, lambda_0) of ``"interpolated"``."""
        return self._lambdas

    @property
    def unk_cutoff(self) -> int:
        return self._unk_cutoff

    @property
    def interpolate_uniform(self) -> bool:
        return self._interpolate_uniform

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """V in id order: ``"<unk>"``, ``"<s>"``, ``"</s>"``, then the kept words sorted."""
        self._require_fitted()
        assert self._vocabulary is not None
        return self._vocabulary

    @property
    def vocab_size(self) -> int:
        """|V|, the three special symbols included."""
        return len(self.vocabulary)

    def __repr__(self) -> str:
        state = f"|V|={len(self._vocabulary)}" if self._vocabulary is not None else "not fitted"
        return f"NGramLM(order={self._order}, smoothing={self._smoothing!r}, {state})"

    def _require_fitted(self) -> None:
        if self._vocabulary is None:
            raise ValueError("this NGramLM is not fitted yet: call .fit(sequences) first")

    # ---- from tokens to windows of ids ---------------------------------------------------------

    def _token_ids(self, sequences: object, what: str) -> tuple[np.ndarray, np.ndarray]:
        """Ids of all tokens, concatenated, and each sequence's length. Shapes: (tokens,), (sequences,)."""
        if isinstance(sequences, str) or not isinstance(sequences, Iterable):
            raise TypeError(f"{what} must be an iterable of token sequences (lists of str), "
                            f"got {type(sequences).__name__}")
        sequence_list = []
        for tokens in sequences:
            if isinstance(tokens, str):
                raise TypeError(f"each sequence in {what} must be a list of tokens, not a str ({tokens[:30]!r}); "
                                "tokenize it first")
            if not isinstance(tokens, (list, tuple)):
                tokens = _check_tokens(tokens, f"each sequence in {what}")
            sequence_list.append(tokens)
        if not sequence_list:
            raise ValueError(f"{what} is empty: give at least one sequence")
        lengths = np.fromiter((len(tokens) for tokens in sequence_list), dtype=np.int64, count=len(sequence_list))
        flat = list(chain.from_iterable(sequence_list))
        try:
            ids = np.fromiter(map(self._index.__getitem__, flat), dtype=np.int64, count=len(flat))
        except TypeError:
            bad = next(token for token in flat if not isinstance(token, str))
            raise TypeError(f"tokens must be str, got {type(bad).__name__} {bad!r}") from None
        if np.any((ids == BOS_ID) | (ids == EOS_ID)):
            raise ValueError(f"{what} must not contain '{BOS}' or '{EOS}': the model adds that padding itself")
        return ids, lengths

    def _windows(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The order-n window of ids ending at every predicted position: (positions, n).

        Each sequence is padded (n-1 <s>, tokens, </s>); its L+1 predicted positions are the
        tokens and the </s>. A window's last column is the predicted word w, the others its
        context h.
        """
        n = self._order
        padded_lengths = lengths + n
        starts = np.concatenate(([0], np.cumsum(padded_lengths)[:-1]))
        stream = np.full(int(padded_lengths.sum()), BOS_ID, dtype=np.int64)
        predicted_per_sequence = lengths + 1
        sequence_of = np.repeat(np.arange(lengths.size), predicted_per_sequence)
        offset_in_sequence = np.arange(sequence_of.size) - np.repeat(
            np.cumsum(predicted_per_sequence) - predicted_per_sequence, predicted_per_sequence)
        predicted = starts[sequence_of] + (n - 1) + offset_in_sequence
        is_end = offset_in_sequence == lengths[sequence_of]
        stream[predicted[~is_end]] = ids
        stream[predicted[is_end]] = EOS_ID
        return stream[predicted[:, None] + np.arange(1 - n, 1)]

    def _context_ids(self, context: object) -> np.ndarray:
        """Ids of the last n-1 tokens of ``context``, left-padded with <s>. Shape (n-1,)."""
        tokens = _check_tokens(context, "context")
        ids = [self._index[token] for token in tokens]
        width = self._order - 1
        ids = ([BOS_ID] * width + ids)[len(ids):] if width else []
        return np.asarray(ids, dtype=np.int64)

    # ---- fit -------------------------------------------------------------------------------------

    def fit(self, sequences: Iterable[Sequence[str]]) -> "NGramLM":
        """Build V and count every order 1..n at the predicted positions. Refitting starts afresh."""
        if isinstance(sequences, str) or not isinstance(sequences, Iterable):
            raise TypeError(f"sequences must be an iterable of token lists, got {type(sequences).__name__}")
        sequences = [tokens if isinstance(tokens, (list, tuple))
                     else _check_tokens(tokens, "each training sequence") for tokens in sequences]
        if not sequences:
            raise ValueError("cannot fit on an empty list of sequences")
        try:
            word_counts = Counter(chain.from_iterable(sequences))
        except TypeError:
            for tokens in sequences:
                _check_tokens(tokens, "each training sequence")  # names the token that is not a str
            raise
        for token in word_counts:
            if not isinstance(token, str):
                raise TypeError(f"tokens must be str, got {type(token).__name__} {token!r}")
            if token in (BOS, EOS):
                raise ValueError(f"training sequences must not contain '{BOS}' or '{EOS}': "
                                 "the model adds that padding itself")
        kept = sorted(w for w, c in word_counts.items() if c >= self._unk_cutoff and w not in SPECIALS)
        vocabulary = SPECIALS + tuple(kept)
        self._vocabulary = None  # not fitted until the counts are in place
        self._index = _TokenIds((token, i) for i, token in enumerate(vocabulary))
        ids, lengths = self._token_ids(sequences, "sequences")
        self._counts = NGramCounts(self._windows(ids, lengths), len(vocabulary))
        self._vocabulary = vocabulary
        return self

    # ---- scoring whole arrays of positions ------------------------------------------------------

    def _probabilities(self, windows: np.ndarray) -> np.ndarray:
        """P(w | h) for every window (positions, n) -> (positions,)."""
        at = self._counts.lookup(windows)
        V, size = len(self._vocabulary), windows.shape[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            if self._smoothing == "mle":
                return self._mle(at)
            if self._smoothing in ("laplace", "add_k"):
                return self._add_k(at, V)
            if self._smoothing == "interpolated":
                return self._interpolated(at, V, size)
            return self._kneser_ney(at, V, size)

    def _mle(self, at: CountLookup) -> np.ndarray:
        n, level = self._order, self._counts.levels[self._order]
        c_hw, c_h = at.ngram(n, level.ngram_counts), at.context(n, level.context_total)
        return np.where(c_h > 0, c_hw / c_h, 0.0)  # 0/0 in an unseen context: 0, as NLTK

    def _add_k(self, at: CountLookup, V: int) -> np.ndarray:
        n, level, k = self._order, self._counts.levels[self._order], self._k
        c_hw, c_h = at.ngram(n, level.ngram_counts), at.context(n, level.context_total)
        return (c_hw + k) / (c_h + V * k)

    def _interpolated(self, at: CountLookup, V: int, size: int) -> np.ndarray:
        """sum over the orders m whose context was seen of lambda_m P_MLE, plus lambda_0 / |V|,
        over the sum of the lambdas used (an unseen context's weight is shared out pro rata)."""
        n = self._order
        lambda_0 = self._lambdas[n]
        numerator = np.full(size, lambda_0 / V)
        weight = np.full(size, lambda_0)
        for m in range(1, n + 1):
            lambda_m = self._lambdas[n - m]
            level = self._counts.levels[m]
            c_hw, c_h = at.ngram(m, level.ngram_counts), at.context(m, level.context_total)
            seen = c_h > 0
            numerator += np.where(seen, lambda_m * (c_hw / np.where(seen, c_h, 1.0)), 0.0)
            weight += np.where(seen, lambda_m, 0.0)
        return numerator / weight

    def _kneser_ney(self, at: CountLookup, V: int, size: int) -> np.ndarray:
        """Interpolated Kneser-Ney, from the unigram level up to order n:

            P_KN(w | h) = max(c_KN(h, w) - d, 0) / sum_w' c_KN(h, w')  +  gamma(h) P_KN(w | h'),
            gamma(h)    = d |{w : c(h, w) > 0}| / sum_w' c_KN(h, w'),

        where h' drops the oldest token of h, c_KN is the count c at order n and the continuation
        count N1+(. h w) below it, and an unseen context passes P_KN(w | h') through unchanged
        (alpha = 0, gamma = 1). The recursion ends with 1/|V| (``interpolate_uniform``) or, as in
        NLTK, with P_cont(w) = N1+(. w) / N1+(. .) itself.
        """
        n, d = self._order, self._discount
        p = np.full(size, 1.0 / V)
        for j in range(1, n + 1):
            level = self._counts.levels[j]
            if j == n:
                c_kn, total = at.ngram(j, level.ngram_counts), at.context(j, level.context_total)
            else:
                c_kn, total = at.ngram(j, level.continuation_counts), at.context(j, level.continuation_total)
            if j == 1 and not self._interpolate_uniform:
                p = c_kn / total  # NLTK's unigram_score: the bare continuation probability
                continue
            types = at.context(j, level.context_types)
            alpha = np.maximum(c_kn - d, 0.0) / total
            gamma = d * types / total
            p = np.where(total > 0, alpha + gamma * p, p)
        return p

    # ---- the public API --------------------------------------------------------------------------

    def prob(self, word: str, context: Sequence[str] = ()) -> float:
        """P(word | last n-1 tokens of context); unknown tokens count as ``"<unk>"``."""
        self._require_fitted()
        if not isinstance(word, str):
            raise TypeError(f"word must be a str token, got {type(word).__name__} {word!r}")
        window = np.append(self._context_ids(context), self._index[word])
        return float(self._probabilities(window[None, :])[0])

    def logprob(self, word: str, context: Sequence[str] = ()) -> float:
        """ln P(word | context); ``-inf`` where the probability is 0."""
        p = self.prob(word, context)
        return math.log(p) if p > 0 else -math.inf

    def count(self, ngram: Sequence[str]) -> int:
        """c(ngram) as counted at fit, for 1 <= len(ngram) <= n (unknown tokens as ``"<unk>"``)."""
        self._require_fitted()
        tokens = _check_tokens(ngram, "ngram")
        if not 1 <= len(tokens) <= self._order:
            raise ValueError(f"an order-{self._order} model counts n-grams of length 1..{self._order}, "
                             f"got length {len(tokens)}")
        width = self._order - len(tokens)
        window = np.asarray([BOS_ID] * width + [self._index[t] for t in tokens], dtype=np.int64)
        j = len(tokens)
        return int(self._counts.lookup(window[None, :]).ngram(j, self._counts.levels[j].ngram_counts)[0])

    def ngram_counts(self, m: int | None = None) -> dict[tuple[str, ...], int]:
        """All m-gram counts (default m = n) as ``{(w1, ..., wm): c}``; equals ``count_ngrams(data, m)``
        on the training data once rare words are mapped to ``"<unk>"``."""
        self._require_fitted()
        m = self._order if m is None else _check_order(m, "m")
        if m > self._order:
            raise ValueError(f"an order-{self._order} model has counts of orders 1..{self._order}, not {m}")
        vocabulary = self._vocabulary
        grams = zip(*(column.tolist() for column in self._counts.ngram_ids(m).T))
        counts = self._counts.levels[m].ngram_counts.tolist()
        return {tuple(vocabulary[i] for i in gram): int(c) for gram, c in zip(grams, counts)}

    # ---- saving a fitted model as plain data ------------------------------------------------------

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        """The fitted model as plain data: its order-n n-grams as ids ``(types, n)`` with their counts
        ``(types,)``, and its settings with V. The order-n counts at the predicted positions hold every
        lower order too (their suffixes), so :meth:`from_arrays` rebuilds exactly this model."""
        self._require_fitted()
        id_type = np.int16 if len(self._vocabulary) <= np.iinfo(np.int16).max else np.int32  # a small file
        arrays = {"ngrams": self._counts.ngram_ids(self._order).astype(id_type),
                  "counts": self._counts.levels[self._order].ngram_counts.astype(np.int32)}
        settings = {"order": self._order, "smoothing": self._smoothing, "k": self._k, "discount": self._discount,
                    "lambdas": list(self._lambdas), "unk_cutoff": self._unk_cutoff,
                    "interpolate_uniform": self._interpolate_uniform, "vocabulary": list(self._vocabulary)}
        return arrays, settings

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], settings: Mapping) -> "NGramLM":
        """The model :meth:`to_arrays` wrote, with the same counts and so the same probabilities."""
        settings = dict(settings)
        vocabulary = tuple(settings.pop("vocabulary"))
        if vocabulary[:len(SPECIALS)] != SPECIALS:
            raise ValueError(f"an n-gram vocabulary starts with {SPECIALS}, got {vocabulary[:3]}")
        model = cls(**settings)
        ngrams = np.asarray(arrays["ngrams"], dtype=np.int64)
        counts = np.asarray(arrays["counts"], dtype=np.int64)
        if ngrams.ndim != 2 or ngrams.shape[1] != model.order or counts.shape != (ngrams.shape[0],):
            raise ValueError(f"arrays must hold ngrams (types, {model.order}) and counts (types,), "
                             f"got {ngrams.shape} and {counts.shape}")
        model._index = _TokenIds((token, i) for i, token in enumerate(vocabulary))
        model._counts = NGramCounts(np.repeat(ngrams, counts, axis=0), len(vocabulary))
        model._vocabulary = vocabulary
        return model

    def next_token_distribution(self, context: Sequence[str] = ()) -> dict[str, float]:
        """P(. | context) over the whole vocabulary (``"</s>"``, ``"<unk>"`` and ``"<s>"`` included)."""
        self._require_fitted()
        probabilities = self._next_token_probabilities(self._context_ids(context))
        return dict(zip(self._vocabulary, probabilities.tolist()))

    def _next_token_probabilities(self, context_ids: np.ndarray) -> np.ndarray:
        V = len(self._vocabulary)
        windows = np.column_stack([np.tile(context_ids, (V, 1)), np.arange(V, dtype=np.int64)])
        probabilities = self._probabilities(windows)
        if self._smoothing == "mle" and probabilities.sum() == 0:
            shown = [self._vocabulary[i] for i in context_ids]
            raise ValueError(f"the context {shown!r} never occurs in training, so P_MLE(. | h) is 0/0 there; "
                             "use a smoothing such as 'kneser_ney' or 'laplace'")
        return probabilities

    def _sequence_logprobs(self, sequences: object, what: str) -> np.ndarray:
        """ln P(w | h) at every predicted position of every sequence: (positions,)."""
        self._require_fitted()
        ids, lengths = self._token_ids(sequences, what)
        with np.errstate(divide="ignore"):
            return np.log(self._probabilities(self._windows(ids, lengths)))

    def sequence_logprob(self, tokens: Sequence[str]) -> float:
        """ln P(tokens </s>) = the sum of ln P(w | h) over the tokens and the final ``"</s>"``."""
        tokens = _check_tokens(tokens, "tokens")
        return float(self._sequence_logprobs([tokens], "tokens").sum())

    def cross_entropy(self, sequences: Iterable[Sequence[str]]) -> float:
        """Mean of -ln P(w | h) over all predicted tokens (``"</s>"`` included): nats per token.
        ``inf`` when some token has probability 0 (possible only without smoothing)."""
        return float(-self._sequence_logprobs(sequences, "sequences").mean())

    def perplexity(self, sequences: Iterable[Sequence[str]]) -> float:
        """exp(cross_entropy): the effective number of equally likely choices per token."""
        cross_entropy = self.cross_entropy(sequences)
        return math.exp(cross_entropy) if cross_entropy < 700 else math.inf

    def generate(self, max_tokens: int = 50, context: Sequence[str] = (), seed: int = 0) -> list[str]:
        """Sample w ~ P(. | h) token after token, starting after ``context``
        (:func:`course_lib.language_model.sample`, with NumPy's generator seeded by ``seed``).

        Stops when ``"</s>"`` is drawn (it is not returned) or after ``max_tokens`` tokens.
        The same seed gives the same tokens.
        """
        self._require_fitted()
        max_tokens = non_negative_int("max_tokens", max_tokens)
        rng = np.random.default_rng(non_negative_int("seed", seed))
        last_id = len(self._vocabulary) - 1

        def draw(probabilities: Tensor) -> int:  # inverse of the cumulative distribution at a uniform draw
            cumulative = np.cumsum(probabilities.numpy())
            return min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), last_id)

        prompt = [BOS_ID, *self.encode(_check_tokens(context, "context"))]
        self._next_token_probabilities(self._context_ids(context))  # MLE in an unseen context: says so
        drawn = sample(self, prompt, max_tokens=max_tokens, stop_id=EOS_ID, draw=draw)
        return self.decode(drawn)

    def save(self, path, metadata: Mapping | None = None):
        """Write the fitted model (:meth:`to_arrays`) to a safetensors file: integer arrays and JSON,
        no pickle. Returns the path."""
        arrays, settings = self.to_arrays()
        return save_arrays(arrays, path, {**(metadata or {}), "ngram_settings": settings})

    @classmethod
    def load(cls, path) -> tuple["NGramLM", dict]:
        """The model :meth:`save` wrote, and the file's metadata."""
        arrays, metadata = load_arrays(path)
        if "ngram_settings" not in metadata:
            raise ValueError(f"{str(path)!r} holds no n-gram model (no 'ngram_settings'); NGramLM.save writes one")
        return cls.from_arrays({name: array.numpy() for name, array in arrays.items()}, metadata["ngram_settings"]), metadata

    # ---- the id view: the language-model protocol -------------------------------------------------

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """The ids of ``tokens`` in V (``"<unk>"``'s for tokens outside it)."""
        self._require_fitted()
        return [self._index[token] for token in _check_tokens(tokens)]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ids of V."""
        vocabulary = self.vocabulary
        return [vocabulary[int(i)] for i in ids]

    @property
    def context_size(self) -> int:
        """n-1: the ids the protocol's state keeps."""
        return self._order - 1

    def window_log_probs(self, windows: Tensor) -> Tensor:
        """ln P(. | h) for contexts of n-1 ids ``(positions, n-1)``: ``(positions, |V|)``, float64."""
        self._require_fitted()
        contexts = windows.cpu().numpy().astype(np.int64).reshape(windows.shape[0], self.context_size)
        V = len(self._vocabulary)
        every_word = np.column_stack([np.repeat(contexts, V, axis=0), np.tile(np.arange(V), contexts.shape[0])])
        with np.errstate(divide="ignore"):
            log_probs = np.log(self._probabilities(every_word))
        return torch.from_numpy(log_probs.reshape(contexts.shape[0], V))

    def token_log_probs(self, ids: Tensor) -> Tensor:
        """ln P(ids[:, t+1] | ids[:, :t+1]) from the n-gram of each next token alone (not from the
        whole distribution): ``(batch, time)`` -> ``(batch, time - 1)``, float64."""
        self._require_fitted()
        ids = self.check_ids(ids)
        windows = self.windows(ids, self.initial_state(ids.shape[0]), self._order)[:, 1:]
        with np.errstate(divide="ignore"):
            log_probs = np.log(self._probabilities(windows.reshape(-1, self._order).cpu().numpy()))
        return torch.from_numpy(log_probs.reshape(ids.shape[0], ids.shape[1] - 1))
