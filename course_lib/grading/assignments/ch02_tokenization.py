"""Chapter 2 exercises: byte-pair encoding, from pair counts to GPT-2's byte symbols."""
from __future__ import annotations

import random

from course_lib import bpe
from course_lib.grading.cases import Assignment, Case, graded_item
from course_lib.grading.policies import EXACT

# Sennrich et al. (2016), Section 3.2: {low: 5, lower: 2, newest: 6, widest: 3}, each word as
# characters plus the end-of-word marker.
SENNRICH_WORDS = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
END_OF_WORD = bpe.END_OF_WORD


def as_word_counts(words: dict[str, int]) -> dict[tuple[str, ...], int]:
    return {tuple(word) + (END_OF_WORD,): count for word, count in words.items()}


SENNRICH = as_word_counts(SENNRICH_WORDS)


def random_word_counts(seed: int, words: int = 12, alphabet: str = "abcde") -> dict[tuple[str, ...], int]:
    """A small word-frequency dictionary over a few letters, so that pairs repeat and ties happen."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    while len(counts) < words:
        word = "".join(rng.choices(alphabet, k=rng.randint(1, 7)))
        counts[word] = rng.randint(1, 9)
    return as_word_counts(counts)


def story_word_counts(stories: int = 20) -> dict[tuple[str, ...], int]:
    """The word-frequency dictionary of a few stories of the course's corpus."""
    from course_lib.data.stories import generate_stories

    return bpe.word_counts_from_text(story.text for story in generate_stories(stories, seed=2))


def _after_merges(word_counts: dict, num_merges: int) -> dict:
    """The dictionary after ``num_merges`` training steps: symbols longer than one character."""
    for _ in range(num_merges):
        _, word_counts = bpe.merge_step(word_counts)
    return word_counts


# --------------------------------------------------------------------------- case generators


def _pair_count_cases() -> list[Case]:
    return [
        Case("the paper's dictionary {low: 5, lower: 2, newest: 6, widest: 3}", {"word_counts": SENNRICH}),
        Case("a pair twice in one word counts twice: banana", {"word_counts": as_word_counts({"banana": 3})}),
        Case("one-symbol words have no pairs", {"word_counts": {("a",): 4, ("b", "c"): 1}}),
        Case("after three merges (multi-character symbols)", {"word_counts": _after_merges(SENNRICH, 3)}),
        Case("a random dictionary", {"word_counts": random_word_counts(1)}),
        Case("the words of 20 stories", {"word_counts": story_word_counts()}),
    ]


def _merge_pair_cases() -> list[Case]:
    return [
        Case("merge ('e', 's') in the paper's dictionary", {"word_counts": SENNRICH, "pair": ("e", "s")}),
        Case("merge ('l', 'o'): only the words that contain it change",
             {"word_counts": SENNRICH, "pair": ("l", "o")}),
        Case("left to right, without overlap: a a a -> aa a",
             {"word_counts": {("a", "a", "a"): 2, ("a", "a", "a", "a"): 1}, "pair": ("a", "a")}),
        Case("a pair that occurs nowhere leaves the dictionary as it was",
             {"word_counts": SENNRICH, "pair": ("x", "y")}),
        Case("two words that become equal add their counts",
             {"word_counts": {("a", "b", END_OF_WORD): 2, ("ab", END_OF_WORD): 3}, "pair": ("a", "b")}),
        Case("merging symbols of several characters: ('low', '</w>')",
             {"word_counts": _after_merges(SENNRICH, 5), "pair": ("low", END_OF_WORD)}),
        Case("the symbols must match whole: ('s', 't') is not in 'es t'",
             {"word_counts": _after_merges(SENNRICH, 1), "pair": ("s", "t")}),
    ]


