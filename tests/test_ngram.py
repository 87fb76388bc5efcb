"""course_lib.ngram: reference functions, the model's laws, brute force and bad input.

NLTK equality lives in test_ngram_nltk.py; here the references are explicit formulas written
out independently from plain dict counts, brute-force enumeration, and hypothesis properties.
"""
from __future__ import annotations

import math
from collections import Counter
from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.util import ngrams as nltk_ngrams

from course_lib.ngram import (
    SMOOTHINGS,
    HeldOutCount,
    NGramLM,
    add_k_probability,
    continuation_probability,
    count_ngrams,
    held_out_counts,
    mle_probability,
    pad_sequence,
    perplexity_from_logprobs,
)
from course_lib.ngram_counts import KeyTable, count_keys

TOY = [["the", "cat", "sat", "on", "the", "mat"], ["the", "dog", "sat"], ["a", "cat", "saw", "the", "dog"]]
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


def zipf_corpus(seed: int, sentences: int = 40, tail: int = 30) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [[f"z{r}" for r in np.minimum(rng.zipf(1.5, size=rng.integers(0, 9)), tail)] for _ in range(sentences)]


# ---- the small reference functions -------------------------------------------------------------

def test_pad_sequence():
    assert pad_sequence(["a", "b"], 1) == ["a", "b", "</s>"]
    assert pad_sequence(["a", "b"], 3) == ["<s>", "<s>", "a", "b", "</s>"]
    assert pad_sequence([], 2) == ["<s>", "</s>"]


def test_count_ngrams_known_answer_and_nltk_ngrams():
    assert count_ngrams([["a", "b", "a"]], 2) == {("<s>", "a"): 1, ("a", "b"): 1, ("b", "a"): 1, ("a", "</s>"): 1}
    assert count_ngrams([[], ["a"]], 2) == {("<s>", "</s>"): 1, ("<s>", "a"): 1, ("a", "</s>"): 1}
    corpus = zipf_corpus(0)
    for n in (1, 2, 3, 4):
        expected = Counter()
        for tokens in corpus:
            expected.update(nltk_ngrams(["<s>"] * (n - 1) + tokens + ["</s>"], n))
        assert count_ngrams(corpus, n) == dict(expected)


def test_mle_probability_known_answers():
    bigrams = count_ngrams(TOY, 2)
    assert mle_probability(("the", "cat"), bigrams) == 1 / 4   # "the" is followed by cat, mat, dog, dog
    assert mle_probability(("the", "dog"), bigrams) == 2 / 4
    assert mle_probability(("the", "sat"), bigrams) == 0.0
    assert mle_probability(("sat", "</s>"), bigrams) == 1 / 2
    with pytest.raises(ValueError, match="never occurs"):
        mle_probability(("unicorn", "cat"), bigrams)


def test_add_k_probability_known_answers():
    bigrams = count_ngrams(TOY, 2)
    V = 11
    assert add_k_probability(("the", "cat"), bigrams, V) == (1 + 1) / (4 + V)
    assert add_k_probability(("the", "cat"), bigrams, V, k=0.5) == (1 + 0.5) / (4 + 0.5 * V)
    assert add_k_probability(("unicorn", "cat"), bigrams, V, k=0.3) == pytest.approx(1 / V, rel=1e-15)
    assert add_k_probability(("the", "cat"), bigrams, V, k=0) == mle_probability(("the", "cat"), bigrams)
    with pytest.raises(ValueError, match="0/0"):
        add_k_probability(("unicorn", "cat"), bigrams, V, k=0)


def test_perplexity_from_logprobs():
    assert perplexity_from_logprobs([math.log(0.1)] * 7) == pytest.approx(10.0, rel=1e-12)
    assert perplexity_from_logprobs(np.zeros(3)) == 1.0
    assert perplexity_from_logprobs(iter([math.log(0.5), math.log(0.125)])) == pytest.approx(4.0, rel=1e-12)
    assert perplexity_from_logprobs([math.log(0.5), -math.inf]) == math.inf
    with pytest.raises(ValueError, match="empty"):
        perplexity_from_logprobs([])
    with pytest.raises(ValueError, match="NaN"):
        perplexity_from_logprobs([math.nan])
    with pytest.raises(TypeError):
        perplexity_from_logprobs(["a"])


