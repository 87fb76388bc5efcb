"""Speed of course_lib.ngram against nltk.lm on the same work.

Both sides get the same training sequences, the same vocabulary (tokens seen >= 1 time plus
"<unk>", "<s>", "</s>") and the same n-grams (the order-n n-gram at every predicted position and
its suffixes). Fitting is counting, shared by every smoothing, so it is timed once per library;
scoring is the perplexity of held-out sequences, timed per smoothing. NLTK's Kneser-Ney scans
every higher-order context for each continuation count, so it is timed on the first
``--kn-tokens`` held-out positions and extrapolated (said so in the output).

    .venv/bin/python benchmarks/bench_ngram.py [--train-tokens 1000000] [--test-tokens 200000]
"""
from __future__ import annotations

import argparse
import math
import time
from itertools import chain

import numpy as np
from nltk.lm import MLE, KneserNeyInterpolated, Laplace, Vocabulary
from nltk.lm.counter import NgramCounter

from course_lib.ngram import NGramLM


def zipf_sequences(n_tokens: int, seed: int, vocabulary: int = 20_000) -> list[list[str]]:
    """Sentences of Zipf-distributed words (exponent 1.1), lengths 5..30."""
    rng = np.random.default_rng(seed)
    ranks = np.minimum(rng.zipf(1.1, size=n_tokens), vocabulary)
    words = [f"w{r}" for r in ranks.tolist()]
    sequences, start = [], 0
    while start < n_tokens:
        length = int(rng.integers(5, 31))
        sequences.append(words[start:start + length])
        start += length
    return sequences


def story_sequences(n_tokens: int, seed: int) -> list[list[str]] | None:
    """Stories of the course corpus, one sequence per story, about n_tokens word tokens in all."""
    try:
        from course_lib.data.stories import generate_stories
        from course_lib.data.text import word_tokenize

        first = [word_tokenize(story.text) for story in generate_stories(50, seed=seed)]
        per_story = max(1, sum(map(len, first)) // len(first))
        return [word_tokenize(story.text) for story in generate_stories(n_tokens // per_story, seed=seed)]
    except (ImportError, AttributeError):  # no story generator in this checkout
        return None


def predicted_ngrams(sequences: list[list[str]], order: int):
    """What our model counts: at each predicted position, the n-gram ending there and its suffixes."""
    for tokens in sequences:
        padded = ["<s>"] * (order - 1) + tokens + ["</s>"]
        yield [tuple(padded[i - m + 1:i + 1]) for i in range(order - 1, len(padded)) for m in range(1, order + 1)]


def scored_windows(sequences: list[list[str]], order: int) -> list[tuple[str, ...]]:
    windows = []
    for tokens in sequences:
        padded = ["<s>"] * (order - 1) + tokens + ["</s>"]
        windows += [tuple(padded[i - order + 1:i + 1]) for i in range(order - 1, len(padded))]
    return windows


def timed(function, repeats: int = 1):
    """The result and the best wall-clock time of ``repeats`` calls (the least disturbed run)."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return result, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--train-tokens", type=int, default=1_000_000)
    parser.add_argument("--test-tokens", type=int, default=200_000)
    parser.add_argument("--kn-tokens", type=int, default=300, help="held-out positions NLTK's Kneser-Ney scores")
    parser.add_argument("--discount", type=float, default=0.1)
    parser.add_argument("--zipf", action="store_true", help="synthetic Zipf sentences instead of the stories")
    args = parser.parse_args()
    n = args.order

    train = None if args.zipf else story_sequences(args.train_tokens, seed=0)
    source = "story corpus (one sequence per story)"
    if train is None:
        train, source = zipf_sequences(args.train_tokens, seed=0), "Zipf(1.1) synthetic sentences"
        test = zipf_sequences(args.test_tokens, seed=1)
    else:
        test = story_sequences(args.test_tokens, seed=1)
    n_train = sum(map(len, train)) + len(train)
    n_test = sum(map(len, test)) + len(test)
    print(f"data: {source}; order {n}; {n_train:,} training and {n_test:,} held-out predicted tokens")

    # ---- fit: vocabulary and counts (the same for every smoothing) ----
    ours, our_fit = timed(lambda: NGramLM(n, "mle").fit(train), repeats=3)
    models = {
        "mle": ours,
        "laplace": NGramLM(n, "laplace").fit(train),
        "kneser_ney": NGramLM(n, "kneser_ney", discount=args.discount, interpolate_uniform=False).fit(train),
    }

    def nltk_fit():
        vocabulary = Vocabulary(chain.from_iterable(train), unk_label="<unk>")
        vocabulary.update({"<s>": 1, "</s>": 1})
        counter = NgramCounter()
        counter.update(vocabulary.lookup(sentence) for sentence in predicted_ngrams(train, n))
        return vocabulary, counter

    (vocabulary, counter), nltk_fit_time = timed(nltk_fit)
    assert len(vocabulary) == ours.vocab_size, (len(vocabulary), ours.vocab_size)
    print(f"\n{'':22}{'course_lib':>12}{'nltk.lm':>12}{'speed-up':>10}")
    print(f"{'fit (count)':22}{our_fit:11.3f}s{nltk_fit_time:11.3f}s{nltk_fit_time / our_fit:9.0f}x")

    reference = {
        "mle": MLE(n, vocabulary=vocabulary, counter=counter),
        "laplace": Laplace(n, vocabulary=vocabulary, counter=counter),
        "kneser_ney": KneserNeyInterpolated(n, discount=args.discount, vocabulary=vocabulary, counter=counter),
    }
    # NLTK's perplexity takes n-gram tuples, ours the token sequences: the clock runs on scoring
    # alone for NLTK (the tuples are made beforehand), on padding + ids + scoring for ours.
    windows = scored_windows(test, n)
    for name, model in models.items():
        ours_ppl, our_time = timed(lambda: model.perplexity(test), repeats=5)
        if name == "kneser_ney":
            subset = windows[:args.kn_tokens]
            theirs, nltk_time = timed(lambda: [reference[name].score(g[-1], g[:-1]) for g in subset])
            nltk_time *= len(windows) / len(subset)
            mine = [model.prob(g[-1], g[:-1]) for g in subset]
            worst = max(abs(a - b) / b if b else abs(a) for a, b in zip(mine, theirs))
            note = f"  (NLTK timed on {len(subset)} positions, extrapolated; max rel. diff {worst:.1e})"
        else:
            theirs_ppl, nltk_time = timed(lambda: reference[name].perplexity(windows), repeats=2)
            same = (math.isinf(ours_ppl) and math.isinf(theirs_ppl)) or math.isclose(ours_ppl, theirs_ppl, rel_tol=1e-9)
            note = f"  (perplexity {ours_ppl:.4g} vs {theirs_ppl:.4g}: {'equal' if same else 'DIFFERENT'})"
        print(f"{'score ' + name:22}{our_time:11.3f}s{nltk_time:11.3f}s{nltk_time / our_time:9.0f}x{note}")
    print(f"\nour scoring rate: {n_test / our_time:,.0f} tokens/s (Kneser-Ney); "
          f"fit rate: {n_train / our_fit:,.0f} tokens/s")
    print("course_lib is timed from token lists (padding, ids, windows included); nltk.lm's perplexity "
          "is given its n-gram tuples ready-made. Times are the best of 5 (ours) or 2 (NLTK) runs.")


if __name__ == "__main__":
    main()
