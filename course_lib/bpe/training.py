"""Learning BPE merges from a word-frequency dictionary (Sennrich et al., 2016, Algorithm 1).

A *word* is a tuple of symbols, ``("l", "o", "w", "</w>")``; ``word_counts`` maps each word to how
often it occurs in the corpus. Symbols are ``str`` (character-level BPE) or ``bytes`` (byte-level
BPE); merging the pair ``(a, b)`` replaces every adjacent ``a, b`` by the one symbol ``a + b``.

One training step:

1. count every adjacent pair, weighted by the word's frequency (:func:`get_pair_counts`);
2. take the most frequent pair (:func:`best_pair`);
3. merge it in every word (:func:`merge_pair`).

**Tie-break.** Among equally frequent pairs the lexicographically smallest ``(left, right)`` wins
(``str`` compares by code point, ``bytes`` by byte value). The rule depends on nothing but the
counts, so the order in which words were listed, or a trainer's bookkeeping, cannot change the
merges.

Two trainers learn the same merges:

- :func:`train_naive` recounts every pair of every word after each merge: ``O(merges x corpus)``.
- :func:`train_incremental` keeps the pair counts and an index from each pair to the words that
  contain it; a merge touches only those words, and a heap with lazy deletion hands out the best
  pair. This is what makes training on megabytes take seconds instead of minutes.
"""
from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TypeVar

from course_lib import checks

Symbol = TypeVar("Symbol", str, bytes)
Word = tuple[Symbol, ...]
Pair = tuple[Symbol, Symbol]


# --------------------------------------------------------------------------- checks


def _check_word_counts(word_counts: object, name: str = "word_counts") -> None:
    if not isinstance(word_counts, Mapping):
        raise checks.ArgumentError(
            f"{name} must be a dict mapping words (tuples of symbols) to counts, got {type(word_counts).__name__}"
        )
    symbol_type: type | None = None
    for word, count in word_counts.items():
        if not isinstance(word, tuple):
            raise checks.ArgumentError(
                f"{name} keys must be tuples of symbols such as ('l', 'o', 'w', '</w>'), got {word!r}; "
                "split each word with tuple(word) first"
            )
        checks.integer(f"{name}[{word!r}]", count, minimum=1,
                       what="a positive integer (counts are positive integers: how often the word occurs)")
        for symbol in word:
            if not isinstance(symbol, (str, bytes)) or len(symbol) == 0:
                raise checks.ArgumentError(f"symbols must be non-empty str or bytes, got {symbol!r} in word {word!r}")
            if symbol_type is None:
                symbol_type = type(symbol)
            elif type(symbol) is not symbol_type:
                raise checks.ArgumentError(f"all symbols must be of one type (str or bytes); word {word!r} mixes them")


def _check_pair(pair: object) -> None:
    if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(s, (str, bytes)) for s in pair)):
        raise checks.ArgumentError(f"a pair must be a tuple of two symbols such as ('e', 's'), got {pair!r}")


def _check_num_merges(num_merges: object) -> None:
    checks.non_negative_int("num_merges", num_merges)


# --------------------------------------------------------------------------- the three pure steps


def merge_word(word: Sequence[Symbol], pair: Pair, merged: Symbol | None = None) -> tuple[Symbol, ...]:
    """``word`` with every occurrence of ``pair`` merged, scanning left to right.

    Occurrences do not overlap: ``("a", "a", "a")`` merged on ``("a", "a")`` is ``("aa", "a")``.
    The merged symbol is ``left + right`` unless ``merged`` names it (a token id, when the word
    is a sequence of ids).
    """
    left, right = pair
    if merged is None:
        merged = left + right
    symbols: list[Symbol] = []
    i, last = 0, len(word) - 1
    while i <= last:
        symbol = word[i]
        if symbol == left and i < last and word[i + 1] == right:
            symbols.append(merged)
            i += 2
        else:
            symbols.append(symbol)
            i += 1
    return tuple(symbols)


def _pair_counts(word_counts: Mapping[Word, int]) -> dict[Pair, int]:
    counts: dict[Pair, int] = defaultdict(int)
    for word, count in word_counts.items():
        for pair in zip(word, word[1:]):
            counts[pair] += count
    return dict(counts)


def _merge_pair(word_counts: Mapping[Word, int], pair: Pair) -> dict[Word, int]:
    merged: dict[Word, int] = {}
    for word, count in word_counts.items():
        new_word = merge_word(word, pair) if len(word) > 1 else word
        # Two different segmentations can become the same word; their counts add up.
        merged[new_word] = merged.get(new_word, 0) + count
    return merged


