"""Chapter 3's figures and explorer: labelled points, bar panels, and the next-token distribution of a
fixed-window model at a temperature, checked against softmax computed independently."""
from __future__ import annotations

import math
from functools import partial

import matplotlib

matplotlib.use("Agg")  # no display: the figures must draw all the same

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from course_lib.data.text import Vocabulary
from course_lib.neural_lm import FixedWindowLM
from course_lib.viz import plot_bar_panels, plot_labelled_points
from course_lib.widgets import (NextTokenTable, TemperatureExplorer, fixed_window_next_token_table,
                                temperature_explorer, window_context)

WORDS = ["She", "had", "a", "red", "blue", "ball", "kite", "."]
SPECIALS = ("<unk>", "<s>", "</s>")


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary(WORDS, specials=SPECIALS)


@pytest.fixture(scope="module")
def model(vocabulary) -> FixedWindowLM:
    torch.manual_seed(3)
    lm = FixedWindowLM(len(vocabulary), context_size=3, embedding_dim=4, hidden_dim=8)
    with torch.no_grad():
        lm.U.weight.mul_(4)  # a peaked distribution, so that temperature visibly changes it
    return lm


# ------------------------------------------------------------------ plot_labelled_points

def test_labelled_points_draw_each_group_with_its_points_names_and_legend():
    groups = {"colours": (np.array([[0.0, 1.0], [2.0, 3.0]]), ["red", "blue"]),
              "names": ([[5.0, -1.0]], ["Mia"])}
    figure = plot_labelled_points(groups, title="vectors", xlabel="PC 1", ylabel="PC 2")
    assert isinstance(figure, Figure)
    axes = figure.axes[0]
    assert [collection.get_offsets().tolist() for collection in axes.collections] == [
        [[0.0, 1.0], [2.0, 3.0]], [[5.0, -1.0]]]
    assert [text.get_text() for text in axes.texts] == ["red", "blue", "Mia"]
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["colours", "names"]
    assert (axes.get_title(), axes.get_xlabel(), axes.get_ylabel()) == ("vectors", "PC 1", "PC 2")
    colours = [tuple(collection.get_facecolor()[0]) for collection in axes.collections]
    assert colours[0] != colours[1]
    assert len(plot_labelled_points(groups, annotate=False).axes[0].texts) == 0


@pytest.mark.parametrize("groups, error, words", [
    ({}, ValueError, "non-empty"),
    ({"a": ([[0.0, 1.0]], ["x", "y"])}, ValueError, "1 points but 2 names"),
    ({"a": ([0.0, 1.0], ["x", "y"])}, ValueError, "shape"),
    ({"a": ([[0.0, 1.0, 2.0]], ["x"])}, ValueError, "shape"),
    ({"a": ([[math.nan, 1.0]], ["x"])}, ValueError, "NaN"),
    ({"a": [[0.0, 1.0]]}, ValueError, "pair"),
    ({"a": ([[0.0, 1.0]], "x")}, TypeError, "list of str"),
])
def test_labelled_points_reject_bad_input_with_a_clear_message(groups, error, words):
    with pytest.raises(error, match=words):
        plot_labelled_points(groups)


# ------------------------------------------------------------------ plot_bar_panels

def test_bar_panels_draw_one_panel_per_distribution_on_a_shared_axis():
    panels = {"T = 0.5": [("park", 0.6), ("</s>", 0.3)], "T = 2": {"park": 0.2, "shop": 0.15, "zoo": 0.1}}
    figure = plot_bar_panels(panels, title="Next token", xlabel="P")
    first, second = figure.axes
    assert [bar.get_width() for bar in first.patches] == pytest.approx([0.6, 0.3])
    assert [bar.get_width() for bar in second.patches] == pytest.approx([0.2, 0.15, 0.1])
    assert [label.get_text() for label in second.get_yticklabels()] == ["park", "shop", "zoo"]
    assert (first.get_title(), second.get_title()) == ("T = 0.5", "T = 2")
    assert first.get_xlim() == second.get_xlim() and first.get_xlim()[1] >= 0.6
    assert figure._suptitle.get_text() == "Next token"
    colours = [tuple(bar.get_facecolor()) for bar in first.patches]
    assert colours[0] != colours[1]  # "</s>" is highlighted


@pytest.mark.parametrize("panels, error, words", [
    ({}, ValueError, "non-empty"),
    ({"a": []}, ValueError, "at least one"),
    ({"a": [("x", math.inf)]}, ValueError, "finite"),
    ({"a": [("x", 0.1, 0.2)]}, ValueError, "pair"),
    ({1: [("x", 0.1)]}, TypeError, "panel titles"),
])
def test_bar_panels_reject_bad_input_with_a_clear_message(panels, error, words):
    with pytest.raises(error, match=words):
        plot_bar_panels(panels)


# ------------------------------------------------------------------ the next-token table

def test_window_context_pads_with_start_symbols_maps_unknown_words_and_keeps_the_last_tokens(vocabulary):
    assert window_context(vocabulary, "She had", 3) == (("<s>", "She", "had"), [1] + vocabulary.encode(["She", "had"]))
    seen, ids = window_context(vocabulary, "She had a zebra", 3)
    assert seen == ("had", "a", "<unk>") and ids[-1] == vocabulary.unk_id
    assert window_context(vocabulary, "", 2)[0] == ("<s>", "<s>")
    assert window_context(vocabulary, ["a", "red"], 2)[0] == ("a", "red")


@pytest.mark.parametrize("arguments, error, words", [
    (({"a": 1}, "x", 2), TypeError, "Vocabulary"),
    ((None, "x", 0), ValueError, "context_size"),
    ((None, 3, 2), TypeError, "context"),
])
def test_window_context_rejects_bad_input(vocabulary, arguments, error, words):
    arguments = tuple(vocabulary if value is None else value for value in arguments)
    with pytest.raises(error, match=words):
        window_context(*arguments)


