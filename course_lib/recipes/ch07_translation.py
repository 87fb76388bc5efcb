"""Chapter 7's translation recipe: the encoder-decoder Transformer on Chapter 6's English → Kelo task.

``ch07_translation`` is a :class:`~course_lib.transformer.TransformerSeq2Seq` (d_model 64, 4 heads,
2 encoder and 2 decoder layers, d_ff 96, pre-norm, sinusoidal positions, read-out tied to the
target embedding): 186,368 parameters, within the 183,000 to 194,000 of Chapter 6's attention
models, so that the chapter can set the two side by side.

It is trained exactly as Chapter 6's models were, on their batches and settings, imported from
:mod:`course_lib.recipes.ch06_seq2seq` rather than copied: fresh training-split pairs of 5 to 50
source tokens, 64 pairs a step, 1,200 steps, AdamW at 3e-3, gradient norm clipped at 1, no
warm-up (pre-norm layers train at this rate without one), no dropout. ``_seed1`` and ``_seed2``
name the same settings from seeds 1 and 2; each seed reads the same sentences as Chapter 6's
model of that seed.

``ch07_translation_scheduled`` (and ``_seed1``, ``_seed2``) is the same model on the same batches
with a learning-rate schedule (:data:`SCHEDULES`): the rate rises linearly over the first tenth
of the steps to the same peak, 3e-3, then falls along half a cosine towards 0 at the last step.
Only the seeds whose checkpoints are committed are registered in :data:`RECIPES`.
"""
from __future__ import annotations

import time
from functools import partial

import torch

from course_lib.checks import one_of
from course_lib.recipes import Recipe
from course_lib.recipes.ch06_seq2seq import (BATCH_SIZE, CLIP_GRAD_NORM, LEARNING_RATE, STEPS, VARIANTS,
                                             training_batches, validation_batches, vocabularies)
from course_lib.runtime import seed_everything
from course_lib.train import TrainConfig, train
from course_lib.transformer import TransformerConfig, TransformerSeq2Seq

__all__ = ["CONFIG", "RECIPES", "SCHEDULES", "SEEDS", "build_model", "recipe_name", "train_model"]

CONFIG = TransformerConfig(d_model=64, num_heads=4, num_encoder_layers=2, num_decoder_layers=2, d_ff=96,
                           dropout=0.0, norm_first=True)
SEEDS = (0, 1, 2)
# schedule name: (share of the steps spent warming up, decay afterwards); "constant" is Chapter 6's
SCHEDULES = {"constant": (0.0, "constant"), "scheduled": (0.1, "cosine")}
# Chapter 6's batches of its models that read the source forwards (every model but "reversed").
FORWARD_SOURCE = VARIANTS["dot"]


def build_model() -> TransformerSeq2Seq:
    """The untrained translation Transformer, on Chapter 6's vocabularies."""
    source_vocabulary, target_vocabulary = vocabularies()
    return TransformerSeq2Seq(len(source_vocabulary), len(target_vocabulary), CONFIG, tie_embeddings=True)


def _loss(model: TransformerSeq2Seq, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return model.loss(*batch)


def train_model(seed: int = 0, steps: int | None = None, progress: bool = True,
                schedule: str = "constant") -> tuple[TransformerSeq2Seq, dict]:
    """Train from ``seed`` on Chapter 6's batches with a learning-rate ``schedule`` of
    :data:`SCHEDULES`; the metadata holds the curves and the time it took."""
    warmup_share, decay = SCHEDULES[one_of("schedule", schedule, SCHEDULES)]
    seed_everything(seed)
    model = build_model()
    max_steps = steps or STEPS
    config = TrainConfig(max_steps=max_steps, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE,
                         warmup_steps=round(warmup_share * max_steps), decay=decay,
                         clip_grad_norm=CLIP_GRAD_NORM, eval_every=100, eval_batches=4, seed=seed,
                         progress=progress)
    started = time.perf_counter()
    history = train(model, training_batches(FORWARD_SOURCE, seed), config,
                    val_batches=validation_batches(FORWARD_SOURCE), loss_fn=_loss)
    seconds = time.perf_counter() - started
    model.eval()
    metadata = {
        "model": "transformer", "seed": seed, "steps": config.max_steps, "seconds": round(seconds, 1),
        "schedule": schedule, "warmup_steps": config.warmup_steps, "decay": config.decay,
        "parameters": sum(p.numel() for p in model.parameters()),
        "val_steps": history.val_steps, "val_loss": [round(v, 5) for v in history.val_loss],
        "train_loss_every_50": [round(sum(history.train_loss[i:i + 50]) / len(history.train_loss[i:i + 50]), 5)
                                for i in range(0, len(history.train_loss), 50)],
    }
    return model, metadata


def recipe_name(seed: int = 0, schedule: str = "constant") -> str:
    """``ch07_translation``, ``ch07_translation_seed1``, ``ch07_translation_scheduled_seed2``, ..."""
    schedule = one_of("schedule", schedule, SCHEDULES)
    name = "ch07_translation" if schedule == "constant" else f"ch07_translation_{schedule}"
    return name + ("" if seed == 0 else f"_seed{seed}")


def _recipe(seed: int, schedule: str) -> Recipe:
    warmup = "" if schedule == "constant" else ", warm-up over a tenth of the steps and cosine decay"
    return Recipe(
        name=recipe_name(seed, schedule),
        description=f"Chapter 7: English→Kelo encoder-decoder Transformer{warmup}, seed {seed}",
        build_model=build_model,
        train=partial(train_model, schedule=schedule, progress=True),
        seed=seed,
    )


ALL_RECIPES = {recipe.name: recipe for recipe in (_recipe(seed, schedule) for schedule in SCHEDULES
                                                      for seed in SEEDS)}
# The recipes whose checkpoints are committed (a registered recipe must have its checkpoint).
TRAINED = tuple(recipe_name(seed, schedule) for schedule in SCHEDULES for seed in SEEDS)
RECIPES = {name: ALL_RECIPES[name] for name in TRAINED}