def test_continuation_probability_known_answer():
    counts = {("san", "francisco"): 50, ("the", "cat"): 1, ("a", "cat"): 1, ("my", "cat"): 1, ("x", "y"): 0}
    p = continuation_probability(counts)
    assert p == {"francisco": 1 / 4, "cat": 3 / 4}
    toy = continuation_probability(count_ngrams(TOY, 2))
    assert math.fsum(toy.values()) == pytest.approx(1.0, abs=1e-15)
    assert toy["dog"] == 1 / len([g for g, c in count_ngrams(TOY, 2).items() if c > 0])  # only after "the"


@pytest.mark.parametrize("call,error,message", [
    (lambda: count_ngrams(TOY, 0), ValueError, ">= 1"),
    (lambda: count_ngrams(TOY, 2.0), TypeError, "integer"),
    (lambda: count_ngrams([["a", 3]], 2), TypeError, "str"),
    (lambda: pad_sequence("the cat", 2), TypeError, "split"),
    (lambda: mle_probability(("a", "b"), {("a", "b", "c"): 1}), ValueError, "lengths"),
    (lambda: mle_probability(("a", "b"), {"ab": 1}), ValueError, "tuples"),
    (lambda: mle_probability("ab", {("a", "b"): 1}), TypeError, "tuple"),
    (lambda: mle_probability(("a", "b"), {("a", "b"): -1}), ValueError, "non-negative"),
    (lambda: add_k_probability(("a", "b"), {("a", "b"): 1}, 5, k=-1), ValueError, ">= 0"),
    (lambda: add_k_probability(("a", "b"), {("a", "b"): 1}, 0), ValueError, "vocab_size"),
    (lambda: continuation_probability({("a", "b", "c"): 1}), ValueError, "lengths"),
    (lambda: continuation_probability({("a", "b"): 0}), ValueError, "positive"),
])
def test_reference_functions_reject_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---- the model agrees with the reference functions ------------------------------------------

corpora = st.lists(st.lists(st.sampled_from("abcd"), max_size=6), min_size=1, max_size=8)


@PROPERTY_SETTINGS
@given(corpus=corpora, order=st.integers(1, 4))
def test_model_counts_and_probabilities_equal_the_reference_functions(corpus, order):
    mle = NGramLM(order).fit(corpus)
    for m in range(1, order + 1):
        assert mle.ngram_counts(m) == count_ngrams(corpus, m)
    counts = count_ngrams(corpus, order)
    laplace = NGramLM(order, "laplace").fit(corpus)
    add_k = NGramLM(order, "add_k", k=0.37).fit(corpus)
    contexts = {gram[:-1] for gram in counts} | {("b", "zzz", "a")[-(order - 1):] if order > 1 else ()}
    for h in contexts:
        seen = any(gram[:-1] == h for gram in counts)
        for w in mle.vocabulary:
            if seen:
                assert mle.prob(w, h) == mle_probability((*h, w), counts)
            assert laplace.prob(w, h) == add_k_probability((*h, w), counts, laplace.vocab_size)
            assert add_k.prob(w, h) == pytest.approx(add_k_probability((*h, w), counts, add_k.vocab_size, 0.37),
                                                     rel=1e-14)


@PROPERTY_SETTINGS
@given(corpus=corpora)
def test_kneser_ney_unigram_level_is_the_continuation_probability(corpus):
    model = NGramLM(2, "kneser_ney", discount=0.4, interpolate_uniform=False).fit(corpus)
    p_cont = continuation_probability(count_ngrams(corpus, 2))
    for w in model.vocabulary:  # "zzz" was never a context: alpha = 0, gamma = 1 down to P_cont
        assert model.prob(w, ["zzz"]) == p_cont.get(w, 0.0)


@PROPERTY_SETTINGS
@given(corpus=corpora, held_out=corpora, order=st.integers(1, 4), smoothing=st.sampled_from(SMOOTHINGS))
def test_vectorised_scores_equal_the_chain_rule_over_prob(corpus, held_out, order, smoothing):
    held_out = [[w if w != "d" else "unknown" for w in tokens] for tokens in held_out]
    model = NGramLM(order, smoothing).fit(corpus)
    per_token = []
    for tokens in held_out:
        padded = pad_sequence(tokens, order)
        logprobs = [model.logprob(w, padded[:i]) for i, w in enumerate(padded) if i >= order - 1]
        per_token += logprobs
        assert model.sequence_logprob(tokens) == pytest.approx(math.fsum(logprobs), rel=1e-12, abs=1e-12)
    assert model.perplexity(held_out) == pytest.approx(perplexity_from_logprobs(per_token), rel=1e-12)
    assert model.cross_entropy(held_out) == pytest.approx(-math.fsum(per_token) / len(per_token), rel=1e-12)