def test_window_context_needs_a_start_symbol():
    with pytest.raises(ValueError, match="<s>"):
        window_context(Vocabulary(["a"], specials=("<unk>",)), "a", 2)


def independent_distribution(model, vocabulary, tokens, temperature):
    """softmax(logits / T) with PyTorch's own softmax, from the context padded by hand."""
    ids = [vocabulary.token_to_id(token) for token in tokens][-model.context_size:]
    ids = [vocabulary.special_id("<s>")] * (model.context_size - len(ids)) + ids
    with torch.no_grad():
        logits = model(torch.tensor([ids]))[0]
    return dict(zip(vocabulary.tokens, torch.softmax(logits / temperature, dim=-1).tolist()))


@pytest.mark.parametrize("context, temperature", [("She had a", 1.0), ("had a red", 0.3), ("", 2.5),
                                                  ("She had a zebra", 1.0)])
def test_the_table_holds_the_models_top_k_at_the_temperature(model, vocabulary, context, temperature):
    table = fixed_window_next_token_table(model, vocabulary, context, k=4, temperature=temperature)
    expected = independent_distribution(model, vocabulary, context.split(), temperature)
    ranked = sorted(expected.items(), key=lambda item: -item[1])[:4]
    assert isinstance(table, NextTokenTable)
    assert table.tokens == [token for token, _ in ranked]
    assert table.probabilities == pytest.approx([p for _, p in ranked], rel=1e-5)
    assert len(table.context) == model.context_size


def test_the_whole_table_sums_to_one_and_an_unknown_word_is_shown_as_unk(model, vocabulary):
    table = fixed_window_next_token_table(model, vocabulary, "a zebra", k=len(vocabulary))
    assert sum(table.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert table.context == ("<s>", "a", "<unk>")


@settings(max_examples=25, deadline=None)
@given(low=st.floats(0.05, 1.0), high=st.floats(1.0, 5.0), context=st.sampled_from(["She had a", "", "red"]))
def test_a_higher_temperature_never_sharpens_the_distribution(model, vocabulary, low, high, context):
    """The entropy of softmax(y / T) does not decrease as T grows, and the order of the tokens is kept."""
    def entropy_and_order(temperature):
        table = fixed_window_next_token_table(model, vocabulary, context, k=len(vocabulary),
                                              temperature=temperature)
        return -sum(p * math.log(p) for p in table.probabilities if p > 0), table.tokens[:3]

    (cold, cold_order), (hot, hot_order) = entropy_and_order(low), entropy_and_order(high)
    assert hot >= cold - 1e-5
    if high - low > 0.1:
        assert hot_order[0] == cold_order[0]


def test_the_table_rejects_bad_input(model, vocabulary):
    with pytest.raises(TypeError, match="FixedWindowLM"):
        fixed_window_next_token_table("model", vocabulary, "a")
    with pytest.raises(ValueError, match="vocabulary has"):
        fixed_window_next_token_table(model, Vocabulary(["a"], specials=SPECIALS), "a")
    with pytest.raises(ValueError, match="k must be >= 1"):
        fixed_window_next_token_table(model, vocabulary, "a", k=0)
    with pytest.raises(ValueError, match="temperature"):
        fixed_window_next_token_table(model, vocabulary, "a", temperature=0.0)


def test_the_table_leaves_a_training_model_in_training_mode(model, vocabulary):
    model.train()
    fixed_window_next_token_table(model, vocabulary, "a")
    assert model.training


# ------------------------------------------------------------------ the explorer

def test_the_explorer_follows_its_controls(model, vocabulary):
    explorer = temperature_explorer(partial(fixed_window_next_token_table, model, vocabulary),
                                    context="She had a", top_k=5)
    assert isinstance(explorer, TemperatureExplorer)
    first = explorer.table
    assert first == fixed_window_next_token_table(model, vocabulary, "She had a", k=5)
    assert "temperature τ = 1.00" in explorer.table_view.value and first.tokens[0] in explorer.table_view.value

    explorer.temperature.value = 3.0
    hot = explorer.table
    assert hot.tokens[0] == first.tokens[0] and hot.probabilities[0] < first.probabilities[0]
    assert "τ = 3.00" in explorer.table_view.value

    explorer.top_k.value = 2
    assert len(explorer.table.rows) == 2
    explorer.context.value = "zebra"
    assert explorer.table.context == ("<s>", "<s>", "<unk>")
    explorer.context.value = ""
    assert explorer.table.context == ("<s>", "<s>", "<s>")


def test_the_explorer_shows_a_models_error_instead_of_raising():
    def refuses(context, k, temperature):
        raise ValueError("no distribution after this context")

    explorer = temperature_explorer(refuses)
    assert explorer.table is None and "no distribution" in explorer.message
    assert "no distribution" in explorer.table_view.value


@pytest.mark.parametrize("kwargs, words", [
    ({"next_tokens": "not a function"}, "must be a function"),
    ({"temperature": 5.0}, "outside the slider's range"),
    ({"min_temperature": 0.0}, "positive finite"),
    ({"top_k": 0}, "top_k"),
    ({"context": 3}, "context must be a str"),
])
def test_the_explorer_rejects_bad_settings(model, vocabulary, kwargs, words):
    arguments = {"next_tokens": partial(fixed_window_next_token_table, model, vocabulary), **kwargs}
    with pytest.raises((TypeError, ValueError), match=words):
        temperature_explorer(arguments.pop("next_tokens"), **arguments)
