"""Chapter 7's translation recipe: its model's size, its seeds, and a few steps of training."""
import torch

from course_lib.recipes import all_recipes
from course_lib.recipes import ch06_seq2seq as chapter6
import pytest

from course_lib.recipes.ch07_translation import CONFIG, RECIPES, build_model, recipe_name, train_model
from course_lib.transformer import TransformerSeq2Seq


def test_the_transformer_is_the_size_of_chapter_6s_attention_models():
    model = build_model()
    parameters = sum(p.numel() for p in model.parameters())
    attention_models = [sum(p.numel() for p in chapter6.build_model(variant).parameters())
                        for variant in ("dot", "general", "additive")]
    assert 183_000 <= parameters <= 193_000, parameters
    assert abs(parameters - sum(attention_models) / 3) < 0.05 * parameters, (parameters, attention_models)
    assert isinstance(model, TransformerSeq2Seq) and model.readout.weight is model.target_embedding.weight
    assert (CONFIG.d_model, CONFIG.num_heads, CONFIG.num_encoder_layers, CONFIG.num_decoder_layers) == (64, 4, 2, 2)


def test_three_seeds_of_each_schedule_are_registered_and_discovered():
    constant = {"ch07_translation", "ch07_translation_seed1", "ch07_translation_seed2"}
    scheduled = {"ch07_translation_scheduled", "ch07_translation_scheduled_seed1", "ch07_translation_scheduled_seed2"}
    assert set(RECIPES) == constant | scheduled
    assert [RECIPES[name].seed for name in sorted(constant)] == [0, 1, 2]
    assert [RECIPES[recipe_name(seed, "scheduled")].seed for seed in (0, 1, 2)] == [0, 1, 2]
    assert set(RECIPES) <= set(all_recipes())


def test_the_scheduled_run_warms_up_over_a_tenth_of_its_steps_and_decays():
    constant, plain = train_model(seed=1, steps=20, progress=False)
    scheduled, metadata = train_model(seed=1, steps=20, progress=False, schedule="scheduled")
    assert (plain["warmup_steps"], plain["decay"]) == (0, "constant")
    assert (metadata["warmup_steps"], metadata["decay"], metadata["schedule"]) == (2, "cosine", "scheduled")
    weight = "transformer.encoder.layers.0.self_attention.in_proj_weight"
    assert not torch.equal(constant.state_dict()[weight], scheduled.state_dict()[weight])
    with pytest.raises(ValueError, match="schedule"):
        train_model(seed=1, steps=2, schedule="linear")


def test_a_few_steps_train_on_chapter_6s_settings_and_the_seed_decides_the_run():
    model, metadata = train_model(seed=1, steps=4, progress=False)
    again, _ = train_model(seed=1, steps=4, progress=False)
    other, _ = train_model(seed=2, steps=4, progress=False)
    weight = "transformer.encoder.layers.0.self_attention.in_proj_weight"
    assert torch.equal(model.state_dict()[weight], again.state_dict()[weight])
    assert not torch.equal(model.state_dict()[weight], other.state_dict()[weight])
    assert metadata["parameters"] == sum(p.numel() for p in model.parameters())
    assert metadata["steps"] == 4 and metadata["val_steps"] == [4] and len(metadata["val_loss"]) == 1
    assert not model.training