# ---- every next-token distribution sums to 1 ------------------------------------------------

TRAIN = zipf_corpus(3)
SMOOTHING_OPTIONS = [("laplace", {}), ("add_k", {"k": 0.05}), ("interpolated", {}), ("interpolated", "flat"),
                     ("kneser_ney", {}), ("kneser_ney", {"discount": 1.0}),
                     ("kneser_ney", {"discount": 0.1, "interpolate_uniform": False})]
MODELS = [NGramLM(n, s, **({"lambdas": [0.9 / n] * n + [0.1]} if options == "flat" else options)).fit(TRAIN)
          for n in (1, 2, 3, 4) for s, options in SMOOTHING_OPTIONS
          if n > 1 or options == "flat" or options.get("interpolate_uniform", True)]
CONTEXT_TOKENS = st.sampled_from(sorted({w for t in TRAIN for w in t})[:12] + ["<s>", "</s>", "<unk>", "unseen"])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(model=st.sampled_from(MODELS), context=st.lists(CONTEXT_TOKENS, max_size=5))
def test_next_token_distribution_sums_to_one_for_any_context(model, context):
    distribution = model.next_token_distribution(context)
    assert list(distribution) == list(model.vocabulary)
    assert all(p >= 0 for p in distribution.values())
    assert math.fsum(distribution.values()) == pytest.approx(1.0, abs=1e-9)
    if model.smoothing != "kneser_ney" or model.interpolate_uniform:
        assert min(distribution.values()) > 0, "smoothing leaves no zero probability"


def test_mle_distribution_sums_to_one_in_every_seen_context():
    for order in (1, 2, 3):
        model = NGramLM(order).fit(TRAIN)
        for gram in count_ngrams(TRAIN, order):
            assert math.fsum(model.next_token_distribution(gram[:-1]).values()) == pytest.approx(1.0, abs=1e-12)


# ---- independent explicit formulas ----------------------------------------------------------

def _context_total(counts: dict, h: tuple) -> int:
    return sum(c for g, c in counts.items() if g[:-1] == h)


def interpolated_reference(corpus, lambdas, word, context, vocabulary):
    """sum over orders m with a seen context of lambda_m c(h_m, w) / c(h_m), + lambda_0/|V|,
    over the sum of the weights used."""
    n = len(lambdas) - 1
    word = word if word in vocabulary else "<unk>"
    padded_context = (["<s>"] * n + list(context))[len(context) + 1:]   # the last n-1 tokens
    context = tuple(c if c in vocabulary else "<unk>" for c in padded_context)
    numerator, weight = lambdas[n] / len(vocabulary), lambdas[n]
    for m in range(1, n + 1):
        counts = count_ngrams(corpus, m)
        h = context[len(context) - (m - 1):] if m > 1 else ()
        c_h = _context_total(counts, h)
        if c_h:
            numerator += lambdas[n - m] * counts.get((*h, word), 0) / c_h
            weight += lambdas[n - m]
    return numerator / weight


def kneser_ney_reference(corpus, order, d, word, context, vocabulary, uniform=True):
    """Interpolated Kneser-Ney (Chen & Goodman 1998; Jurafsky & Martin ch. 3) from plain dicts."""
    counts = {m: count_ngrams(corpus, m) for m in range(1, order + 1)}
    word = word if word in vocabulary else "<unk>"
    context = tuple(c if c in vocabulary else "<unk>" for c in (["<s>"] * order + list(context)))
    context = context[len(context) - (order - 1):] if order > 1 else ()

    def c_kn(m, gram):
        if m == order:
            return counts[m].get(gram, 0)
        return len({g[0] for g, c in counts[m + 1].items() if g[1:] == gram and c > 0})  # N1+(. gram)

    def p(m, h, w):
        if m == 0:
            return 1 / len(vocabulary)
        c = {v: c_kn(m, (*h, v)) for v in vocabulary}
        total = sum(c.values())
        if m == 1 and not uniform:
            return c[w] / total
        if total == 0:
            return p(m - 1, h[1:], w)
        gamma = d * sum(1 for v in vocabulary if c[v] > 0) / total
        return max(c[w] - d, 0) / total + gamma * p(m - 1, h[1:], w)

    return p(order, context, word)


