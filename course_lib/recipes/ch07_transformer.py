"""Chapter 7's experiment: a Transformer LM and a causal CNN LM trained as Chapter 5's models were.

Two word-level language models of about 205,000 parameters each, the size of Chapter 5's LSTM
and GRU, trained on the same stories through the same curriculum
(:data:`course_lib.recipes.ch05_lstm_gru.CURRICULUM`, fresh stories at every step from
:func:`~course_lib.recipes.ch05_lstm_gru.stage_batches`, the same vocabulary and validation
split; the Transformer then gets a cool-down stage at a lower learning rate, :data:`SCHEDULES`),
so that the chapter can set them side by side with the recurrent models:

* ``ch07_transformer``: a decoder-only :class:`~course_lib.transformer.TransformerLM` (d_model 64,
  4 heads, 3 pre-norm blocks with d_ff 256, learned positions for :data:`MAX_CONTEXT` tokens,
  read-out tied to the embedding). Every position attends to every earlier one, so a fact
  200 words back is one attention step away.
* ``ch07_cnn``: a gated causal convolutional :class:`~course_lib.cnn_lm.CNNLM` (d_model 72, kernel
  2, dilations 1, 2, ..., 32), whose receptive field is :data:`CNN_RECEPTIVE_FIELD` = 64 tokens:
  a fact further back than that cannot reach the prediction at all, whatever the training.

Each is trained from three seeds (:data:`SEEDS`; only the seeds whose checkpoints are committed
are registered in :data:`RECIPES`). A story is one sequence ``<s> w_1 ... w_n </s>`` read from the
start, as in Chapter 5; the chapter measures the checkpoints with :mod:`course_lib.evaluate`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from torch import nn

from course_lib.checks import one_of
from course_lib.cnn_lm import CNNLM, CNNLMConfig, doubling_dilations
from course_lib.recipes import Recipe
from course_lib.recipes.ch05_lstm_gru import (BATCH_SIZE, CLIP_GRAD_NORM, CORPUS, CURRICULUM, Stage,
                                              story_vocabulary, train_through_curriculum, validation_batches)
from course_lib.runtime import seed_everything
from course_lib.transformer import TransformerLM, TransformerLMConfig

__all__ = [
    "CNN_RECEPTIVE_FIELD",
    "FAMILIES",
    "MAX_CONTEXT",
    "RECIPES",
    "SCHEDULE",
    "SCHEDULES",
    "SEEDS",
    "TRAINED_SEEDS",
    "build_model",
    "cnn_config",
    "recipe_name",
    "train_model",
    "transformer_config",
]

FAMILIES = ("transformer", "cnn")
# Learned positions need a vector per position: the curriculum's longest stories are about 250
# tokens (the last stage, 3 facts and up to 8 fillers; the longest probe prompt is 233 tokens), so
# 320 positions leave room, and cost 20,480 of the model's parameters.
MAX_CONTEXT = 320
CNN_DILATIONS = doubling_dilations(6)  # 1, 2, 4, 8, 16, 32
CNN_KERNEL_SIZE = 2
CNN_RECEPTIVE_FIELD = 1 + sum((CNN_KERNEL_SIZE - 1) * d for d in CNN_DILATIONS)  # 64 tokens

# The Transformer: Chapter 5's curriculum, then a cool-down on the corpus's own shape at a tenth
# of its last learning rate: at a constant rate its loss stops falling about 2.5% above the entropy
# floor (the steps jostle the weights around the minimum); the smaller steps let them settle. The
# CNN's committed checkpoints are trained on Chapter 5's curriculum alone, as the RNNs were.
COOL_DOWN = Stage(max_facts=3, max_fillers=8, steps=1000, learning_rate_factor=0.03)
SCHEDULE = (*CURRICULUM, COOL_DOWN)
SCHEDULES = {"transformer": SCHEDULE, "cnn": CURRICULUM}
LEARNING_RATE = {"transformer": 3e-3, "cnn": 3e-3}


def transformer_config() -> TransformerLMConfig:
    """d_model 64, 4 heads of 16, 3 blocks with d_ff 256, learned positions, tied read-out."""
    return TransformerLMConfig(vocab_size=len(story_vocabulary()), d_model=64, num_heads=4, num_layers=3,
                               d_ff=256, positions="learned", max_context=MAX_CONTEXT, tie_embeddings=True)


def cnn_config() -> CNNLMConfig:
    """d_model 72, kernel 2, dilations 1 .. 32: a receptive field of 64 tokens."""
    return CNNLMConfig(vocab_size=len(story_vocabulary()), d_model=72, kernel_size=CNN_KERNEL_SIZE,
                       dilations=CNN_DILATIONS)


def build_model(family: str) -> nn.Module:
    """The untrained model of one recipe, ``"transformer"`` or ``"cnn"``."""
    family = one_of("family", family, FAMILIES)
    return TransformerLM(transformer_config()) if family == "transformer" else CNNLM(cnn_config())


def train_model(family: str, seed: int = 0, steps: int | None = None,
                curriculum: Sequence[Stage] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Train one model through its schedule, ``SCHEDULES[family]`` unless ``curriculum`` is given;
    ``steps`` keeps only its first steps.

    As in Chapter 5, each stage is one call of :func:`course_lib.train.train` (a fresh AdamW at the
    stage's learning rate, gradients clipped to norm 1), on the stage's fresh stories, evaluated
    on the validation split every ``EVAL_EVERY`` steps; the metadata holds the settings and the
    loss history, with steps counted from the start of the curriculum.
    """
    family = one_of("family", family, FAMILIES)
    curriculum = SCHEDULES[family] if curriculum is None else curriculum
    seed_everything(seed)
    model = build_model(family)  # the seed draws the initial weights
    vocabulary = story_vocabulary()
    history = train_through_curriculum(model, curriculum, LEARNING_RATE[family], seed, vocabulary,
                                       validation_batches(), steps)
    settings = asdict(model.config)
    metadata = {
        "family": family,
        "config": {**settings, "dilations": list(settings["dilations"])} if family == "cnn" else settings,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocabulary": vocabulary.to_json(),
        "corpus": CORPUS,
        "batch_size": BATCH_SIZE,
        "clip_grad_norm": CLIP_GRAD_NORM,
        **history,
    }
    if family == "cnn":
        metadata["receptive_field"] = model.receptive_field
    return model, metadata


