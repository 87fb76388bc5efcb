"""Chapter 10's explorer: the model's probabilities are the model's, the generator's multiply to the
story's exact probability, a word the generator cannot write gets 0 and NaN after it, bad input
gets a message."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import math

import pytest
import torch
from matplotlib import pyplot as plt

from course_lib.data.stories import generate_stories, prefix_logprob, story_logprob
from course_lib.data.text import word_tokenize
from course_lib.decoding import greedy
from course_lib.recipes import load_trained
from course_lib.recipes.ch05_lstm_gru import story_vocabulary
from course_lib.widgets.model_vs_generator import (SHOWN_WORDS, compare_continuation, comparison_figure,
                                                   continuation_explorer, generator_next_word_probabilities)


@pytest.fixture(scope="module")
def trained():
    model, _ = load_trained("ch07_transformer")
    return model, story_vocabulary()


@pytest.fixture(scope="module")
def story():
    return word_tokenize(generate_stories(1, seed=5)[0].text)


def test_the_generator_probabilities_multiply_to_the_storys_probability(story):
    prompt, rest = story[:6], story[6:] + ["</s>"]
    probabilities = generator_next_word_probabilities(prompt, rest)
    total = prefix_logprob(" ".join(prompt)) + sum(math.log(p) for p in probabilities)
    assert total == pytest.approx(story_logprob(" ".join(story)), abs=1e-9)
    assert all(0 < p <= 1 for p in probabilities)


def test_a_word_the_generator_cannot_write_gets_zero_and_nan_after(story):
    probabilities = generator_next_word_probabilities(story[:6], ["banana", ".", "</s>"])
    assert probabilities[0] == 0.0 and all(math.isnan(p) for p in probabilities[1:])
    with pytest.raises(ValueError, match="never begins"):
        generator_next_word_probabilities(["banana"], ["."])


def test_the_model_probabilities_are_the_models_own(trained, story):
    model, vocabulary = trained
    comparison = compare_continuation(model, vocabulary, story[:6], continuation=story[6:12])
    ids = [vocabulary.special_id("<s>"), *vocabulary.encode(story[:12])]
    with torch.no_grad():
        log_probs = model.sequence_log_probs(torch.tensor([ids[:-1]]))[0]
    expected = [log_probs[t, ids[t + 1]].exp().item() for t in range(6, 12)]
    assert comparison.model_probabilities == pytest.approx(expected, rel=1e-5)
    assert comparison.continuation == tuple(story[6:12])


def test_greedy_continuation_is_the_decoders_and_ends_the_story(trained):
    model, vocabulary = trained
    comparison = compare_continuation(model, vocabulary, "Once upon a time", method="greedy", max_tokens=40)
    ids = [vocabulary.special_id("<s>"), *vocabulary.encode("Once upon a time".split())]
    expected = vocabulary.decode(greedy(model, ids, max_tokens=40, stop_ids=[vocabulary.special_id("</s>")])[0])
    assert list(comparison.continuation[:len(expected)]) == expected
    figure = comparison_figure(comparison)
    assert len(figure.axes[0].patches) == 2 * min(len(comparison.continuation), SHOWN_WORDS)
    plt.close(figure)


def test_the_explorer_switches_models_and_reports_bad_prompts(trained):
    model, vocabulary = trained
    cnn, _ = load_trained("ch07_cnn")
    explorer = continuation_explorer({"Transformer": model, "CNN": cnn}, vocabulary)
    first = explorer.comparison
    assert first is not None and "generator" in explorer.view.value
    explorer.seed.value = 3
    assert explorer.comparison != first
    explorer.model.value = "CNN"
    assert explorer.comparison is not None
    explorer.prompt.value = "Once upon a zebra"
    assert explorer.comparison is None and "zebra" in explorer.message
    with pytest.raises(ValueError, match="method"):
        compare_continuation(model, vocabulary, "Once upon a time", method="beam")