SMALL = zipf_corpus(5, sentences=15, tail=12)


@pytest.mark.parametrize("order,lambdas", [(1, None), (2, (0.6, 0.3, 0.1)), (3, None), (3, (0.5, 0.0, 0.3, 0.2)),
                                           (4, (0.4, 0.3, 0.2, 0.05, 0.05))])
def test_interpolated_equals_the_explicit_formula(order, lambdas):
    model = NGramLM(order, "interpolated", lambdas=lambdas).fit(SMALL)
    lambdas = model.lambdas
    vocabulary = set(model.vocabulary)
    contexts = [g[:-1] for g in list(count_ngrams(SMALL, order))[:8]] + [("z1", "unseen", "z2")[:order - 1], ("z9",)]
    for context in contexts:
        for word in list(model.vocabulary) + ["unseen"]:
            expected = interpolated_reference(SMALL, lambdas, word, context, vocabulary)
            assert model.prob(word, context) == pytest.approx(expected, rel=1e-12)


def test_default_lambdas():
    assert NGramLM(3, "interpolated").lambdas == pytest.approx((0.99 * 8 / 14, 0.99 * 4 / 14, 0.99 * 2 / 14, 0.01))
    assert sum(NGramLM(5, "interpolated").lambdas) == pytest.approx(1.0)


@pytest.mark.parametrize("order,d,uniform", [(order, d, uniform) for order in (1, 2, 3)
                                             for d, uniform in [(0.75, True), (0.3, True), (0.75, False)]
                                             if uniform or order > 1])   # order 1 needs the uniform base
def test_kneser_ney_equals_the_textbook_recursion(order, d, uniform):
    model = NGramLM(order, "kneser_ney", discount=d, interpolate_uniform=uniform).fit(SMALL)
    vocabulary = set(model.vocabulary)
    contexts = [g[:-1] for g in list(count_ngrams(SMALL, order))[:5]] + [("z2", "unseen")[2 - (order - 1):]]
    for context in contexts:
        for word in list(model.vocabulary)[:10] + ["unseen"]:
            expected = kneser_ney_reference(SMALL, order, d, word, context, vocabulary, uniform)
            assert model.prob(word, context) == pytest.approx(expected, rel=1e-12, abs=1e-300)


# ---- brute force: a proper distribution over finite sequences ----------------------------------

TINY = [["a", "b"], ["b"], ["a", "a", "b"], []]


@pytest.mark.parametrize("order,smoothing,options", [
    (order, smoothing, options) for order in (1, 2, 3)
    for smoothing, options in [("mle", {}), ("laplace", {}), ("add_k", {"k": 0.2}), ("interpolated", {}),
                               ("kneser_ney", {}), ("kneser_ney", {"interpolate_uniform": False})]
    if order > 1 or options.get("interpolate_uniform", True)])
def test_all_sequences_up_to_length_L_plus_the_tail_sum_to_one(order, smoothing, options):
    """sum_{|s| <= L} P(s </s>) + sum_{|s| = L+1} P(s as a prefix) = 1, by the chain rule over prob."""
    model = NGramLM(order, smoothing, **options).fit(TINY)
    alphabet = [w for w in model.vocabulary if w != "</s>"]   # <unk>, <s>, a, b
    L = 4
    finished, prefixes = [], {(): 1.0}
    for _ in range(L + 1):
        grown = {}
        for prefix, p in prefixes.items():
            if p == 0.0:
                continue  # unreachable (MLE): nothing below it has mass
            finished.append(p * model.prob("</s>", prefix))
            for w in alphabet:
                grown[prefix + (w,)] = p * model.prob(w, prefix)
        prefixes = grown
    assert math.fsum(finished) + math.fsum(prefixes.values()) == pytest.approx(1.0, abs=1e-12)
    # the vectorised scorer agrees with the chain rule on real sequences
    for tokens in product(["a", "b", "c"], repeat=3):
        chain_rule = math.prod(model.prob(w, tokens[:i]) for i, w in enumerate((*tokens, "</s>")))
        assert math.exp(model.sequence_logprob(list(tokens))) == pytest.approx(chain_rule, rel=1e-12, abs=1e-300)


