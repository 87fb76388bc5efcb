"""Chapter 8's measures of generated stories, against hand counts and brute force."""
from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from course_lib.data.program import longest_possible_prefix, prefix_logprob_of
from course_lib.data.stories import default_program, generate_stories
from course_lib.generated_text import (distinct_ngrams, first_break, first_sentence_entropy, generator_log_prob,
                                       ngram_kl, repetition_rate, sentences)

STORIES = [story.tokens for story in generate_stories(30, seed=11)]


def test_sentences_end_at_full_stops_and_question_marks():
    assert sentences("a b . c ? d".split()) == [("a", "b", "."), ("c", "?"), ("d",)]
    assert sentences([]) == []


def test_the_generator_scores_its_own_stories_exactly_and_refuses_others():
    for story in generate_stories(5, seed=3):
        assert generator_log_prob(story.tokens) == pytest.approx(story.logprob, abs=1e-12)
    assert generator_log_prob(STORIES[0][:-1]) == -math.inf      # cut before its last full stop


def _first_break_by_every_prefix(story):
    """The brute-force answer: the first length whose prefix the generator cannot write, minus 1."""
    write = default_program().tell
    for length in range(1, len(story) + 1):
        if prefix_logprob_of(write, story[:length]) == -math.inf:
            return length - 1
    return None


def test_the_first_break_is_the_first_impossible_prefix():
    rng = random.Random(0)
    words = sorted({word for story in STORIES for word in story})
    for story in STORIES[:8]:
        i = rng.randrange(len(story))
        spoiled = story[:i] + [rng.choice(words)] + story[i:]
        assert first_break(spoiled) == _first_break_by_every_prefix(spoiled)
    assert first_break(STORIES[0]) is None
    assert first_break(STORIES[0][:10]) is None          # a possible beginning
    assert first_break(["Zebra"]) == 0
    assert longest_possible_prefix(default_program().tell, STORIES[1] + ["The"]) == len(STORIES[1])


def test_distinct_ngrams_by_hand():
    assert distinct_ngrams([["a", "b", "a", "b"]], 2) == pytest.approx(2 / 3)    # ab, ba, ab
    assert distinct_ngrams([["a", "b"], ["a", "b"]], 2) == pytest.approx(1 / 2)
    assert distinct_ngrams([["a", "b", "c"]], 1) == 1.0
    with pytest.raises(ValueError, match="no 3-grams"):
        distinct_ngrams([["a", "b"]], 3)


def test_first_sentence_entropy_by_hand():
    same = [["Hi", "."], ["Hi", ".", "Bye", "."]]
    assert first_sentence_entropy(same) == 0.0
    four = [[w, "."] for w in "abcd"]
    assert first_sentence_entropy(four) == pytest.approx(2.0)
    three_to_one = [["a", "."]] * 3 + [["b", "."]]
    assert first_sentence_entropy(three_to_one) == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))


def test_repetition_rate_counts_repeats_within_a_story_only():
    assert repetition_rate([["a", ".", "a", ".", "b", ".", "a", "."]]) == pytest.approx(2 / 4)
    assert repetition_rate([["a", "."], ["a", "."]]) == 0.0


def test_ngram_kl_against_its_definition():
    sample, reference = STORIES[:10], STORIES[10:]
    got = ngram_kl(sample, reference, n=2, smoothing=0.5)
    q = Counter(g for s in sample for g in zip(["<s>", *s], [*s, "</s>"]))
    p = Counter(g for s in reference for g in zip(["<s>", *s], [*s, "</s>"]))
    grams = set(q) | set(p)
    q_total, p_total = sum(q.values()), sum(p.values()) + 0.5 * len(grams)
    expected = sum(c / q_total * math.log(c / q_total * p_total / (p[g] + 0.5)) for g, c in q.items())
    assert got == pytest.approx(expected, rel=1e-12)
    assert ngram_kl(sample, sample, n=1) == pytest.approx(0.0, abs=0.02)     # only the smoothing separates them
    assert ngram_kl(sample, reference) < ngram_kl([["She", "She", "She"]] * 10, reference)


@pytest.mark.parametrize("call", [lambda: distinct_ngrams("a b", 2), lambda: repetition_rate([["a", 1]]),
                                  lambda: first_sentence_entropy(["a", "b"]), lambda: ngram_kl([["a"]], [["a"]], 0)])
def test_bad_input_gets_a_clear_error(call):
    with pytest.raises(ValueError, match="must be"):
        call()
