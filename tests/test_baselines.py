"""The earlier chapters' best models as later chapters rebuild them: the Kneser-Ney model chosen is
the one a brute-force search over the candidates would choose, and the fixed-window model's loss is
the plain cross-entropy over every word and end of story."""
from __future__ import annotations

import math

import pytest
import torch

from course_lib.baselines import (best_kneser_ney, fixed_window_vocabulary, load_fixed_window, load_kneser_ney,
                                  train_fixed_window, word_types)
from course_lib.data.corpus import story_corpus
from course_lib.evaluate import cross_entropy
from course_lib.ngram import SPECIALS, NGramLM
from course_lib.recipes import checkpoint_path
from course_lib.recipes.ch01_ngrams import CORPUS
from course_lib.story_text import encode_stories


@pytest.fixture(scope="module")
def corpus():
    return story_corpus(train_stories=120, validation_stories=30, test_stories=30, seed=4)


def test_best_kneser_ney_is_the_candidate_with_the_lowest_validation_loss(corpus):
    train, validation = corpus.tokens("train"), corpus.tokens("validation")
    orders, discounts = (1, 2, 3), (0.3, 0.9)
    losses = {(n, d): NGramLM(n, "kneser_ney", discount=d).fit(train).cross_entropy(validation)
              for n in orders for d in discounts}
    best = best_kneser_ney(train, validation, orders, discounts)
    assert (best.order, best.discount) == min(losses, key=losses.get)
    assert best.cross_entropy(validation) == min(losses.values())
    assert best.smoothing == "kneser_ney"


def test_best_kneser_ney_needs_a_candidate(corpus):
    with pytest.raises(ValueError, match="at least one order and one discount"):
        best_kneser_ney(corpus.tokens("train"), corpus.tokens("validation"), orders=(), discounts=(0.5,))


def test_the_fixed_window_baseline_learns_and_measures_every_word_and_end_of_story(corpus):
    train, validation = corpus.tokens("train"), corpus.tokens("validation")
    word_types = NGramLM(2, "mle").fit(train).vocabulary[len(SPECIALS):]
    baseline = train_fixed_window(train, validation, word_types, seed=1, max_steps=400)

    contexts, targets = baseline.examples(validation)
    assert len(targets) == sum(len(story) + 1 for story in validation)  # every word and each </s>
    assert contexts.shape == (len(targets), 5)
    bos = baseline.vocabulary.special_id("<s>")
    first = validation[0]
    assert contexts[0].tolist() == [bos] * 5  # the first word is predicted from <s> padding alone
    assert targets[0] == baseline.vocabulary.encode([first[0]])[0]

    with torch.no_grad():
        log_probabilities = torch.log_softmax(baseline.model(contexts), dim=-1)
    expected = -float(log_probabilities[torch.arange(len(targets)), targets].mean())
    measured = cross_entropy(baseline.model, encode_stories(validation, baseline.vocabulary))
    assert measured == pytest.approx(expected, rel=1e-6)
    assert measured < 0.6 * math.log(len(baseline.vocabulary))  # far below uniform
    assert baseline.history.best_step > 0 and not baseline.model.training


def test_the_committed_kneser_ney_checkpoint_is_the_model_best_kneser_ney_fits():
    corpus = story_corpus(**CORPUS)
    fitted = best_kneser_ney(corpus.tokens("train"), corpus.tokens("validation"))
    loaded = load_kneser_ney()
    assert (loaded.order, loaded.discount, loaded.vocabulary) == (fitted.order, fitted.discount, fitted.vocabulary)
    for m in range(1, fitted.order + 1):
        assert loaded.ngram_counts(m) == fitted.ngram_counts(m)
    assert loaded.cross_entropy(corpus.tokens("test")) == fitted.cross_entropy(corpus.tokens("test"))
    assert checkpoint_path("ch01_kneser_ney").stat().st_size < 500_000


@pytest.mark.parametrize("smoothing", ["mle", "add_k", "interpolated", "kneser_ney"])
def test_an_ngram_model_saved_as_integer_arrays_comes_back_with_the_same_probabilities(smoothing, corpus, tmp_path):
    train, test = corpus.tokens("train"), corpus.tokens("test")
    model = NGramLM(3, smoothing, k=0.5, unk_cutoff=2).fit(train)
    path = model.save(tmp_path / "model.safetensors", {"note": "test"})
    loaded, metadata = NGramLM.load(path)
    assert metadata["note"] == "test"
    assert loaded.vocabulary == model.vocabulary and loaded.ngram_counts(2) == model.ngram_counts(2)
    assert loaded.next_token_distribution(train[0][:2]) == model.next_token_distribution(train[0][:2])
    assert loaded.cross_entropy(test) == model.cross_entropy(test)
    with pytest.raises(ValueError, match="no n-gram model"):
        NGramLM.load(checkpoint_path("ch03_fixed_window"))


def test_the_committed_fixed_window_checkpoint_reads_chapter_1s_words_in_chapter_1s_ids():
    corpus = story_corpus(**CORPUS)
    model, vocabulary, metadata = load_fixed_window()
    assert vocabulary == fixed_window_vocabulary(load_kneser_ney().vocabulary[len(SPECIALS):])
    assert vocabulary == fixed_window_vocabulary(word_types(corpus.tokens("train")))
    assert model.vocab_size == len(vocabulary) and not model.training
    assert metadata["best_step"] == metadata["val_steps"][metadata["val_loss"].index(min(metadata["val_loss"]))]
    validation = cross_entropy(model, encode_stories(corpus.tokens("validation"), vocabulary))
    assert validation == pytest.approx(min(metadata["val_loss"]), abs=1e-4)  # what training measured
    assert checkpoint_path("ch03_fixed_window").stat().st_size < 300_000