def test_generate_known_answer_deterministic_and_in_vocabulary():
    only_one = NGramLM(2).fit([["a", "b", "c"]])
    assert all(only_one.generate(seed=s) == ["a", "b", "c"] for s in range(5))
    assert only_one.generate(max_tokens=2) == ["a", "b"]
    assert only_one.generate(context=["b"]) == ["c"]
    model = NGramLM(3, "kneser_ney").fit(TRAIN)
    samples = [model.generate(max_tokens=20, seed=s) for s in range(10)]
    assert samples == [model.generate(max_tokens=20, seed=s) for s in range(10)]
    assert len({tuple(s) for s in samples}) > 1
    for sample in samples:
        assert len(sample) <= 20 and "</s>" not in sample and set(sample) <= set(model.vocabulary)


def test_generate_samples_from_the_next_token_distribution():
    model = NGramLM(2, "laplace").fit(TINY)
    draws = Counter((model.generate(max_tokens=1, context=["a"], seed=s) or ["</s>"])[0] for s in range(3000))
    for w, p in model.next_token_distribution(["a"]).items():
        sigma = math.sqrt(3000 * p * (1 - p))
        assert abs(draws[w] - 3000 * p) < 5 * sigma + 1, (w, draws[w], 3000 * p)


# ---- vocabulary, unknown words and documented behaviour ---------------------------------------

def test_vocabulary_and_unknown_words():
    model = NGramLM(2, "laplace", unk_cutoff=2).fit([["a", "b", "a"], ["c", "a", "b"]])
    assert model.vocabulary == ("<unk>", "<s>", "</s>", "a", "b")
    assert model.vocab_size == 5
    assert model.count(("<unk>",)) == 1 and model.count(("a", "<unk>")) == 0 and model.count(("<s>", "<unk>")) == 1
    assert model.prob("c", ["<s>"]) == model.prob("never-seen", ["<s>"]) == model.prob("<unk>", ["<s>"]) == 2 / 7
    assert model.prob("b", ["x", "y", "a"]) == model.prob("b", ["a"])   # only the last n-1 tokens count
    assert model.prob("a") == model.prob("a", ["<s>"])                  # short contexts padded with <s>


def test_mle_unseen_ngram_gives_infinite_perplexity_and_unseen_context_prob_zero():
    model = NGramLM(2).fit(TOY)
    assert model.prob("cat", ["sat"]) == 0.0 and model.logprob("cat", ["sat"]) == -math.inf
    assert model.perplexity([["the", "cat", "sat"]]) < math.inf
    assert model.perplexity([["the", "sat"]]) == math.inf
    assert model.prob("cat", ["unicorn"]) == 0.0   # 0/0 context: 0, as NLTK's MLE.score
    with pytest.raises(ValueError, match="never occurs in training.*smoothing"):
        model.next_token_distribution(["unicorn"])


def test_refit_starts_afresh():
    model = NGramLM(2, "laplace").fit([["x", "y"]])
    model.fit(TOY)
    assert "x" not in model.vocabulary and model.ngram_counts() == count_ngrams(TOY, 2)


