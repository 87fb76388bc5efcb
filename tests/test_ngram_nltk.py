"""course_lib.ngram equals NLTK's nltk.lm, number for number.

NLTK is given exactly our work: the same padding (n-1 "<s>", one "</s>"), the same n-grams
(the order-n n-gram at every predicted position and its suffixes, i.e. what our model counts),
and the same vocabulary (tokens with count >= cutoff, "<unk>", "<s>", "</s>").
"""
from __future__ import annotations

import math
import random
from itertools import chain

import numpy as np
import pytest
from nltk.lm import MLE, KneserNeyInterpolated, Laplace, Lidstone, Vocabulary
from nltk.lm.preprocessing import padded_everygram_pipeline

from course_lib.ngram import NGramLM, count_ngrams

WORDS = [f"w{i}" for i in range(12)]
UNKNOWN = "never-seen-in-training"


def random_corpus(seed: int, sentences: int = 30) -> list[list[str]]:
    """Uniform words, lengths 0..8 (an empty sequence is allowed: it still predicts </s>)."""
    rng = random.Random(seed)
    return [[rng.choice(WORDS[:9]) for _ in range(rng.randint(0, 8))] for _ in range(sentences)]


def zipf_corpus(seed: int, sentences: int = 40) -> list[list[str]]:
    """Zipf-distributed word ranks: a few frequent words and a long tail of rare ones."""
    rng = np.random.default_rng(seed)
    return [[f"z{r}" for r in np.minimum(rng.zipf(1.4, size=rng.integers(1, 10)), 60)] for _ in range(sentences)]


CORPORA = {"random-0": random_corpus(0), "random-1": random_corpus(1), "zipf": zipf_corpus(2)}


def padded(tokens: list[str], order: int) -> list[str]:
    return ["<s>"] * (order - 1) + list(tokens) + ["</s>"]


def training_ngrams(corpus: list[list[str]], order: int) -> list[list[tuple[str, ...]]]:
    """At every predicted position (each real token and the final </s>), the n-gram ending there
    and all its suffixes: the counts our model keeps at orders n, n-1, ..., 1."""
    grams = []
    for tokens in corpus:
        p = padded(tokens, order)
        grams.append([tuple(p[i - m + 1:i + 1]) for i in range(order - 1, len(p)) for m in range(1, order + 1)])
    return grams


def nltk_vocabulary(corpus: list[list[str]], cutoff: int) -> Vocabulary:
    vocabulary = Vocabulary(chain.from_iterable(corpus), unk_cutoff=cutoff, unk_label="<unk>")
    vocabulary.update({"<s>": cutoff, "</s>": cutoff})  # always in V, as in ours
    return vocabulary


def nltk_model(smoothing: str, order: int, corpus: list[list[str]], cutoff: int, value: float):
    vocabulary = nltk_vocabulary(corpus, cutoff)
    if smoothing == "mle":
        model = MLE(order, vocabulary=vocabulary)
    elif smoothing == "laplace":
        model = Laplace(order, vocabulary=vocabulary)
    elif smoothing == "add_k":
        model = Lidstone(value, order, vocabulary=vocabulary)
    else:
        model = KneserNeyInterpolated(order, discount=value, vocabulary=vocabulary)
    model.fit(training_ngrams(corpus, order))
    return model


def our_model(smoothing: str, order: int, corpus: list[list[str]], cutoff: int, value: float) -> NGramLM:
    options = {"add_k": {"k": value}, "kneser_ney": {"discount": value, "interpolate_uniform": False}}
    return NGramLM(order, smoothing, unk_cutoff=cutoff, **options.get(smoothing, {})).fit(corpus)


def query_contexts(corpus: list[list[str]], order: int, vocabulary: tuple[str, ...], seed: int) -> list[tuple]:
    """Seen contexts, random (mostly unseen) ones, ones with unknown words and with <s>."""
    rng = random.Random(seed)
    width = order - 1
    seen = sorted({tuple(p[i - width:i]) for tokens in corpus
                   for p in [padded(tokens, order)] for i in range(width, len(p))})
    contexts = rng.sample(seen, min(12, len(seen)))
    pool = list(vocabulary) + [UNKNOWN]
    contexts += [tuple(rng.choice(pool) for _ in range(width)) for _ in range(8)]
    if width:
        contexts += [(UNKNOWN,) * width, ("<s>",) * width, ("<s>",) * (width - 1) + (UNKNOWN,)]
    return contexts