def get_pair_counts(word_counts: Mapping[Word, int]) -> dict[Pair, int]:
    """How often each adjacent pair of symbols occurs, each word weighted by its count.

    >>> get_pair_counts({("l", "o", "w", "</w>"): 5, ("l", "o", "w", "e", "r", "</w>"): 2})[("l", "o")]
    7
    """
    _check_word_counts(word_counts)
    return _pair_counts(word_counts)


def merge_pair(word_counts: Mapping[Word, int], pair: Pair) -> dict[Word, int]:
    """A new word-count dictionary with ``pair`` merged in every word (the input is not changed).

    >>> merge_pair({("l", "o", "w", "</w>"): 5}, ("l", "o"))
    {('lo', 'w', '</w>'): 5}
    """
    _check_word_counts(word_counts)
    _check_pair(pair)
    return _merge_pair(word_counts, pair)


def best_pair(pair_counts: Mapping[Pair, int]) -> Pair:
    """The most frequent pair; among equals, the lexicographically smallest ``(left, right)``."""
    if not pair_counts:
        raise ValueError("there is no pair to choose from: every word is a single symbol")
    return min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))


def merge_step(word_counts: Mapping[Word, int]) -> tuple[Pair, dict[Word, int]]:
    """One step of BPE training: count the pairs, pick the best, merge it everywhere.

    Returns ``(pair, new_word_counts)``; call it again on ``new_word_counts`` for the next step.

    >>> pair, counts = merge_step({("l", "o", "w", "</w>"): 5, ("l", "o", "t", "</w>"): 2})
    >>> pair, counts
    (('l', 'o'), {('lo', 'w', '</w>'): 5, ('lo', 't', '</w>'): 2})
    """
    _check_word_counts(word_counts)
    pair_counts = _pair_counts(word_counts)
    if not pair_counts:
        raise ValueError("nothing left to merge: every word is already a single symbol")
    pair = best_pair(pair_counts)
    return pair, _merge_pair(word_counts, pair)


def _announce(step: int, num_merges: int, pair: Pair, count: int) -> None:
    left, right = pair
    print(f"merge {step}/{num_merges}: {left!r} + {right!r} -> {left + right!r} ({count} occurrences)")


# --------------------------------------------------------------------------- the two trainers


def train_naive(word_counts: Mapping[Word, int], num_merges: int, *, verbose: bool = False) -> list[Pair]:
    """Learn up to ``num_merges`` merges by recounting every pair after every merge.

    The algorithm exactly as the paper writes it; it stops early when no pair is left.
    """
    _check_word_counts(word_counts)
    _check_num_merges(num_merges)
    counts = dict(word_counts)
    merges: list[Pair] = []
    while len(merges) < num_merges:
        pair_counts = _pair_counts(counts)
        if not pair_counts:
            break
        pair = best_pair(pair_counts)
        counts = _merge_pair(counts, pair)
        merges.append(pair)
        if verbose:
            _announce(len(merges), num_merges, pair, pair_counts[pair])
    return merges


def train_char_bpe(word_counts: Mapping[Word, int], num_merges: int) -> list[Pair]:
    """Sennrich et al.'s Algorithm 1: the first ``num_merges`` merges learned from ``word_counts``.

    >>> train_char_bpe({("l", "o", "w", "</w>"): 5, ("l", "o", "t", "</w>"): 2}, 2)
    [('l', 'o'), ('lo', 'w')]

    The second step is a tie, ``('lo', 'w')`` and ``('w', '</w>')`` both occur 5 times; the
    lexicographically smaller pair wins.
    """
    return train_naive(word_counts, num_merges)


