"""Chapter 1 exercises: n-gram language models."""
from __future__ import annotations

import math
import random

from course_lib import ngram
from course_lib.grading.cases import Assignment, Case, graded_item
from course_lib.grading.policies import EXACT, FLOAT64_SAME_ORDER

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "red", "big", "saw", "it"]

TOY_CORPUS = [
    ["the", "cat", "sat", "on", "the", "mat"],
    ["the", "dog", "sat"],
    ["a", "cat", "saw", "the", "dog"],
]


def random_corpus(seed: int, sentences: int = 6, max_length: int = 8) -> list[list[str]]:
    """Small corpora with Zipf-like word frequencies, so some n-grams repeat and most do not."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]
    return [rng.choices(WORDS, weights, k=rng.randint(1, max_length)) for _ in range(sentences)]


def _count_cases() -> list[Case]:
    return [
        Case("unigrams of one sentence", {"sequences": [["the", "cat", "sat"]], "n": 1}),
        Case("bigrams of the toy corpus", {"sequences": TOY_CORPUS, "n": 2}),
        Case("trigrams of the toy corpus (two <s> of padding)", {"sequences": TOY_CORPUS, "n": 3}),
        Case("4-grams of a random corpus", {"sequences": random_corpus(1), "n": 4}),
        Case("an empty sentence is still padded", {"sequences": [[], ["a"]], "n": 2}),
    ]


def _some_ngrams(counts: dict, rng: random.Random, k: int) -> list[tuple]:
    keys = sorted(counts)
    return [keys[i] for i in rng.sample(range(len(keys)), min(k, len(keys)))]


def _mle_cases() -> list[Case]:
    rng = random.Random(2)
    cases = []
    bigrams = ngram.count_ngrams(TOY_CORPUS, 2)
    cases.append(Case("P(cat | the) on the toy corpus", {"ngram": ("the", "cat"), "ngram_counts": bigrams}))
    cases.append(Case("P(</s> | sat): sentence end", {"ngram": ("sat", "</s>"), "ngram_counts": bigrams}))
    cases.append(Case("a word never seen after this context gets 0",
                      {"ngram": ("the", "sat"), "ngram_counts": bigrams}))
    trigrams = ngram.count_ngrams(random_corpus(3, sentences=10), 3)
    for gram in _some_ngrams(trigrams, rng, 3):
        cases.append(Case(f"P({gram[2]} | {gram[0]} {gram[1]}) on a random corpus",
                          {"ngram": gram, "ngram_counts": trigrams}))
    return cases


def _add_k_cases() -> list[Case]:
    bigrams = ngram.count_ngrams(TOY_CORPUS, 2)
    vocab_size = len({w for sentence in TOY_CORPUS for w in sentence}) + 1  # words and </s>
    trigrams = ngram.count_ngrams(random_corpus(4, sentences=10), 3)
    rng = random.Random(5)
    cases = [
        Case("Laplace (k=1), seen bigram", {"ngram": ("the", "cat"), "ngram_counts": bigrams,
                                             "vocab_size": vocab_size, "k": 1.0}),
        Case("Laplace (k=1), unseen bigram", {"ngram": ("dog", "cat"), "ngram_counts": bigrams,
                                               "vocab_size": vocab_size, "k": 1.0}),
        Case("k=0.1, seen bigram", {"ngram": ("sat", "on"), "ngram_counts": bigrams,
                                    "vocab_size": vocab_size, "k": 0.1}),
        Case("a context never seen gives the uniform 1/|V|",
             {"ngram": ("mat", "mat"), "ngram_counts": bigrams, "vocab_size": vocab_size, "k": 0.5}),
    ]
    for gram in _some_ngrams(trigrams, rng, 2):
        cases.append(Case(f"k=0.01 on a random trigram {gram}",
                          {"ngram": gram, "ngram_counts": trigrams, "vocab_size": len(WORDS) + 1, "k": 0.01}))
    return cases


def _perplexity_cases() -> list[Case]:
    rng = random.Random(6)
    return [
        Case("a uniform model over 10 tokens has perplexity 10", {"logprobs": [math.log(0.1)] * 7}),
        Case("a certain model has perplexity 1", {"logprobs": [0.0, 0.0, 0.0]}),
        Case("one token", {"logprobs": [math.log(0.25)]}),
        Case("random log-probabilities", {"logprobs": [math.log(rng.uniform(0.01, 1)) for _ in range(50)]}),
    ]


def _continuation_cases() -> list[Case]:
    return [
        Case("toy corpus bigrams", {"bigram_counts": ngram.count_ngrams(TOY_CORPUS, 2)}),
        Case("a word seen often but after one context only",
             {"bigram_counts": {("san", "francisco"): 50, ("the", "cat"): 1, ("a", "cat"): 1, ("my", "cat"): 1}}),
        Case("random corpus bigrams", {"bigram_counts": ngram.count_ngrams(random_corpus(7, sentences=20), 2)}),
    ]


ASSIGNMENT = Assignment(
    name="ch01", title="Chapter 1: n-gram language models",
    case_sets=(
        graded_item("ch01.count_ngrams", points=2, make_cases=_count_cases, reference=ngram.count_ngrams,
                    tolerance=EXACT,
                    hint="""The padding decides the first and last n-grams: count the <s> and </s> each
                            sequence gets, and key the counts by tuples. See "Estimating the probabilities
                            by counting" in Chapter 1."""),
        graded_item("ch01.mle_probability", points=2, make_cases=_mle_cases,
                    reference=ngram.mle_probability, tolerance=FLOAT64_SAME_ORDER,
                    hint="""The denominator counts every n-gram that shares the context, whatever word
                            follows it. See "Estimating the probabilities by counting" in Chapter 1."""),
        graded_item("ch01.add_k_probability", points=2, make_cases=_add_k_cases,
                    reference=ngram.add_k_probability, tolerance=FLOAT64_SAME_ORDER,
                    hint="""Smoothing pretends every word of the vocabulary was seen k more times after the
                            context, so the denominator grows too. See "Add-k (Laplace) smoothing" in
                            Chapter 1."""),
        graded_item("ch01.perplexity", points=1, make_cases=_perplexity_cases,
                    reference=ngram.perplexity_from_logprobs, tolerance=FLOAT64_SAME_ORDER,
                    hint="""Perplexity comes from the average log-probability per token, not the sum; mind
                            the sign. See "Perplexity" in Chapter 1."""),
        graded_item("ch01.continuation_probability", points=2, make_cases=_continuation_cases,
                    reference=ngram.continuation_probability, tolerance=FLOAT64_SAME_ORDER,
                    hint="""Count the distinct words each word follows, not how often it occurs. See
                            "Kneser-Ney smoothing" in Chapter 1."""),
    ),
    reference_modules=("course_lib.ngram",),
)
