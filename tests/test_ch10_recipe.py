"""Chapter 10's recipes: a GPT of Chapter 7's size, the scaling study's sizes, the untied model."""
from __future__ import annotations

import math

import pytest

from course_lib.gpt import GPT
from course_lib.recipes import all_recipes
from course_lib.recipes.ch05_lstm_gru import story_vocabulary
from course_lib.recipes.ch07_transformer import SCHEDULE, transformer_config
from course_lib.recipes.ch10_gpt import (ALL_RECIPES, LARGER_SIZES, LOWER_LEARNING_RATE, RECIPES, SCALING_SCHEDULE,
                                         SCALING_SIZES, SCALING_STEPS, TRAINED, UNTIED, gpt_config, scaling_config,
                                         scaling_recipe_name, train_gpt)


def test_the_gpt_is_chapter_7s_transformer_size_with_gpt_2s_choices():
    config, chapter7 = gpt_config(), transformer_config()
    for field in ("vocab_size", "d_model", "num_heads", "num_layers", "d_ff", "max_context", "tie_embeddings"):
        assert getattr(config, field) == getattr(chapter7, field), field
    assert config.activation == "gelu_tanh" and config.positions == "learned" and config.dropout == 0.0
    model = GPT(config)
    assert model.num_parameters() == 205_568
    assert model.readout.weight is model.embedding.weight


def test_the_scaling_sizes_grow_and_share_one_token_budget():
    counts = [GPT(scaling_config(size)).num_parameters() for size in SCALING_SIZES]
    assert counts == sorted(counts) and counts[0] < 20_000 and counts[-1] > 350_000
    assert sum(stage.steps for stage in SCALING_SCHEDULE) == SCALING_STEPS
    assert all((stage.max_facts, stage.max_fillers) == (SCHEDULE[-1].max_facts, SCHEDULE[-1].max_fillers)
               for stage in SCALING_SCHEDULE)  # the corpus's own shape, no curriculum
    assert all(scaling_config(size).d_ff == 4 * scaling_config(size).d_model for size in SCALING_SIZES)


def test_the_size_beyond_the_fit_is_larger_than_every_fitted_one_and_trained_alike():
    largest = max(GPT(scaling_config(size)).num_parameters() for size in SCALING_SIZES)
    for size in LARGER_SIZES:
        config = scaling_config(size)
        assert GPT(config).num_parameters() > 2 * largest and config.d_ff == 4 * config.d_model
        assert {scaling_recipe_name(size, seed) for seed in (0, 1, 2)} <= set(RECIPES)
        assert {scaling_recipe_name(size, seed, lower_lr=True) for seed in (0, 1, 2)} <= set(RECIPES)
        assert ALL_RECIPES[scaling_recipe_name(size)].description.startswith(f"scaling study: GPT {size} ")
        assert "learning rate 0.001," in ALL_RECIPES[scaling_recipe_name(size, lower_lr=True)].description


def test_untying_adds_one_vocabulary_matrix():
    tied, untied = GPT(scaling_config(UNTIED)), GPT(scaling_config(UNTIED, tie_embeddings=False))
    assert untied.num_parameters() - tied.num_parameters() == len(story_vocabulary()) * tied.config.d_model
    assert untied.readout.weight is not untied.embedding.weight


def test_recipe_names_and_registration():
    assert scaling_recipe_name("d16") == "ch10_scaling_d16"
    assert scaling_recipe_name("d64", 1) == "ch10_scaling_d64_seed1"
    assert scaling_recipe_name(UNTIED, tie_embeddings=False) == f"ch10_untied_{UNTIED}"
    assert {"ch10_gpt", "ch10_untied_d64"} <= set(ALL_RECIPES)
    assert set(RECIPES) == set(TRAINED) <= set(all_recipes())
    with pytest.raises(ValueError, match="size"):
        scaling_config("d1000")


def test_a_few_steps_run_and_are_recorded():
    model, metadata = train_gpt(scaling_config("d16"), SCALING_SCHEDULE, seed=0, steps=4)
    slower, slower_metadata = train_gpt(scaling_config("d16"), SCALING_SCHEDULE, seed=0, steps=4,
                                        learning_rate=LOWER_LEARNING_RATE)
    assert (metadata["learning_rate"], slower_metadata["learning_rate"]) == (3e-3, LOWER_LEARNING_RATE)
    assert slower_metadata["train_loss"][0] == metadata["train_loss"][0]  # the same start
    assert slower_metadata["train_loss"][1:] != metadata["train_loss"][1:]  # then other steps
    assert not model.training
    assert metadata["parameters"] == model.num_parameters()
    assert metadata["embedding_parameters"] == (len(story_vocabulary()) + 320) * 16
    assert len(metadata["train_loss"]) == 4 and metadata["val_steps"] == [4]
    assert all(math.isfinite(x) for x in metadata["train_loss"] + metadata["val_loss"])
    assert metadata["train_loss"][0] == pytest.approx(math.log(len(story_vocabulary())), abs=0.5)
    assert metadata["train_loss"][-1] < metadata["train_loss"][0]
