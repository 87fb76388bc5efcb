"""Chapter 7's recipes: a Transformer LM and a causal CNN LM the size of Chapter 5's models."""
from __future__ import annotations

import math
from itertools import islice

import pytest

from course_lib.cnn_lm import CNNLM
from course_lib.data.probes import make_probes
from course_lib.data.text import word_tokenize
from course_lib.recipes import all_recipes, find_recipe
from course_lib.recipes.ch05_lstm_gru import CURRICULUM, stage_batches, story_vocabulary
from course_lib.recipes.ch07_transformer import (CNN_RECEPTIVE_FIELD, FAMILIES, MAX_CONTEXT, RECIPES, SCHEDULE,
                                                 SCHEDULES, SEEDS, TRAINED_SEEDS, build_model, recipe_name,
                                                 train_model)
from course_lib.transformer import TransformerLM

CH05_GRU_PARAMETERS = 205_043


@pytest.mark.parametrize("family", FAMILIES)
def test_each_model_has_about_the_parameters_of_chapter_5s(family):
    model = build_model(family)
    parameters = sum(p.numel() for p in model.parameters())
    assert abs(parameters - CH05_GRU_PARAMETERS) / CH05_GRU_PARAMETERS < 0.01, parameters
    assert model.vocab_size == len(story_vocabulary())


def test_the_models_are_the_chapters_transformer_and_cnn():
    transformer, cnn = build_model("transformer"), build_model("cnn")
    assert isinstance(transformer, TransformerLM) and isinstance(cnn, CNNLM)
    assert transformer.readout.weight is transformer.embedding.weight  # tied
    assert cnn.receptive_field == CNN_RECEPTIVE_FIELD == 64


def test_the_learned_positions_cover_the_longest_stories_and_probes():
    last_stage = CURRICULUM[-1]
    longest = max(inputs.shape[1] for inputs, _ in islice(stage_batches(last_stage, story_vocabulary(), 32, 0), 64))
    probes = make_probes(100, (16, 32, 64, 128, 192), seed=0)
    longest_prompt = max(1 + len(word_tokenize(probe.prompt)) for probe in probes)
    assert max(longest, longest_prompt) <= MAX_CONTEXT


def test_the_schedule_is_chapter_5s_curriculum_then_a_slower_stage_of_the_corpus_shape():
    assert SCHEDULE[: len(CURRICULUM)] == CURRICULUM
    cool_down = SCHEDULE[-1]
    assert (cool_down.max_facts, cool_down.max_fillers) == (CURRICULUM[-1].max_facts, CURRICULUM[-1].max_fillers)
    assert cool_down.learning_rate_factor == pytest.approx(CURRICULUM[-1].learning_rate_factor / 10)
    assert SCHEDULES == {"transformer": SCHEDULE, "cnn": CURRICULUM}


def test_recipes_are_named_per_seed_and_registered_for_the_trained_seeds():
    assert [recipe_name("transformer", seed) for seed in SEEDS] == [
        "ch07_transformer", "ch07_transformer_seed1", "ch07_transformer_seed2"]
    assert recipe_name("cnn", 2) == "ch07_cnn_seed2"
    assert set(RECIPES) == {recipe_name(family, seed) for family in FAMILIES for seed in TRAINED_SEEDS[family]}
    assert set(RECIPES) <= set(all_recipes())
    for family in FAMILIES:
        assert 0 in TRAINED_SEEDS[family]
        for seed in TRAINED_SEEDS[family]:
            assert find_recipe(recipe_name(family, seed)).seed == seed


def test_an_unknown_family_is_a_clear_error():
    with pytest.raises(ValueError, match="family"):
        build_model("lstm")
    with pytest.raises(ValueError, match="family"):
        recipe_name("rnn")


@pytest.mark.parametrize("family", FAMILIES)
def test_a_few_steps_of_the_curriculum_run_and_are_recorded(family):
    model, metadata = train_model(family, seed=0, steps=4)
    assert not model.training
    assert metadata["family"] == family
    assert metadata["parameters"] == sum(p.numel() for p in model.parameters())
    assert len(metadata["train_loss"]) == 4 and metadata["val_steps"] == [4]
    assert all(math.isfinite(x) for x in metadata["train_loss"] + metadata["val_loss"])
    assert metadata["stages"] == [{"max_facts": 1, "max_fillers": 0, "steps": 4, "learning_rate_factor": 1.0,
                                   "last_step": 4, "learning_rate": metadata["stages"][0]["learning_rate"]}]
    # the loss starts near ln V (a uniform guess) and the first steps bring it down
    assert metadata["train_loss"][0] == pytest.approx(math.log(len(story_vocabulary())), abs=0.5)
    assert metadata["train_loss"][-1] < metadata["train_loss"][0]