# (smoothing, k or d, order); NLTK's order-1 Kneser-Ney divides by zero (tested apart below).
CASES = [(s, v, order) for s, v in [("mle", 0.0), ("laplace", 1.0), ("add_k", 0.1), ("add_k", 2.5),
                                    ("kneser_ney", 0.1), ("kneser_ney", 0.75)]
         for order in (1, 2, 3, 4) if not (s == "kneser_ney" and order == 1)]


@pytest.mark.parametrize("corpus_name", sorted(CORPORA))
@pytest.mark.parametrize("smoothing,value,order", CASES)
@pytest.mark.parametrize("cutoff", [1, 2])
def test_prob_equals_nltk_score_bit_for_bit(corpus_name, smoothing, value, order, cutoff):
    corpus = CORPORA[corpus_name]
    reference = nltk_model(smoothing, order, corpus, cutoff, value)
    model = our_model(smoothing, order, corpus, cutoff, value)
    assert sorted(model.vocabulary) == sorted(reference.vocab)
    assert model.vocab_size == len(reference.vocab)

    mismatches = []
    for i, context in enumerate(query_contexts(corpus, order, model.vocabulary, seed=order)):
        try:  # the whole distribution at once for most contexts, prob() one word at a time for the rest
            distribution = model.next_token_distribution(context) if i % 3 else None
        except ValueError:  # MLE in a context never seen: refused here, prob() gives 0 as NLTK does
            assert smoothing == "mle"
            distribution = None
        for word in list(model.vocabulary) + [UNKNOWN]:
            theirs = reference.score(word, context if context else None)
            ours = distribution[word] if distribution and word in distribution else model.prob(word, context)
            if ours != theirs:
                mismatches.append((word, context, ours, theirs))
    assert not mismatches, f"{len(mismatches)} differences, e.g. {mismatches[:3]}"


@pytest.mark.parametrize("smoothing,value,order", CASES)
def test_perplexity_equals_nltk(smoothing, value, order):
    corpus, held_out = CORPORA["zipf"], zipf_corpus(7, sentences=12)
    reference = nltk_model(smoothing, order, corpus, 1, value)
    model = our_model(smoothing, order, corpus, 1, value)
    for data in (corpus, held_out):
        windows = [tuple(p[i - order + 1:i + 1]) for tokens in data
                   for p in [padded(tokens, order)] for i in range(order - 1, len(p))]
        theirs, ours = reference.perplexity(windows), model.perplexity(data)
        if math.isinf(theirs):
            assert math.isinf(ours)
        else:
            assert ours == pytest.approx(theirs, rel=1e-12)
    # MLE on its own training data is finite; on held-out data it meets unseen n-grams.
    if smoothing == "mle":
        assert math.isfinite(model.perplexity(corpus)) and math.isinf(model.perplexity(held_out))


def test_counts_equal_nltk_counter():
    corpus, order = CORPORA["zipf"], 3
    reference = nltk_model("mle", order, corpus, 1, 0.0)
    model = NGramLM(order).fit(corpus)
    for m in range(1, order + 1):
        ours = model.ngram_counts(m)
        theirs = {(*context, w): c for context, dist in reference.counts[m].items() for w, c in dist.items()} \
            if m > 1 else {(w,): c for w, c in reference.counts.unigrams.items()}
        assert ours == {g: c for g, c in theirs.items() if c > 0}
        assert ours == count_ngrams(corpus, m)


def test_unknown_words_map_to_unk_like_nltk():
    corpus = CORPORA["zipf"]
    reference = nltk_model("laplace", 2, corpus, 3, 1.0)
    model = NGramLM(2, "laplace", unk_cutoff=3).fit(corpus)
    rare = [w for w in set(chain.from_iterable(corpus)) if w not in model.vocabulary]
    assert rare, "the corpus should have words below the cutoff"
    assert model.count(("<unk>",)) == reference.counts.unigrams["<unk>"] > 0
    for word in rare[:5]:
        assert model.prob(word, ["z1"]) == model.prob("<unk>", ["z1"]) == reference.score(word, ("z1",))