@pytest.mark.parametrize("call,error,message", [
    (lambda: NGramLM(0), ValueError, ">= 1"),
    (lambda: NGramLM(2, "good_turing"), ValueError, "mle, laplace, add_k, interpolated, kneser_ney"),
    (lambda: NGramLM(2, "add_k", k=0), ValueError, "k must be > 0"),
    (lambda: NGramLM(2, "laplace", k=0.5), ValueError, "add_k"),
    (lambda: NGramLM(2, "kneser_ney", discount=1.5), ValueError, r"\[0, 1\]"),
    (lambda: NGramLM(2, "interpolated", lambdas=[0.5, 0.5]), ValueError, "3 entries"),
    (lambda: NGramLM(2, "interpolated", lambdas=[0.5, 0.4, 0.2]), ValueError, "sum to 1"),
    (lambda: NGramLM(2, "interpolated", lambdas=[0.5, 0.5, 0.0]), ValueError, "lambda_0"),
    (lambda: NGramLM(2, "interpolated", lambdas=[1.2, -0.3, 0.1]), ValueError, "non-negative"),
    (lambda: NGramLM(2, unk_cutoff=0), ValueError, "unk_cutoff"),
    (lambda: NGramLM(1, "kneser_ney", interpolate_uniform=False), ValueError, "interpolate_uniform=True"),
    (lambda: NGramLM(2).prob("a"), ValueError, "not fitted"),
    (lambda: NGramLM(2).perplexity(TOY), ValueError, "not fitted"),
    (lambda: NGramLM(2).fit([]), ValueError, "empty"),
    (lambda: NGramLM(2).fit("the cat sat"), TypeError, "iterable of token lists"),
    (lambda: NGramLM(2).fit(["the cat", "sat"]), TypeError, "not one str; split it"),
    (lambda: NGramLM(2).fit([["a", 1]]), TypeError, "str"),
    (lambda: NGramLM(2).fit([["a", "</s>"]]), ValueError, "padding"),
    (lambda: NGramLM(2).fit(TOY).perplexity([]), ValueError, "empty"),
    (lambda: NGramLM(2).fit(TOY).perplexity([["<s>", "the"]]), ValueError, "padding"),
    (lambda: NGramLM(2).fit(TOY).perplexity([["the", None]]), TypeError, "str"),
    (lambda: NGramLM(2).fit(TOY).prob("cat", "the"), TypeError, "not one str"),
    (lambda: NGramLM(2).fit(TOY).prob(3, ["the"]), TypeError, "word"),
    (lambda: NGramLM(2).fit(TOY).count(("a", "b", "c")), ValueError, "length 1..2"),
    (lambda: NGramLM(2).fit(TOY).generate(max_tokens=-1), ValueError, "max_tokens"),
    (lambda: NGramLM(2).fit(TOY).generate(seed=-3), ValueError, "seed"),
    (lambda: NGramLM(2).fit(TOY).generate(context=["unicorn"]), ValueError, "smoothing"),
])
def test_model_rejects_bad_input_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---- the look-up machinery under the model -------------------------------------------------


@PROPERTY_SETTINGS
@given(keys=st.sets(st.integers(0, 2**40), max_size=300), queries=st.lists(st.integers(-2**20, 2**40), max_size=50),
       small_space=st.booleans())
def test_key_table_finds_exactly_the_stored_keys(keys, queries, small_space):
    keys = np.array(sorted(keys), dtype=np.int64)
    if small_space:  # direct-address table over a small key space
        keys = keys % 5000
        keys = np.unique(keys)
        queries = [q % 6000 - 500 for q in queries]
    table = KeyTable(keys, 5000 if small_space else 2**40 + 1)
    assert table.direct == small_space
    queries = np.array(queries + keys[:20].tolist(), dtype=np.int64)
    index, found = table.find(queries)
    assert found.tolist() == [q in set(keys.tolist()) for q in queries.tolist()]
    assert np.array_equal(keys[index[found]], queries[found])


@PROPERTY_SETTINGS
@given(keys=st.lists(st.integers(0, 10**6), min_size=1, max_size=200), key_space=st.sampled_from([10**6 + 1, 2**50]))
def test_count_keys_equals_numpy_unique(keys, key_space):
    keys = np.array(keys, dtype=np.int64)
    distinct, counts = np.unique(keys, return_counts=True)
    ours_distinct, ours_counts = count_keys(keys, key_space)
    assert np.array_equal(ours_distinct, distinct) and np.array_equal(ours_counts, counts)


def test_held_out_counts_by_hand():
    train = [["a", "b", "a", "b"], ["a", "c"]]  # (a b) twice; (<s> a) twice; the rest once
    held_out = [["a", "b"], ["c", "a"]]
    rows = held_out_counts(train, held_out, n=2, max_count=3)
    # c = 1: (b a), (b </s>), (a c), (c </s>): held out (b </s>) once, the others never
    # c = 2: (<s> a) once held out, (a b) once held out
    assert rows == [HeldOutCount(1, 4, 0.25, 0.75), HeldOutCount(2, 2, 1.0, 1.0)]
    assert held_out_counts(train, held_out, n=2, max_count=1) == rows[:1]


def test_held_out_counts_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_count"):
        held_out_counts([["a"]], [["a"]], max_count=0)
    with pytest.raises(TypeError, match="max_count"):
        held_out_counts([["a"]], [["a"]], max_count=1.5)
