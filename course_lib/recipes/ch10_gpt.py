"""Chapter 10's experiments: a GPT trained on the stories, a small scaling study, weight tying.

* ``ch10_gpt``: a :class:`~course_lib.gpt.GPT` of Chapter 7's size (d 64, 4 heads, 3 blocks,
  d_ff 256, :data:`MAX_CONTEXT` learned positions, read-out tied to ``wte``: 205,568 parameters)
  trained exactly as Chapter 7's Transformer LM was (Chapter 5's curriculum, then the cool-down:
  :data:`course_lib.recipes.ch07_transformer.SCHEDULE`, learning rate 3e-3, batches of 32 fresh
  stories). What differs from Chapter 7's model is only GPT-2's: the tanh GELU instead of the
  ReLU, weights drawn from N(0, 0.02) with the residual projections at 0.02/√(2L).
* ``ch10_scaling_dD``: GPTs of :data:`SCALING_SIZES` (width D, from 17,000 to 380,000
  parameters), each trained on the **same** stories for the same :data:`SCALING_STEPS` steps
  (so the same tokens), on the corpus's own shape from the first step (no curriculum), the last
  fifth at a tenth of the learning rate (:data:`SCALING_SCHEDULE`). The chapter fits
  ``L(N) = E + A N^(-α)`` to their validation losses with E the corpus's entropy floor.
* ``ch10_scaling_d128``: one size beyond the fitted five (:data:`LARGER_SIZES`, 904,320
  parameters), trained alike, to see whether the line goes on; ``ch10_scaling_d128_lower_lr`` the
  same at a third of the learning rate (:data:`LOWER_LEARNING_RATE`).
* ``ch10_untied_d64``: the scaling study's d64 model with ``lm_head`` apart from ``wte``
  (:data:`UNTIED`), trained alike: what tying the two matrices is worth.

The validation split and the vocabulary are every chapter's (Chapter 5's); the recipes record the
loss history with steps counted from the start.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from course_lib.checks import one_of
from course_lib.gpt import GPT, GPTConfig
from course_lib.recipes import Recipe
from course_lib.recipes.ch05_lstm_gru import (BATCH_SIZE, CLIP_GRAD_NORM, CORPUS, Stage, story_vocabulary,
                                              train_through_curriculum, validation_batches)
from course_lib.recipes.ch07_transformer import MAX_CONTEXT, SCHEDULE
from course_lib.runtime import seed_everything

__all__ = [
    "ALL_RECIPES", "LARGER_SIZES", "LEARNING_RATE", "LOWER_LEARNING_RATE", "MAX_CONTEXT", "RECIPES",
    "SCALING_SCHEDULE", "SCALING_SIZES", "SCALING_STEPS", "SEEDS", "TRAINED", "UNTIED", "build_model", "gpt_config",
    "scaling_config", "scaling_recipe_name", "train_gpt",
]

LEARNING_RATE = 3e-3  # Chapter 7's, for every model of this chapter

# (d_model, num_layers, num_heads) by name; d_ff = 4 d as in GPT-2.
SCALING_SIZES = {"d16": (16, 1, 2), "d32": (32, 2, 2), "d48": (48, 3, 4), "d64": (64, 3, 4),
                 "d80": (80, 4, 4)}
SCALING_STEPS = 1000
# The corpus's own shape (3 facts, up to 8 fillers) throughout; the last fifth at a tenth of the rate.
SCALING_SCHEDULE = (Stage(max_facts=3, max_fillers=8, steps=800),
                    Stage(max_facts=3, max_fillers=8, steps=200, learning_rate_factor=0.1))
UNTIED = "d64"  # the size trained a second time with lm_head apart from wte
# Beyond the fit: trained alike, shown against the line the five sizes give.
LARGER_SIZES = {"d128": (128, 4, 4)}
LOWER_LEARNING_RATE = 1e-3  # the larger size trained again at a third of the rate


def gpt_config(**changes) -> GPTConfig:
    """Chapter 7's size with GPT-2's choices: d 64, 4 heads, 3 blocks, d_ff 256, tied, no dropout."""
    settings = dict(vocab_size=len(story_vocabulary()), d_model=64, num_heads=4, num_layers=3, d_ff=256,
                    max_context=MAX_CONTEXT, dropout=0.0, tie_embeddings=True)
    return GPTConfig(**{**settings, **changes})


def scaling_config(size: str, tie_embeddings: bool = True) -> GPTConfig:
    """The GPT of one size of the scaling study (:data:`SCALING_SIZES`, :data:`LARGER_SIZES`), d_ff = 4d."""
    sizes = {**SCALING_SIZES, **LARGER_SIZES}
    d_model, num_layers, num_heads = sizes[one_of("size", size, sizes)]
    return gpt_config(d_model=d_model, num_layers=num_layers, num_heads=num_heads, d_ff=4 * d_model,
                      tie_embeddings=tie_embeddings)


def build_model(config: GPTConfig) -> GPT:
    return GPT(config)


def train_gpt(config: GPTConfig, schedule: Sequence[Stage], seed: int = 0, steps: int | None = None,
              learning_rate: float = LEARNING_RATE) -> tuple[GPT, dict[str, Any]]:
    """Train a GPT of ``config`` through ``schedule`` (Chapter 5's stage loop,
    :func:`~course_lib.recipes.ch05_lstm_gru.train_through_curriculum`) at peak ``learning_rate``;
    ``steps`` keeps only the first steps. The seed draws the initial weights and, through the
    stages, the stories."""
    seed_everything(seed)
    model = GPT(config)
    vocabulary = story_vocabulary()
    history = train_through_curriculum(model, schedule, learning_rate, seed, vocabulary, validation_batches(), steps)
    metadata = {
        "config": asdict(config),
        "parameters": model.num_parameters(),
        "embedding_parameters": (config.vocab_size * (1 if config.tie_embeddings else 2)
                                 + config.max_context) * config.d_model,
        "vocabulary": vocabulary.to_json(),
        "corpus": CORPUS,
        "batch_size": BATCH_SIZE,
        "clip_grad_norm": CLIP_GRAD_NORM,
        "learning_rate": learning_rate,
        **history,
    }
    return model, metadata


def scaling_recipe_name(size: str, seed: int = 0, tie_embeddings: bool = True, lower_lr: bool = False) -> str:
    """``ch10_scaling_d64`` (seed 0), ``ch10_scaling_d64_seed1``, ``ch10_untied_d64``,
    ``ch10_scaling_d128_lower_lr``, ..."""
    one_of("size", size, {**SCALING_SIZES, **LARGER_SIZES})
    name = f"ch10_scaling_{size}" if tie_embeddings else f"ch10_untied_{size}"
    name += "_lower_lr" if lower_lr else ""
    return name if seed == 0 else f"{name}_seed{seed}"


def _gpt_recipe(seed: int) -> Recipe:
    return Recipe(
        name="ch10_gpt" if seed == 0 else f"ch10_gpt_seed{seed}",
        description=(f"word-level GPT (d 64, 4 heads, 3 blocks, tanh GELU, tied, 205,568 parameters), "
                     f"{sum(s.steps for s in SCHEDULE)} AdamW steps through Chapter 7's schedule, seed {seed}"),
        build_model=lambda: GPT(gpt_config()),
        train=lambda seed=seed, steps=None: train_gpt(gpt_config(), SCHEDULE, seed, steps),
        seed=seed,
    )


def _scaling_recipe(size: str, seed: int, tie_embeddings: bool, lower_lr: bool = False) -> Recipe:
    config = scaling_config(size, tie_embeddings)
    tied = "tied" if tie_embeddings else "untied"
    learning_rate = LOWER_LEARNING_RATE if lower_lr else LEARNING_RATE
    return Recipe(
        name=scaling_recipe_name(size, seed, tie_embeddings, lower_lr),
        description=(f"scaling study: GPT {size} ({config.num_layers} blocks, {config.num_heads} heads, {tied}, "
                     f"{GPT(config).num_parameters():,} parameters), {SCALING_STEPS} steps on the "
                     f"corpus's own shape at learning rate {learning_rate:g}, seed {seed}"),
        build_model=lambda: GPT(config),
        train=lambda seed=seed, steps=None: train_gpt(config, SCALING_SCHEDULE, seed, steps, learning_rate),
        seed=seed,
    )


SEEDS = (0, 1, 2)  # seed 0 for every model; other seeds registered only where their checkpoints exist
ALL_RECIPES = {recipe.name: recipe for seed in SEEDS for recipe in [
    _gpt_recipe(seed), *(_scaling_recipe(size, seed, True) for size in (*SCALING_SIZES, *LARGER_SIZES)),
    *(_scaling_recipe(size, seed, True, lower_lr=True) for size in LARGER_SIZES),
    _scaling_recipe(UNTIED, seed, False)]}
# The recipes whose checkpoints are committed (a registered recipe must have its checkpoint).
TRAINED: tuple[str, ...] = ("ch10_gpt", "ch10_gpt_seed1", "ch10_gpt_seed2",
                             *(scaling_recipe_name(size, seed) for seed in SEEDS for size in SCALING_SIZES),
                             *(scaling_recipe_name(UNTIED, seed, tie_embeddings=False) for seed in SEEDS),
                             *(scaling_recipe_name(size, seed) for seed in SEEDS for size in LARGER_SIZES),
                             *(scaling_recipe_name(size, seed, lower_lr=True) for seed in SEEDS
                               for size in LARGER_SIZES))
RECIPES = {name: ALL_RECIPES[name] for name in TRAINED}