SEEDS = (0, 1, 2)
# The seeds whose checkpoints are committed (a registered recipe must have its checkpoint).
TRAINED_SEEDS = {"transformer": (0, 1, 2), "cnn": (0, 1, 2)}


def recipe_name(family: str, seed: int = 0) -> str:
    """``ch07_transformer`` for seed 0, ``ch07_transformer_seed1`` for seed 1, and so on."""
    one_of("family", family, FAMILIES)
    return f"ch07_{family}" if seed == 0 else f"ch07_{family}_seed{seed}"


_DESCRIPTIONS = {
    "transformer": "decoder-only Transformer LM (d_model 64, 4 heads, 3 blocks, learned positions)",
    "cnn": f"gated causal CNN LM (d_model 72, receptive field {CNN_RECEPTIVE_FIELD} tokens)",
}


def _recipe(family: str, seed: int) -> Recipe:
    total = sum(stage.steps for stage in SCHEDULES[family])
    schedule = "and a cool-down" if SCHEDULES[family] is SCHEDULE else "(no cool-down)"
    return Recipe(
        name=recipe_name(family, seed),
        description=(f"word-level {_DESCRIPTIONS[family]}, about 205,000 parameters, {total} AdamW steps "
                     f"through Chapter 5's curriculum of ever longer stories {schedule}, seed {seed}"),
        build_model=lambda: build_model(family),
        train=lambda seed=seed, steps=None: train_model(family, seed, steps),
        seed=seed,
    )


RECIPES = {recipe.name: recipe for family in FAMILIES for recipe in (_recipe(family, seed)
                                                                     for seed in TRAINED_SEEDS[family])}
