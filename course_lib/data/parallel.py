"""The parallel corpus of Chapter 6: Kelo translation pairs in length ranges, buckets and splits.

    >>> corpus = parallel_corpus(train_pairs=200, validation_pairs=20, test_pairs=20, seed=0)
    >>> source_vocabulary, target_vocabulary = corpus.vocabularies()   # built on train
    >>> floor = corpus.entropy_floor("validation")                     # of the source sentences
    >>> buckets = length_buckets(10, edges=(5, 11, 21, 31, 41, 51))    # test pairs by length

The splits are disjoint by construction: a sentence belongs to the split named by a hash of its
tokens (:func:`split_of`: 80/10/10), and each split keeps the sentences of its own from a stream
of its own seed. A split thereby follows the program's distribution restricted to its share of
sentences; each pair's ``logprob`` stays the program's unconditional figure, so the floor
reported is the program's cross-entropy on the split.

Two floors matter in Chapter 6. A *language model* of either side cannot beat the source
program's entropy (:meth:`ParallelCorpus.entropy_floor`; a target sentence has its source's
probability, the transduction being one-to-one). A *translation model* can reach zero: the
target is a function of the source, so its conditional entropy is 0 nats per target token.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from course_lib.checks import ArgumentError, integer, non_negative_int, one_of, positive_int
from course_lib.data.program import EntropyFloor, Sample, derive_seed, draw, entropy_floor
from course_lib.data.splits import SPLITS, Splits
from course_lib.data.text import Vocabulary
from course_lib.data.translation import TranslationPair, TranslationProgram, default_translation_program

# A sentence's split is decided by a hash of its tokens, in tenths: 8 train, 1 validation, 1 test.
SPLIT_OF_TENTH = ("train",) * 8 + ("validation", "test")


def split_of(source: Sequence[str]) -> str:
    """The split a source sentence belongs to, from a hash of its tokens (80/10/10)."""
    digest = hashlib.sha256(" ".join(source).encode()).digest()
    return SPLIT_OF_TENTH[int.from_bytes(digest[:8], "big") % 10]


# Draws in a row that keep nothing before a request is declared unsatisfiable (about 6 s).
MAX_MISSES = 50_000


def _check_lengths(min_len: int, max_len: int | None) -> int | float:
    positive_int("min_len", min_len)
    if max_len is None:
        return float("inf")
    return integer("max_len", max_len, minimum=min_len, what=f"an integer >= min_len ({min_len}) or None")


def sentence_pairs(
    n: int,
    min_len: int = 1,
    max_len: int | None = None,
    seed: int = 0,
    split: str | None = None,
    program: TranslationProgram | None = None,
) -> list[TranslationPair]:
    """``n`` pairs whose source has ``min_len``..``max_len`` tokens (the final "." included).

    Sentences are drawn from the program with ``random.Random(seed)`` and kept when their length
    is in range (and, with ``split``, when :func:`split_of` names that split), so the kept ones
    follow the program's distribution given those conditions; ``logprob`` stays the
    unconditional log-probability. The first ``k`` of ``n`` pairs are those of ``k``.
    """
    non_negative_int("n", n)
    non_negative_int("seed", seed)
    longest = _check_lengths(min_len, max_len)
    if split is not None:
        one_of("split", split, SPLITS)
    program = default_translation_program() if program is None else program
    rng = random.Random(seed)
    pairs = []
    misses = 0
    while len(pairs) < n:
        run = draw(program.write, rng)
        if min_len <= len(run.tokens) <= longest and (split is None or split_of(run.tokens) == split):
            pairs.append(program.pair(run))
            misses = 0
            continue
        misses += 1
        lengths = f"{min_len} to {max_len}" if max_len is not None else f"at least {min_len}"
        _give_up_after(misses, f"of {lengths} tokens" + (f" and of {split}" if split else ""))
    return pairs


def _give_up_after(misses: int, wanted: str) -> None:
    if misses >= MAX_MISSES:
        raise ArgumentError(
            f"none of {MAX_MISSES} sentences in a row were {wanted}: too rare under this program; "
            "widen the length range or lengthen the sentences (SentenceShape.max_units)"
        )


def length_buckets(
    per_bucket: int,
    edges: Sequence[int] = (5, 11, 21, 31, 41, 51),
    seed: int = 0,
    split: str = "test",
    program: TranslationProgram | None = None,
) -> dict[tuple[int, int], list[TranslationPair]]:
    """``per_bucket`` pairs of ``split`` for each source-length bucket ``[edges[i], edges[i + 1] - 1]``.

    One stream (derived from ``seed`` and ``split``) fills every bucket, each pair going to the
    bucket of its length (the final "." counted): the set on which accuracy is plotted against
    source length. The keys are ``(shortest, longest)`` of each bucket.
    """
    non_negative_int("per_bucket", per_bucket)
    non_negative_int("seed", seed)
    one_of("split", split, SPLITS)
    edges = [positive_int(f"edges[{i}]", edge) for i, edge in enumerate(edges)]
    if len(edges) < 2 or edges != sorted(set(edges)):
        raise ArgumentError(f"edges must be at least two increasing lengths, got {edges}")
    program = default_translation_program() if program is None else program
    buckets = {(low, high - 1): [] for low, high in zip(edges, edges[1:])}
    rng = random.Random(derive_seed(seed, "length buckets", split))
    misses = 0
    while any(len(pairs) < per_bucket for pairs in buckets.values()):
        run = draw(program.write, rng)
        length = len(run.tokens)
        misses += 1
        for (low, high), pairs in buckets.items():
            if low <= length <= high and len(pairs) < per_bucket and split_of(run.tokens) == split:
                pairs.append(program.pair(run))
                misses = 0
        _give_up_after(misses, f"of {split} and in an unfilled bucket of {list(buckets)}")
    return buckets


@dataclass(frozen=True)
class ParallelCorpus(Splits[TranslationPair]):
    """Train/validation/test translation pairs; disjoint, each split from its own seed."""

    def sources(self, split: str) -> list[list[str]]:
        return [list(pair.source) for pair in self.split(split)]

    def targets(self, split: str) -> list[list[str]]:
        return [list(pair.target) for pair in self.split(split)]

    def vocabularies(self, min_count: int = 1) -> tuple[Vocabulary, Vocabulary]:
        """Source and target :class:`Vocabulary` built on the training split (with ``<pad>``, ``<unk>``,
        ``<s>``, ``</s>``)."""
        return Vocabulary.build(self.sources("train"), min_count), Vocabulary.build(self.targets("train"), min_count)

    def entropy_floor(self, split: str, unit: str = "token", side: str = "source") -> EntropyFloor:
        """The program's cross-entropy on the split, per predicted unit of the ``side`` sentences.

        Each sentence has the probability of its source; ``side`` says whose tokens (or
        characters), end of sentence included, it is spread over.
        """
        one_of("side", side, ("source", "target"))
        texts = [pair.source_text if side == "source" else pair.target_text for pair in self.split(split)]
        return entropy_floor([Sample(text, pair.logprob) for text, pair in zip(texts, self.split(split))], unit)

    def describe(self) -> str:
        """A plain-text table of every split: pairs, tokens, lengths and the source's floor."""
        header = f"{'split':<11}{'pairs':>7}{'source tok':>11}{'target tok':>11}{'max len':>8}{'floor nats/tok':>15}"
        lines = [header, "-" * len(header)]
        for name in SPLITS:
            pairs = self.split(name)
            if not pairs:
                lines.append(f"{name:<11}{0:>7}{0:>11}{0:>11}{'-':>8}{'-':>15}")
                continue
            source = sum(len(pair.source) for pair in pairs)
            target = sum(len(pair.target) for pair in pairs)
            longest = max(len(pair.source) for pair in pairs)
            floor = self.entropy_floor(name).nats
            lines.append(f"{name:<11}{len(pairs):>7}{source:>11}{target:>11}{longest:>8}{floor:>15.4f}")
        return "\n".join(lines)


def parallel_corpus(
    train_pairs: int = 5000,
    validation_pairs: int = 500,
    test_pairs: int = 500,
    seed: int = 0,
    min_len: int = 1,
    max_len: int | None = None,
    program: TranslationProgram | None = None,
) -> ParallelCorpus:
    """Train/validation/test splits of the translation pair, disjoint by :func:`split_of`.

    Each split is drawn from its own seed, derived from ``seed`` and the split's name, so the
    size of one split leaves the others as they were (and a larger split extends a smaller).
    """
    non_negative_int("seed", seed)
    sizes = {"train": train_pairs, "validation": validation_pairs, "test": test_pairs}
    for name, size in sizes.items():
        non_negative_int(f"{name}_pairs", size)
    splits = {
        name: sentence_pairs(size, min_len, max_len, derive_seed(seed, "translation", name), name, program)
        for name, size in sizes.items()
    }
    return ParallelCorpus(seed=seed, **splits)
