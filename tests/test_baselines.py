"""The earlier chapters' best models as later chapters rebuild them: the Kneser-Ney model chosen is
the one a brute-force search over the candidates would choose, and the fixed-window model's loss is
the plain cross-entropy over every word and end of story."""
from __future__ import annotations

import math

import pytest
import torch

from course_lib.baselines import best_kneser_ney, train_fixed_window
from course_lib.data.corpus import story_corpus
from course_lib.ngram import SPECIALS, NGramLM


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
    assert baseline.cross_entropy(validation) == pytest.approx(expected, rel=1e-6)
    assert baseline.cross_entropy(validation) < 0.6 * math.log(len(baseline.vocabulary))  # far below uniform
    assert baseline.history.best_step > 0 and not baseline.model.training