def _train_cases() -> list[Case]:
    return [
        Case("10 merges of the paper's dictionary (with ties)", {"word_counts": SENNRICH, "num_merges": 10}),
        Case("no merges", {"word_counts": SENNRICH, "num_merges": 0}),
        Case("more merges than pairs: stop when every word is one symbol",
             {"word_counts": as_word_counts({"ab": 2, "abc": 1}), "num_merges": 10}),
        Case("15 merges of a random dictionary", {"word_counts": random_word_counts(3), "num_merges": 15}),
        Case("30 merges of a random dictionary", {"word_counts": random_word_counts(4, words=20), "num_merges": 30}),
        Case("40 merges of the words of 20 stories", {"word_counts": story_word_counts(), "num_merges": 40}),
    ]


def _encode_cases() -> list[Case]:
    paper_merges = bpe.train_char_bpe(SENNRICH, 10)
    story_merges = bpe.train_char_bpe(story_word_counts(), 80)
    random_merges = bpe.train_char_bpe(random_word_counts(5), 12)
    return [
        Case("'lowest' with the paper's 10 merges", {"word": "lowest", "merges": paper_merges}),
        Case("'newer' with the paper's 10 merges", {"word": "newer", "merges": paper_merges}),
        Case("a word seen in training becomes one token: 'newest'", {"word": "newest", "merges": paper_merges}),
        Case("no merges: characters and </w>", {"word": "low", "merges": []}),
        Case("letters never seen stay single characters", {"word": "xylo", "merges": paper_merges}),
        Case("'wandered' with 80 merges learned from stories", {"word": "wandered", "merges": story_merges}),
        Case("'The' with 80 merges learned from stories", {"word": "The", "merges": story_merges}),
        Case("'cabbed' with merges of a random dictionary", {"word": "cabbed", "merges": random_merges}),
    ]


def _bytes_to_unicode_cases() -> list[Case]:
    return [Case("the whole table, bytes 0 to 255", {})]


def encode_word_reference(word: str, merges: list[tuple[str, str]]) -> tuple[str, ...]:
    """The symbols of ``word`` + ``</w>`` after the merges, applied earliest-learned first."""
    return bpe.apply_merges(tuple(word) + (END_OF_WORD,), [tuple(pair) for pair in merges])


ASSIGNMENT = Assignment(
    name="ch02", title="Chapter 2: tokenization and byte-pair encoding",
    case_sets=(
        graded_item("ch02.get_pair_counts", points=2, make_cases=_pair_count_cases,
                    reference=bpe.get_pair_counts, tolerance=EXACT,
                    hint="""A word adds its count once for every place a pair occurs in it, and only
                            neighbouring symbols form pairs. See "The paper's example, by hand" in
                            Chapter 2."""),
        graded_item("ch02.merge_pair", points=2, make_cases=_merge_pair_cases, reference=bpe.merge_pair,
                    tolerance=EXACT,
                    hint="""Compare whole symbols, scan left to right without overlaps, and let words that
                            become equal add their counts. See "The paper's example, by hand" in Chapter 2."""),
        graded_item("ch02.train_bpe", points=2, make_cases=_train_cases, reference=bpe.train_naive,
                    tolerance=EXACT,
                    hint="""Recount the pairs of the current dictionary at every step, break ties by the
                            smallest pair, and stop when no pair is left. See "Ties: why this list differs
                            from the paper's code from merge 6 on" in Chapter 2."""),
        graded_item("ch02.encode_word", points=2, make_cases=_encode_cases, reference=encode_word_reference,
                    tolerance=EXACT,
                    hint="""Start from the characters and the end-of-word marker, then apply the merges in
                            the order learned. See "Cutting a word the tokenizer never saw" in Chapter 2."""),
        graded_item("ch02.bytes_to_unicode", points=2, make_cases=_bytes_to_unicode_cases,
                    reference=bpe.bytes_to_unicode, tolerance=EXACT,
                    hint="""Three ranges of bytes keep their own character; the others get new characters
                            from 256 up, in byte order. See "Printable bytes" in Chapter 2."""),
    ),
    reference_modules=("course_lib.bpe",),
)
