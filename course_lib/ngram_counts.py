"""The counting engine behind :class:`course_lib.ngram.NGramLM`: what fitting an order-n model counts,
and how a batch of positions finds its counts again.

An order-n model is fitted on its *windows*: the n ids ending at every predicted position (the
context h and the word w). From them :class:`NGramCounts` builds, for every order j = 1..n:

* c(h, w), c(h) = sum_w c(h, w) and N1+(h .) = |{w : c(h, w) > 0}| (:class:`Level`), and
* Kneser-Ney's continuation counts N1+(. h w) and N1+(. h .) below the top order.

The smoothings of Chapter 1 are formulas in these numbers; :mod:`course_lib.ngram` writes them, and
reads the numbers at many positions at once through :meth:`NGramCounts.lookup`.

Speed: contexts and n-grams of ids are packed into int64 keys, counted with ``np.unique`` and
looked up in a table (direct-address, or hashed), so fitting and scoring handle whole arrays of
positions at once. ``benchmarks/bench_ngram.py`` times it against NLTK.
"""
from __future__ import annotations

import numpy as np

__all__ = ["CountLookup", "KeyTable", "Level", "NGramCounts", "count_keys", "gather"]


#
# A context of length m is packed from its last m-1 tokens (already a context, with a rank
# among the training contexts of that length) extended one token to the left:
#     key(x, h) = rank(h) * |V| + x,
# and an n-gram (h, w) is key(h, w) = rank(h) * |V| + w. Ranks are below the number of
# training positions, so the keys stay far inside int64 for any vocabulary and order.

def count_keys(keys: np.ndarray, key_space: int) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct keys in [0, key_space) and how often each occurs: ``np.unique`` with
    ``return_counts``, or one bincount when the key space is small next to the number of keys."""
    if key_space <= 4 * keys.size + 2**20:
        counts = np.bincount(keys, minlength=key_space)
        distinct = np.flatnonzero(counts)
        return distinct, counts[distinct]
    return np.unique(keys, return_counts=True)


class KeyTable:
    """Distinct int64 keys in [0, key_space), sorted, and where to find a query among them.

    ``find`` reads one slot per query of a direct-address table when the key space is small
    (a unigram or bigram context of a modest vocabulary), and otherwise probes an
    open-addressing hash table with linear probing, kept at most half full. Either way the
    look-up is a few vectorised gathers, several times faster than a binary search.
    """

    def __init__(self, keys: np.ndarray, key_space: int):
        self.keys = keys
        self.direct = key_space <= max(16 * keys.size, 2**20)  # at most 4 MiB, or 64 bytes per key
        if self.direct:
            self.slots = np.full(key_space, -1, dtype=np.int32)
            self.slots[keys] = np.arange(keys.size, dtype=np.int32)
            return
        self.bits = max(1, int(2 * keys.size).bit_length())  # 2^bits > 2 * keys: load factor < 1/2
        self.slots = np.full(1 << self.bits, -1, dtype=np.int32)
        pending, slot = np.arange(keys.size), self._home(keys)
        while pending.size:
            free = self.slots[slot] == -1
            self.slots[slot[free]] = pending[free]  # keys that want the same free slot: one wins
            placed = self.slots[slot] == pending
            pending, slot = pending[~placed], (slot[~placed] + 1) & (self.slots.size - 1)
        # each slot's key beside its index, so a probe reads one array (one cache miss, not two)
        self.slot_keys = np.full(self.slots.size, -1, dtype=np.int64)
        occupied = self.slots >= 0
        self.slot_keys[occupied] = keys[self.slots[occupied]]

    def _home(self, keys: np.ndarray) -> np.ndarray:
        """Fibonacci hashing: the top bits of key * 2^64 / golden ratio."""
        return ((keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - self.bits)).astype(np.int64)

    def find(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of each query in ``keys`` and whether it is there. Shapes: (P,), (P,)."""
        if self.keys.size == 0:
            return np.zeros(queries.shape, dtype=np.int64), np.zeros(queries.shape, dtype=bool)
        if self.direct:
            inside = (queries >= 0) & (queries < self.slots.size)
            index = self.slots[np.where(inside, queries, 0)]
            found = inside & (index >= 0)
            return np.where(found, index, 0), found
        index = np.zeros(queries.shape, dtype=np.int64)
        found = np.zeros(queries.shape, dtype=bool)
        pending, slot = np.arange(queries.size), self._home(queries)
        while pending.size:  # probe until the key or an empty slot turns up
            key = self.slot_keys[slot]
            occupied = key >= 0
            hit = occupied & (key == queries[pending])
            index[pending[hit]], found[pending[hit]] = self.slots[slot[hit]], True
            go_on = occupied & ~hit
            pending, slot = pending[go_on], (slot[go_on] + 1) & (self.slots.size - 1)
        return index, found


def gather(values: np.ndarray, index: np.ndarray, found: np.ndarray) -> np.ndarray:
    """values[index] where found, 0 elsewhere."""
    return np.where(found, values[np.where(found, index, 0)] if values.size else 0, 0)


