"""Chapter 6 recipes: English → Kelo translation without and with attention, three seeds each.

Every model has one-layer LSTMs and 183,000 to 194,000 parameters:

* ``ch06_plain``: Sutskever et al.'s encoder-decoder; the context vector (the encoder's last
  state) is all the decoder is told about the source. Hidden width 104.
* ``ch06_reversed``: the same model reading each source backwards (their trick: the first source
  words end up close to the first target words).
* ``ch06_dot``, ``ch06_general``, ``ch06_additive``: Luong-style attention with each score;
  hidden width 96 (the combining layer ``W_c`` takes the parameters the plain model spends on
  width; the additive score's own width is 48).

All are trained on fresh sentences of the training split (source lengths 5 to 50, uniform over
clause counts), 64 pairs a step, AdamW at 3e-3, gradient norm clipped at 1. ``_seed1`` and
``_seed2`` name the same settings from seeds 1 and 2.
"""
from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import torch

from course_lib import checks
from course_lib.data.parallel import sentence_pairs
from course_lib.data.program import derive_seed
from course_lib.data.text import Vocabulary
from course_lib.data.translation import TranslationPair, default_translation_program
from course_lib.lstm import LSTM
from course_lib.recipes import Recipe
from course_lib.runtime import seed_everything
from course_lib.seq2seq import Encoder, Seq2Seq, make_batch, special_ids
from course_lib.train import TrainConfig, train

D_EMBED = 48
MIN_LENGTH, MAX_LENGTH = 5, 50  # source tokens, final "." included (EOS comes on top)
BATCH_SIZE = 64
STEPS = 1200
LEARNING_RATE = 3e-3
CLIP_GRAD_NORM = 1.0
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Variant:
    name: str
    attention: str | None
    score: str = "dot"
    d_hidden: int = 96
    reverse_source: bool = False
    d_attention: int | None = None  # the additive score's width (None: d_hidden)


VARIANTS = {
    "plain": Variant("plain", None, d_hidden=104),
    "reversed": Variant("reversed", None, d_hidden=104, reverse_source=True),
    "dot": Variant("dot", "luong", "dot"),
    "general": Variant("general", "luong", "general"),
    "additive": Variant("additive", "luong", "additive", d_attention=48),
}


def vocabularies() -> tuple[Vocabulary, Vocabulary]:
    """Source and target vocabularies: every word the translation program can write."""
    program = default_translation_program()
    return Vocabulary(program.source_words()), Vocabulary(program.target_words())


def source_ids(pair: TranslationPair, vocabulary: Vocabulary, reverse: bool = False) -> list[int]:
    """The source's token ids, backwards for the reversed-source models."""
    ids = vocabulary.encode(pair.source)
    return ids[::-1] if reverse else ids


def pair_batch(pairs: list[TranslationPair], variant: Variant, source_vocabulary: Vocabulary,
               target_vocabulary: Vocabulary) -> tuple[torch.Tensor, ...]:
    """A teacher-forcing batch (:func:`course_lib.seq2seq.make_batch`) of translation pairs."""
    pad, bos, eos = special_ids(source_vocabulary, target_vocabulary)
    return make_batch([source_ids(pair, source_vocabulary, variant.reverse_source) for pair in pairs],
                      [target_vocabulary.encode(pair.target) for pair in pairs], pad_id=pad, bos_id=bos, eos_id=eos)


def build_model(variant_name: str) -> Seq2Seq:
    variant = VARIANTS[checks.one_of("variant", variant_name, tuple(VARIANTS))]
    source_vocabulary, target_vocabulary = vocabularies()
    d = variant.d_hidden
    encoder = Encoder(len(source_vocabulary), D_EMBED, LSTM(D_EMBED, d, fused=True), pad_id=0)
    return Seq2Seq(encoder, LSTM(D_EMBED, d, fused=True), len(target_vocabulary), D_EMBED,
                   attention=variant.attention, score=variant.score, d_attention=variant.d_attention, pad_id=0)


def training_batches(variant: Variant, seed: int) -> Iterator[tuple[torch.Tensor, ...]]:
    """Endless batches of fresh training-split pairs (a new stream of sentences per seed).

    Fifty batches' worth of pairs at a time are sorted by length before they are cut into batches
    (so a batch holds sentences of about one length and little padding), and the batches are
    then shuffled.
    """
    source_vocabulary, target_vocabulary = vocabularies()
    stream = 0
    while True:
        rng = random.Random(derive_seed(seed, "ch06 batch order", stream))
        pairs = sentence_pairs(BATCH_SIZE * 50, MIN_LENGTH, MAX_LENGTH,
                               derive_seed(seed, "ch06 training", stream), split="train")
        pairs.sort(key=lambda pair: len(pair.source))
        batches = [pairs[start:start + BATCH_SIZE] for start in range(0, len(pairs), BATCH_SIZE)]
        rng.shuffle(batches)
        for batch in batches:
            yield pair_batch(batch, variant, source_vocabulary, target_vocabulary)
        stream += 1


def validation_batches(variant: Variant) -> list[tuple[torch.Tensor, ...]]:
    source_vocabulary, target_vocabulary = vocabularies()
    pairs = sentence_pairs(BATCH_SIZE * 4, MIN_LENGTH, MAX_LENGTH, seed=0, split="validation")
    return [pair_batch(pairs[start:start + BATCH_SIZE], variant, source_vocabulary, target_vocabulary)
            for start in range(0, len(pairs), BATCH_SIZE)]


def _loss(model: Seq2Seq, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return model.loss(*batch)


def train_variant(variant_name: str, seed: int = 0, steps: int | None = None,
                  progress: bool = True) -> tuple[Seq2Seq, dict]:
    """Train one variant from ``seed``; the metadata holds the curves and the time it took."""
    variant = VARIANTS[checks.one_of("variant", variant_name, tuple(VARIANTS))]
    seed_everything(seed)
    model = build_model(variant_name)
    config = TrainConfig(max_steps=steps or STEPS, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE,
                         clip_grad_norm=CLIP_GRAD_NORM, eval_every=100, eval_batches=4, seed=seed,
                         progress=progress)
    started = time.perf_counter()
    history = train(model, training_batches(variant, seed), config, val_batches=validation_batches(variant),
                    loss_fn=_loss)
    seconds = time.perf_counter() - started
    model.eval()
    metadata = {
        "variant": variant_name, "seed": seed, "steps": config.max_steps, "seconds": round(seconds, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "val_steps": history.val_steps, "val_loss": [round(v, 5) for v in history.val_loss],
        "train_loss_every_50": [round(sum(history.train_loss[i:i + 50]) / len(history.train_loss[i:i + 50]), 5)
                                for i in range(0, len(history.train_loss), 50)],
    }
    return model, metadata


def recipe_name(variant: str, seed: int = 0) -> str:
    return f"ch06_{variant}" + ("" if seed == 0 else f"_seed{seed}")


def _recipe(variant: str, seed: int) -> Recipe:
    return Recipe(
        name=recipe_name(variant, seed),
        description=f"Chapter 6: English→Kelo seq2seq, {variant}, seed {seed}",
        build_model=partial(build_model, variant),
        train=partial(_train_from, variant),
        seed=seed,
    )


def _train_from(variant: str, seed: int = 0, steps: int | None = None):
    return train_variant(variant, seed, steps)


RECIPES = {recipe.name: recipe for recipe in (_recipe(variant, seed) for variant in VARIANTS for seed in SEEDS)}
