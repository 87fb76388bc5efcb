"""Chapter 9's masked-LM explorer: its top words are the model's own probabilities at the blank,
the objectives' views are those of course_lib.objectives, the figures draw, and a sentence the
model cannot read gets a message instead of a traceback."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from matplotlib import pyplot as plt

from course_lib.checks import ArgumentError
from course_lib.recipes import ch09_objectives as objectives
from course_lib.recipes.ch05_lstm_gru import story_vocabulary
from course_lib.widgets.masked_lm import (MASK, NO_LOSS, masked_lm_explorer, masked_lm_figure, masked_predictions,
                                          objective_views, objectives_figure)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return objectives.build_model().eval()


def test_the_top_words_are_the_models_probabilities_at_the_blank(model):
    vocabulary = story_vocabulary()
    table, = masked_predictions(model, vocabulary, "Mia had a [MASK] ball .", k=4)
    ids = [vocabulary.special_id("<s>")] + vocabulary.encode(["Mia", "had", "a"]) + [model.config.vocab_size - 1]
    ids += vocabulary.encode(["ball", "."]) + [vocabulary.special_id("</s>")]
    with torch.no_grad():
        p = model(torch.tensor([ids])).logits[0, 4].softmax(-1)
    best = vocabulary.id_to_token(int(p[4:-1].argmax()) + 4)
    assert table.rows[0][0] == best and table.rows[0][1] == pytest.approx(float(p[4:-1].max()), rel=1e-5)
    assert len(table.rows) == 4 and table.probabilities == sorted(table.probabilities, reverse=True)


def test_two_blanks_give_two_tables_and_bad_sentences_are_named(model):
    vocabulary = story_vocabulary()
    assert len(masked_predictions(model, vocabulary, "[MASK] had a [MASK] ball .")) == 2
    with pytest.raises(ArgumentError, match="no \\[MASK\\]"):
        masked_predictions(model, vocabulary, "Mia had a ball .")
    with pytest.raises(ArgumentError, match="does not know the words \\['zebra'\\]"):
        masked_predictions(model, vocabulary, "Mia had a [MASK] zebra .")


def test_objective_views_follow_the_objectives():
    views = {view.name.split(" (")[0]: view for view in objective_views("Mia had a red ball in the park .", seed=3)}
    causal = views["causal LM"]
    assert causal.inputs[1:] == causal.targets[:-1]
    prefix = views["prefix LM"]
    assert prefix.targets[: 3] == (NO_LOSS,) * 3 and NO_LOSS not in prefix.targets[4:]
    masked = views["masked LM"]
    assert all((t == NO_LOSS) == (i == w) for i, w, t in zip(masked.inputs, causal.inputs + (".",), masked.targets)
               if i != MASK)
    span = views["span corruption"]
    assert span.inputs.count("<S0>") == 1 and span.targets[0] == "<S0>"


def test_the_explorer_updates_and_shows_a_message_for_unknown_words(model):
    explorer = masked_lm_explorer(model, story_vocabulary())
    assert explorer.tables and explorer.views
    explorer.sentence.value = "The zebra had a [MASK] ball ."
    assert explorer.tables == [] and "does not know" in explorer.predictions_view.value
    explorer.sentence.value = "She lived near the [MASK] ."
    assert len(explorer.tables) == 1 and "<table" in explorer.predictions_view.value


def test_the_figures_draw(model):
    figure = objectives_figure(objective_views("Mia had a red ball .", seed=0))
    assert len(figure.axes) == 1
    plt.close(figure)
    figure = masked_lm_figure(masked_predictions(model, story_vocabulary(), "Mia had a [MASK] ball ."))
    assert figure.axes
    plt.close(figure)