class Level:
    """The counts of one order j of an order-n model: n-grams (h, w) with |h| = j - 1.

    ngrams, ngram_counts     : (types,)  sorted keys rank(h) * |V| + w, and c(h, w)
    context_total            : (contexts,) c(h) = sum_w c(h, w), indexed by rank(h)
    context_types            : (contexts,) N1+(h .) = |{w : c(h, w) > 0}|
    continuation_counts      : (types,)  N1+(. h w) = |{x : c(x, h, w) > 0}|   (j < n only)
    continuation_total       : (contexts,) N1+(. h .) = sum_w N1+(. h w)        (j < n only)
    """

    def __init__(self, ngram_keys: np.ndarray, ngram_counts: np.ndarray, n_contexts: int, vocab_size: int):
        self.ngrams = KeyTable(ngram_keys, n_contexts * vocab_size)
        self.ngram_counts = ngram_counts.astype(np.float64)
        context_of = ngram_keys // vocab_size
        self.context_total = np.bincount(context_of, weights=self.ngram_counts, minlength=n_contexts)
        self.context_types = np.bincount(context_of, minlength=n_contexts).astype(np.float64)
        self.continuation_counts = np.zeros(0)
        self.continuation_total = np.zeros(0)


class NGramCounts:
    """Every count of an order-n model, from its training windows ``(positions, n)`` of ids in
    ``[0, vocab_size)``; the counts depend only on the multiset of windows."""

    def __init__(self, windows: np.ndarray, vocab_size: int):
        n, V = windows.shape[1], vocab_size
        self.order, self.vocab_size = n, V
        # Contexts of length m = 1..n-1, each packed from its (m-1)-suffix's rank and its first token.
        self.contexts = [KeyTable(np.zeros(1, dtype=np.int64), 1)]  # the empty context, rank 0
        rank = np.zeros(windows.shape[0], dtype=np.int64)
        ranks = [rank]
        for m in range(1, n):
            packed = rank * V + windows[:, n - 1 - m]
            key_space = self.contexts[-1].keys.size * V
            self.contexts.append(KeyTable(count_keys(packed, key_space)[0], key_space))
            rank, _ = self.contexts[-1].find(packed)
            ranks.append(rank)
        # Order j: n-grams (h, w) with |h| = j - 1.
        w = windows[:, -1]
        self.levels: list[Level | None] = [None]
        for j in range(1, n + 1):
            n_contexts = self.contexts[j - 1].keys.size
            keys, counts = count_keys(ranks[j - 1] * V + w, n_contexts * V)
            self.levels.append(Level(keys, counts, n_contexts, V))
        # Kneser-Ney's continuation counts: N1+(. h w) = number of distinct (x, h, w) at order j+1.
        for j in range(1, n):
            lower, higher = self.levels[j], self.levels[j + 1]
            x_h_rank = higher.ngrams.keys // V                     # rank of the context (x, h)
            h_rank = self.contexts[j].keys[x_h_rank] // V           # drop x: rank of h
            suffix_keys = h_rank * V + higher.ngrams.keys % V       # (h, w)
            index, _ = lower.ngrams.find(suffix_keys)
            lower.continuation_counts = np.bincount(index, minlength=lower.ngrams.keys.size).astype(np.float64)
            lower.continuation_total = np.bincount(lower.ngrams.keys // V, weights=lower.continuation_counts,
                                                   minlength=lower.context_total.size)

    def context_ranks(self, windows: np.ndarray) -> list[np.ndarray]:
        """rank of the length-m context of each window, m = 0..n-1; -1 where unseen in training."""
        n, V = self.order, self.vocab_size
        rank = np.zeros(windows.shape[0], dtype=np.int64)
        ranks = [rank]
        for m in range(1, n):
            index, found = self.contexts[m].find(rank * V + windows[:, n - 1 - m])
            rank = np.where(found & (rank >= 0), index, -1)
            ranks.append(rank)
        return ranks

    def lookup(self, windows: np.ndarray) -> "CountLookup":
        """The counts at every window ``(positions, n)``, order by order."""
        return CountLookup(self, windows)

    def ngram_ids(self, m: int) -> np.ndarray:
        """The distinct m-grams counted, as ids oldest first: ``(types, m)``, in the order of ``levels[m]``."""
        V, level = self.vocab_size, self.levels[m]
        columns = []
        rank = level.ngrams.keys // V
        for length in range(m - 1, 0, -1):   # unpack the context from its oldest token onwards
            key = self.contexts[length].keys[rank]
            columns.append(key % V)
            rank = key // V
        columns.append(level.ngrams.keys % V)
        return np.column_stack(columns)


class CountLookup:
    """The counts read at a batch of windows: ``ngram(j, table)`` is ``table[(h, w)]`` at order j (0
    for an n-gram never seen), ``context(j, table)`` is ``table[h]`` (0 for a context never seen),
    where h is the last j - 1 ids of the window's context."""

    def __init__(self, counts: NGramCounts, windows: np.ndarray):
        self.counts = counts
        self.ranks = counts.context_ranks(windows)
        self.words = windows[:, -1]

    def ngram(self, j: int, table: np.ndarray) -> np.ndarray:
        rank = self.ranks[j - 1]
        index, found = self.counts.levels[j].ngrams.find(rank * self.counts.vocab_size + self.words)
        return gather(table, index, found & (rank >= 0))

    def context(self, j: int, table: np.ndarray) -> np.ndarray:
        rank = self.ranks[j - 1]
        return gather(table, rank, rank >= 0)
