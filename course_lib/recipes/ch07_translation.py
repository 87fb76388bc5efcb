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
model of that seed. Only the seeds whose checkpoints are committed are registered in
:data:`RECIPES`.
"""
from __future__ import annotations

import time
from functools import partial

import torch

from course_lib.recipes import Recipe
from course_lib.recipes.ch06_seq2seq import (BATCH_SIZE, CLIP_GRAD_NORM, LEARNING_RATE, STEPS, VARIANTS,
                                             training_batches, validation_batches, vocabularies)
from course_lib.runtime import seed_everything
from course_lib.train import TrainConfig, train
from course_lib.transformer import TransformerConfig, TransformerSeq2Seq

__all__ = ["CONFIG", "RECIPES", "SEEDS", "build_model", "recipe_name", "train_model"]

CONFIG = TransformerConfig(d_model=64, num_heads=4, num_encoder_layers=2, num_decoder_layers=2, d_ff=96,
                           dropout=0.0, norm_first=True)
SEEDS = (0, 1, 2)
# Chapter 6's batches of its models that read the source forwards (every model but "reversed").
FORWARD_SOURCE = VARIANTS["dot"]


def build_model() -> TransformerSeq2Seq:
    """The untrained translation Transformer, on Chapter 6's vocabularies."""
    source_vocabulary, target_vocabulary = vocabularies()
    return TransformerSeq2Seq(len(source_vocabulary), len(target_vocabulary), CONFIG, tie_embeddings=True)


def _loss(model: TransformerSeq2Seq, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return model.loss(*batch)


def train_model(seed: int = 0, steps: int | None = None, progress: bool = True) -> tuple[TransformerSeq2Seq, dict]:
    """Train from ``seed`` on Chapter 6's batches; the metadata holds the curves and the time it took."""
    seed_everything(seed)
    model = build_model()
    config = TrainConfig(max_steps=steps or STEPS, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE,
                         clip_grad_norm=CLIP_GRAD_NORM, eval_every=100, eval_batches=4, seed=seed,
                         progress=progress)
    started = time.perf_counter()
    history = train(model, training_batches(FORWARD_SOURCE, seed), config,
                    val_batches=validation_batches(FORWARD_SOURCE), loss_fn=_loss)
    seconds = time.perf_counter() - started
    model.eval()
    metadata = {
        "model": "transformer", "seed": seed, "steps": config.max_steps, "seconds": round(seconds, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "val_steps": history.val_steps, "val_loss": [round(v, 5) for v in history.val_loss],
        "train_loss_every_50": [round(sum(history.train_loss[i:i + 50]) / len(history.train_loss[i:i + 50]), 5)
                                for i in range(0, len(history.train_loss), 50)],
    }
    return model, metadata


def recipe_name(seed: int = 0) -> str:
    return "ch07_translation" + ("" if seed == 0 else f"_seed{seed}")


def _train_from(seed: int = 0, steps: int | None = None):
    return train_model(seed, steps)


def _recipe(seed: int) -> Recipe:
    return Recipe(
        name=recipe_name(seed),
        description=f"Chapter 7: English→Kelo encoder-decoder Transformer, seed {seed}",
        build_model=build_model,
        train=_train_from,
        seed=seed,
    )


RECIPES = {recipe.name: recipe for recipe in (_recipe(seed) for seed in SEEDS)}
