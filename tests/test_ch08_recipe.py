"""Chapter 8's decoding sweep: the settings are the ones the chapter names, each decodes what the
decoding functions give, the scores are the generator's and the model's, and the stored sweeps
hold every setting for every seed."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib.data.stories import generate_stories
from course_lib.decoding import beam_search, sample
from course_lib.generated_text import first_sentence_entropy, generator_log_prob
from course_lib.recipes import all_recipes, load_trained
from course_lib.recipes.ch05_lstm_gru import story_vocabulary
from course_lib.recipes.ch08_decoding import (GENERATOR, RECIPES, SEEDS, SETTINGS, StoryScores, decode_setting,
                                              load_sweep, recipe_name, save_sweep, score_stories, text_measures)


@pytest.fixture(scope="module")
def model_and_vocabulary():
    model, _ = load_trained("ch07_transformer")
    return model, story_vocabulary()


def setting(name):
    return next(s for s in SETTINGS if s.name == name)


def test_the_settings_cover_every_method_once():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    assert {s.group for s in SETTINGS} == {"pure sampling", "temperature", "top-k", "top-p", "penalty", "greedy",
                                           "beam"}
    for s in SETTINGS:
        assert s.method in ("sample", "beam")
        assert s.deterministic == (s.method == "beam" or s.options.get("temperature") == 0)
    assert set(RECIPES) == {recipe_name(seed) for seed in SEEDS} and recipe_name(0) == "ch08_decoding_sweep"


def test_a_setting_decodes_what_the_decoding_functions_give(model_and_vocabulary):
    model, vocabulary = model_and_vocabulary
    bos, eos = vocabulary.special_id("<s>"), vocabulary.special_id("</s>")
    drawn = decode_setting(model, vocabulary, setting("top-p 0.9"), seed=2, samples=3)
    assert drawn == sample(model, torch.full((3, 1), bos), max_tokens=300, stop_ids=[eos], seed=2, top_p=0.9)
    beam = decode_setting(model, vocabulary, setting("beam 4"), seed=0)
    best = beam_search(model, [bos], beam_width=4, max_tokens=300, eos_id=eos)[0][0]
    assert beam == [[t for t in best.tokens if t != eos]]
    assert len(decode_setting(model, vocabulary, setting("greedy"), seed=0, samples=5)) == 1


def test_scores_are_the_models_and_the_generators(model_and_vocabulary):
    model, vocabulary = model_and_vocabulary
    own = [story.tokens for story in generate_stories(2, seed=5)]
    first_stop = own[0].index(".") + 1
    broken = own[0][:first_stop] + ["."]          # no story has two full stops in a row
    scores = score_stories(model, vocabulary, [*own, broken], [True, True, True])
    assert scores.generator_log_prob[:2] == pytest.approx([generator_log_prob(s) for s in own])
    assert scores.generator_log_prob[2] == -math.inf and scores.first_break[2] == first_stop
    assert list(scores.first_break[:2]) == [-1, -1]
    ids = torch.tensor([[vocabulary.special_id("<s>"), *vocabulary.encode(own[1]), vocabulary.special_id("</s>")]])
    with torch.no_grad():
        expected = float(model.token_log_probs(ids).double().sum())
    assert scores.model_log_prob[1] == pytest.approx(expected, rel=1e-6)


def test_a_sweep_survives_saving_and_loading(tmp_path, model_and_vocabulary):
    model, vocabulary = model_and_vocabulary
    own = [story.tokens for story in generate_stories(3, seed=1)]
    scores = score_stories(model, vocabulary, own, [True] * 3)
    results = {s.name: scores for s in SETTINGS} | {GENERATOR: scores}
    path = save_sweep(results, tmp_path / "sweep.safetensors", {"settings": [{"name": s.name} for s in SETTINGS]})
    loaded, metadata = load_sweep(path)
    for name in (SETTINGS[0].name, GENERATOR):
        for field in StoryScores.__dataclass_fields__:
            assert np.array_equal(getattr(loaded[name], field), getattr(scores, field)), field
    measures = text_measures(own)
    assert measures["first_sentence_entropy"] == pytest.approx(first_sentence_entropy(own))


def test_every_seed_of_the_sweep_is_committed_with_every_setting():
    available = all_recipes()
    for seed in SEEDS:
        assert recipe_name(seed) in available
        results, metadata = load_trained(recipe_name(seed))
        assert metadata["seed"] == seed and metadata["samples"] == 200
        assert set(results) == {s.name for s in SETTINGS} | {GENERATOR}
        assert set(metadata["measures"]) == set(results)
        for s in SETTINGS:
            assert len(results[s.name].tokens) == (1 if s.deterministic else 200), s.name


def test_the_sweep_is_a_measuring_recipe():
    assert all(recipe.measures and recipe.build_model is None for recipe in RECIPES.values())