def train_incremental(word_counts: Mapping[Word, int], num_merges: int, *, verbose: bool = False) -> list[Pair]:
    """Learn the same merges as :func:`train_naive`, updating counts only where a merge happened.

    Bookkeeping:

    - ``pair_counts[pair]``: current count of every pair present;
    - ``where[pair]``: the indices of the words that contain (or once contained) ``pair``; stale
      entries are harmless, a word without the pair is left unchanged by the merge;
    - a heap of ``(-count, pair)``: every change of a count pushes a fresh entry, and an entry whose
      count is no longer current is dropped when it reaches the top (lazy deletion).

    Merging ``pair`` removes the pair contributions of each affected word and adds those of its
    merged form, so every count stays exactly what :func:`get_pair_counts` would recount.
    """
    _check_word_counts(word_counts)
    _check_num_merges(num_merges)
    words: list[tuple] = list(word_counts)
    counts: list[int] = list(word_counts.values())
    pair_counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)
    for index, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += counts[index]
            where[pair].add(index)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[Pair] = []
    while len(merges) < num_merges:
        # Drop stale entries until the top of the heap holds a current count.
        while heap and pair_counts.get(heap[0][1], 0) != -heap[0][0]:
            heapq.heappop(heap)
        if not heap:
            break
        negative_count, pair = heapq.heappop(heap)
        merges.append(pair)
        if verbose:
            _announce(len(merges), num_merges, pair, -negative_count)

        changed: set[Pair] = set()
        for index in where.pop(pair):
            old = words[index]
            new = merge_word(old, pair)
            if len(new) == len(old):
                continue  # a stale index entry: this word no longer holds the pair
            count = counts[index]
            for old_pair in zip(old, old[1:]):
                pair_counts[old_pair] -= count
                changed.add(old_pair)
            for new_pair in zip(new, new[1:]):
                pair_counts[new_pair] += count
                where[new_pair].add(index)
                changed.add(new_pair)
            words[index] = new
        for changed_pair in changed:
            count = pair_counts[changed_pair]
            if count > 0:
                heapq.heappush(heap, (-count, changed_pair))
            else:
                del pair_counts[changed_pair]
    return merges


TRAINERS = {"incremental": train_incremental, "naive": train_naive}


def learn_merges(
    word_counts: Mapping[Word, int], num_merges: int, *, method: str = "incremental", verbose: bool = False
) -> list[Pair]:
    """Dispatch to :func:`train_incremental` or :func:`train_naive` by name."""
    checks.one_of("method", method, sorted(TRAINERS))
    return TRAINERS[method](word_counts, num_merges, verbose=verbose)


# --------------------------------------------------------------------------- applying merges

_NOT_LEARNED = math.inf  # the rank of a pair that no merge made: worse than every learned rank


def merge_ranks(merges: Sequence[Pair]) -> dict[Pair, int]:
    """Each pair's rank: its position in ``merges`` (the first one if it is listed twice)."""
    ranks: dict[Pair, int] = {}
    for rank, pair in enumerate(merges):
        ranks.setdefault(tuple(pair), rank)
    return ranks


def apply_ranks(
    word: Sequence[Symbol], ranks: Mapping[Pair, int], merged: Mapping[Pair, Symbol] | None = None
) -> tuple[Symbol, ...]:
    """Segment ``word`` by merging, again and again, the present pair of lowest rank.

    The one merge routine of the package: :func:`apply_merges`, :class:`~course_lib.bpe.CharBPE`
    and :class:`~course_lib.bpe.ByteBPE` (GPT-2's encoder) all segment with it. Symbols are
    ``str``, ``bytes`` or token ids; for ids, ``merged`` maps each ranked pair to the id it
    becomes (``left + right`` would add the ids). The lowest rank is found with a plain loop
    rather than ``min(..., key=...)``: a third faster, and encoding a corpus spends its time here.

    >>> apply_ranks(("l", "o", "w"), {("o", "w"): 0, ("l", "ow"): 1})
    ('low',)
    >>> apply_ranks((108, 111, 119), {(111, 119): 0, (108, 256): 1}, {(111, 119): 256, (108, 256): 257})
    (257,)
    """
    word = tuple(word)
    while len(word) > 1:
        best_pair, best_rank = None, _NOT_LEARNED
        for pair in zip(word, word[1:]):
            rank = ranks.get(pair, _NOT_LEARNED)
            if rank < best_rank:
                best_pair, best_rank = pair, rank
        if best_pair is None:  # no adjacent pair was ever learned: the word is final
            break
        word = merge_word(word, best_pair, None if merged is None else merged[best_pair])
    return word


def apply_merges(word: Sequence[Symbol], merges: Sequence[Pair]) -> tuple[Symbol, ...]:
    """Segment a new word with learned merges, earliest-learned first (how GPT-2 encodes).

    >>> apply_merges(("l", "o", "w", "e", "s", "t", "</w>"), [("e", "s"), ("es", "t"), ("l", "o")])
    ('lo', 'w', 'est', '</w>')
    """
    if isinstance(word, (str, bytes)):
        raise checks.ArgumentError(f"word must be a tuple of symbols such as tuple('low') + ('</w>',), got {word!r}")
    for pair in merges:
        _check_pair(pair)
    return apply_ranks(word, merge_ranks(merges))