# ---- NLTK's quirks, shown and kept apart ------------------------------------------------------

def test_nltk_everygram_pipeline_kneser_ney_does_not_sum_to_one_after_bos():
    """NLTK's own pipeline also counts the all-<s> k-grams at the start of each padded sentence;
    its Kneser-Ney then sums to more than 1 after <s> <s> at order >= 3. Counting only at
    predicted positions (ours, and NLTK fed our n-grams above) keeps the sum at 1."""
    corpus = [["a", "b"], ["b", "a", "a"], ["c"]]
    train, vocabulary_text = padded_everygram_pipeline(3, corpus)
    reference = KneserNeyInterpolated(3, discount=0.1)
    reference.fit(train, vocabulary_text)
    nltk_total = math.fsum(reference.score(w, ("<s>", "<s>")) for w in reference.vocab)
    assert nltk_total > 1 + 1e-3
    ours = NGramLM(3, "kneser_ney", discount=0.1, interpolate_uniform=False).fit(corpus)
    assert math.fsum(ours.next_token_distribution(["<s>", "<s>"]).values()) == pytest.approx(1.0, abs=1e-12)


def test_nltk_order_1_kneser_ney_fails_and_ours_is_refused_without_the_uniform_base():
    reference = KneserNeyInterpolated(1, discount=0.1, vocabulary=nltk_vocabulary(CORPORA["random-0"], 1))
    reference.fit(training_ngrams(CORPORA["random-0"], 1))
    with pytest.raises(ZeroDivisionError):
        reference.score("w1")
    with pytest.raises(ValueError, match="interpolate_uniform=True"):
        NGramLM(1, "kneser_ney", interpolate_uniform=False)


def test_nltk_kneser_ney_gives_unk_zero_when_training_had_none_and_ours_does_not_by_default():
    corpus = CORPORA["random-0"]
    reference = nltk_model("kneser_ney", 2, corpus, 1, 0.1)
    nltk_like = our_model("kneser_ney", 2, corpus, 1, 0.1)
    assert reference.score(UNKNOWN, ("w1",)) == nltk_like.prob(UNKNOWN, ["w1"]) == 0.0
    assert math.isinf(nltk_like.perplexity([["w1", UNKNOWN]]))
    textbook = NGramLM(2, "kneser_ney", discount=0.1).fit(corpus)
    assert textbook.prob(UNKNOWN, ["w1"]) > 0 and math.isfinite(textbook.perplexity([["w1", UNKNOWN]]))


def test_large_vocabulary_uses_hash_tables_and_still_equals_nltk():
    """A vocabulary of thousands of words puts the bigram and trigram tables in the hash-table
    regime (key spaces far beyond a direct-address table); the numbers must not change."""
    rng = np.random.default_rng(11)
    corpus = [[f"v{r}" for r in rng.integers(0, 3000, size=rng.integers(1, 12))] for _ in range(1500)]
    order = 3
    models = {s: our_model(s, order, corpus, 1, v) for s, v in [("mle", 0), ("add_k", 0.1), ("kneser_ney", 0.1)]}
    counts = models["mle"]._counts
    assert not counts.levels[3].ngrams.direct and not counts.contexts[2].direct
    rng_py = random.Random(3)
    seen = [tuple(padded(t, order)[i - 2:i + 1]) for t in corpus[:200] for i in range(2, len(t) + 3)]
    queries = rng_py.sample(seen, 150) + [(rng_py.choice(corpus[0] + ["<s>"]), f"v{rng_py.randrange(3100)}",
                                           f"v{rng_py.randrange(3100)}") for _ in range(100)]
    for smoothing, model in models.items():
        reference = nltk_model(smoothing, order, corpus, 1, {"mle": 0, "add_k": 0.1, "kneser_ney": 0.1}[smoothing])
        sample = queries if smoothing != "kneser_ney" else queries[::10]
        for *context, word in sample:
            assert model.prob(word, context) == reference.score(word, tuple(context)), (smoothing, context, word)
