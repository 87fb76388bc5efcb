"""Chapter 9's experiment: one Transformer, three pretraining objectives, equal compute.

The same network (:class:`~course_lib.bert.BertForMaskedLM` at a small size, :func:`model_config`:
hidden 64, 4 heads, 3 post-norm layers with FFN 256, the read-out tied to the word embeddings)
is trained on the same stories for the same number of steps of the same batch size, three times,
differing only in what each position may see and what is predicted
(:mod:`course_lib.objectives`):

* ``ch09_mlm``: masked LM (BERT's 80/10/10 on 15% of the tokens), every position sees every other;
* ``ch09_clm``: causal LM, each position sees itself and the positions before it, predicts the next;
* ``ch09_prefix``: prefix LM, a random prefix (uniform over the story's length) seen in both
  directions, the loss on the continuation only;
* ``ch09_mlm40``: the masked LM with 40% of the tokens selected instead of 15% (still 80/10/10 of
  them), Wettig et al.'s question "should you mask 15%?" at this size.

A story is ``<s> w_1 ... w_n </s>`` over Chapter 5's word vocabulary
(:func:`~course_lib.recipes.ch05_lstm_gru.story_vocabulary`) plus one id, ``[MASK]``
(:data:`MASK`); training stories are drawn fresh at every step (never a held-out one), 16 batches
at a time and sorted by length, through a short curriculum of ever longer stories
(:data:`SCHEDULE`, Chapter 5's stages shortened) with a cool-down at a tenth of the learning rate.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from functools import lru_cache
from itertools import count
from typing import Any

import torch
from torch import Tensor

from course_lib.bert import BertConfig, BertForMaskedLM, count_parameters
from course_lib.checks import one_of
from course_lib.data.corpus import story_corpus
from course_lib.data.story_qa import ClozeProbe
from course_lib.data.program import derive_seed
from course_lib.data.stories import StoryProgram, StoryShape, generate_stories
from course_lib.objectives import (IGNORE_INDEX, causal_lm_targets, mask_tokens, prefix_lm_attention_mask,
                                   prefix_lm_targets)
from course_lib.recipes import Recipe
from course_lib.recipes.ch05_lstm_gru import CORPUS, Stage, story_vocabulary
from course_lib.runtime import seed_everything
from course_lib.story_text import encode_stories
from course_lib.train import TrainConfig, train

__all__ = ["BATCH_SIZE", "MASK", "MASKING_RATES", "MAX_POSITIONS", "OBJECTIVES", "RECIPES", "SCHEDULE",
           "TRAINED_SEEDS", "accuracy", "attention_for", "blank_scores", "build_model", "hidden_states", "logits",
           "model_config", "objective_loss", "pad_batch", "probe_ids", "recipe_name", "rescoring_scores",
           "special_ids", "story_batches", "train_model", "vocab_size"]

OBJECTIVES = ("mlm", "clm", "prefix", "mlm40")
# the share of tokens each masked objective selects; the others see every token of the story
MASKING_RATES = {"mlm": 0.15, "mlm40": 0.40}
BATCH_SIZE = 32
LEARNING_RATE = 2e-3
CLIP_GRAD_NORM = 1.0
MAX_POSITIONS = 320  # the longest training story is about 250 tokens
# Chapter 5's curriculum, shortened: facts asked right away first, then ever more filler
# sentences in between, ending on the corpus's own shape, then a cool-down at a tenth of the rate.
SCHEDULE = (
    Stage(max_facts=1, max_fillers=0, steps=800),
    Stage(max_facts=3, max_fillers=0, steps=800),
    Stage(max_facts=3, max_fillers=2, steps=800),
    Stage(max_facts=3, max_fillers=8, steps=800),
    Stage(max_facts=3, max_fillers=8, steps=300, learning_rate_factor=0.1),
)
EVAL_EVERY = 200


@lru_cache(maxsize=1)
def vocab_size() -> int:
    """Chapter 5's word vocabulary and ``[MASK]`` after it."""
    return len(story_vocabulary()) + 1


def _mask_id() -> int:
    return vocab_size() - 1


MASK = "[MASK]"


def special_ids() -> list[int]:
    """``<pad> <unk> <s> </s> [MASK]``: never selected for masking, never drawn as random tokens."""
    vocabulary = story_vocabulary()
    return [vocabulary.special_id(token) for token in ("<pad>", "<unk>", "<s>", "</s>")] + [_mask_id()]


def model_config() -> BertConfig:
    """Hidden 64, 4 heads, 3 layers, FFN 256, 320 positions, 2 segments, no dropout."""
    return BertConfig(vocab_size=vocab_size(), hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                      intermediate_size=256, max_position_embeddings=MAX_POSITIONS, type_vocab_size=2,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                      pad_token_id=story_vocabulary().special_id("<pad>"))


def build_model() -> BertForMaskedLM:
    return BertForMaskedLM(model_config())


def attention_for(objective: str, ids: Tensor, prefix_lengths: Tensor | None = None) -> Tensor:
    """``(batch, T, T)`` booleans, True where query ``i`` may look at key ``j``: every real token
    (MLM), ``j ≤ i`` (CLM), or ``j ≤ i`` or ``j`` in the prefix (prefix LM)."""
    objective = one_of("objective", objective, OBJECTIVES)
    batch, time = ids.shape
    if objective in MASKING_RATES:
        real = ids != model_config().pad_token_id
        return real[:, None, :].expand(batch, time, time)
    if objective == "clm":
        return torch.ones(time, time, dtype=torch.bool).tril().expand(batch, time, time)
    return prefix_lm_attention_mask(prefix_lengths, time)


def hidden_states(model: BertForMaskedLM, ids: Tensor, attention: Tensor, token_type_ids: Tensor | None = None):
    """The encoder's ``(batch, T, H)`` output under an arbitrary ``(batch, T, T)`` attention pattern:
    BERT's embeddings, then each layer with the pattern as its mask."""
    types = torch.zeros_like(ids) if token_type_ids is None else token_type_ids
    x = model.bert.embeddings(ids, types)
    for layer in model.bert.encoder.layers:
        x = layer(x, attention[:, None])  # one pattern for every head
    return x


def logits(model: BertForMaskedLM, ids: Tensor, attention: Tensor) -> Tensor:
    """``(batch, T, V)`` scores over the vocabulary at every position (the tied read-out)."""
    return model.mlm_head(hidden_states(model, ids, attention))


def objective_loss(model: BertForMaskedLM, ids: Tensor, objective: str, generator: torch.Generator) -> Tensor:
    """One batch's loss under ``objective``; ``ids (batch, T)`` padded stories."""
    pad = model_config().pad_token_id
    if objective in MASKING_RATES:
        masked = mask_tokens(ids, vocab_size=vocab_size(), mask_id=_mask_id(), special_ids=special_ids(),
                             generator=generator, select_probability=MASKING_RATES[objective])
        inputs, targets = masked.inputs, masked.labels
        attention = attention_for("mlm", ids)
    elif objective == "clm":
        inputs, targets = causal_lm_targets(ids, pad)
        attention = attention_for("clm", inputs)
    else:
        lengths = (ids != pad).sum(dim=1)  # each story's length with <s> and </s>
        prefix = 1 + (torch.rand(len(ids), generator=generator) * (lengths - 1).float()).long()  # in [1, n-1]
        inputs, targets = prefix_lm_targets(ids, prefix, pad)
        attention = attention_for("prefix", inputs, prefix)
    scores = logits(model, inputs, attention)
    return torch.nn.functional.cross_entropy(scores.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)


def pad_batch(sequences: list[list[int]]) -> Tensor:
    """Id sequences padded at the end into ``(batch, longest)``."""
    width = max(len(sequence) for sequence in sequences)
    pad = model_config().pad_token_id
    return torch.tensor([sequence + [pad] * (width - len(sequence)) for sequence in sequences])


def story_batches(stage: Stage, seed: int) -> Iterator[Tensor]:
    """Endless ``(BATCH_SIZE, T)`` batches of fresh stories of the stage's shape (as Chapter 5's)."""
    program = StoryProgram(shape=StoryShape(max_facts=stage.max_facts, max_fillers=stage.max_fillers))
    order = torch.Generator().manual_seed(seed)
    for pool in count():
        stories = generate_stories(16 * BATCH_SIZE, derive_seed(seed, "ch09 training", stage, pool), program)
        sequences = sorted(encode_stories([story.text for story in stories], story_vocabulary()), key=len)
        for b in torch.randperm(16, generator=order).tolist():
            yield pad_batch(sequences[b * BATCH_SIZE : (b + 1) * BATCH_SIZE])


@lru_cache(maxsize=1)
def validation_batches() -> list[Tensor]:
    """Chapter 5's validation split (200 stories) in batches of 50."""
    corpus = story_corpus(**{**CORPUS, "train_stories": 0})
    stories = encode_stories(corpus.tokens("validation"), story_vocabulary())
    return [pad_batch(stories[i : i + 50]) for i in range(0, len(stories), 50)]


def train_model(objective: str, seed: int = 0, steps: int | None = None) -> tuple[BertForMaskedLM, dict[str, Any]]:
    """Train the model under ``objective`` through :data:`SCHEDULE` (``steps`` keeps the first steps).

    Each stage is one call of :func:`course_lib.train.train` (a fresh AdamW, gradients clipped to
    norm 1); the validation loss is the objective's own, with the masking and prefixes drawn from
    a fixed generator at every evaluation so that evaluations compare.
    """
    objective = one_of("objective", objective, OBJECTIVES)
    seed_everything(seed)
    model = build_model()
    draws = torch.Generator().manual_seed(derive_seed(seed, "ch09 draws", objective) % 2**63)

    def training_loss(model, ids):
        return objective_loss(model, ids, objective, draws)

    def validation_loss(model, ids):
        return objective_loss(model, ids, objective, torch.Generator().manual_seed(int(ids.sum())))

    budget = sum(stage.steps for stage in SCHEDULE) if steps is None else steps
    done, train_loss, val_steps, val_loss, stages = 0, [], [], [], []
    for index, stage in enumerate(SCHEDULE):
        stage_steps = min(stage.steps, budget - done)
        if stage_steps <= 0:
            break
        config = TrainConfig(max_steps=stage_steps, batch_size=BATCH_SIZE,
                             learning_rate=LEARNING_RATE * stage.learning_rate_factor, clip_grad_norm=CLIP_GRAD_NORM,
                             eval_every=min(EVAL_EVERY, stage_steps), eval_batches=len(validation_batches()),
                             seed=seed + index, progress=False)
        history = train(model, story_batches(stage, derive_seed(seed, "ch09 stage", index)), config,
                        val_batches=validation_batches(), loss_fn=training_loss)
        train_loss += [round(x, 4) for x in history.train_loss]
        val_steps += [done + step for step in history.val_steps]
        val_loss += [round(x, 4) for x in history.val_loss]
        done += stage_steps
        stages.append({**asdict(stage), "steps": stage_steps, "last_step": done})
    model.eval()
    metadata = {"objective": objective, "config": asdict(model.config), "parameters": count_parameters(model),
                "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE, "stages": stages,
                "train_loss": train_loss, "val_steps": val_steps, "val_loss": val_loss}
    return model, metadata


# ---------------------------------------------------------------------------------------------
# Cloze probes: what each model predicts at a blank
# ---------------------------------------------------------------------------------------------
def probe_ids(probe: ClozeProbe) -> tuple[Tensor, int, list[int]]:
    """``<s> w_1 .. w_n </s>`` as ``(T,)`` ids, the blank's index in it, and the candidates' ids."""
    vocabulary = story_vocabulary()
    ids = encode_stories([list(probe.tokens)], vocabulary)[0]
    return torch.tensor(ids), probe.position + 1, vocabulary.encode(list(probe.candidates))


@torch.no_grad()
def blank_scores(model: BertForMaskedLM, objective: str, probes: list[ClozeProbe]) -> list[Tensor]:
    """Per probe, ``(candidates,)`` log-probabilities of each candidate *at the blank*, as the model
    reads it: ``[MASK]`` in the whole story (MLM), the words before the blank (CLM), or the
    words before the blank as a prefix seen both ways (prefix LM)."""
    objective = one_of("objective", objective, OBJECTIVES)
    rows = []
    for probe in probes:
        ids, blank, candidates = probe_ids(probe)
        if objective in MASKING_RATES:
            ids = ids.clone()
            ids[blank] = _mask_id()
            scores = logits(model, ids[None], attention_for("mlm", ids[None]))[0, blank]
        else:
            context = ids[None, :blank]  # the words before the blank; the last one predicts it
            # the prefix LM reads the whole context as its prefix, every word seeing every other
            pattern = attention_for("mlm" if objective == "prefix" else "clm", context)
            scores = logits(model, context, pattern)[0, -1]
        rows.append(scores.log_softmax(-1)[candidates])
    return rows


@torch.no_grad()
def rescoring_scores(model: BertForMaskedLM, objective: str, probes: list[ClozeProbe]) -> list[Tensor]:
    """Per probe, ``(candidates,)`` scores: a left-to-right model (``"clm"`` or ``"prefix"``) scores each
    candidate by the log-probability of the rest of the story with the candidate written in,
    ``Σ_{t ≥ blank} log p(x_t | x_<t)``: one pass per candidate, which sees the right-hand side
    through its effect on the words after the blank."""
    objective = one_of("objective", objective, ("clm", "prefix"))
    rows = []
    for probe in probes:
        ids, blank, candidates = probe_ids(probe)
        filled = ids.repeat(len(candidates), 1)
        filled[:, blank] = torch.tensor(candidates)
        inputs, targets = filled[:, :-1], filled[:, 1:]
        prefix = torch.full((len(candidates),), blank)
        pattern = attention_for(objective, inputs, prefix if objective == "prefix" else None)
        log_probs = logits(model, inputs, pattern).log_softmax(-1).gather(-1, targets[..., None])[..., 0]
        rows.append(log_probs[:, blank - 1 :].sum(dim=1))  # from the blank itself to </s>
    return rows


def accuracy(scores_by_probe: list[Tensor], probes: list[ClozeProbe]) -> float:
    """Share of probes whose best-scored candidate is the answer."""
    right = [probe.candidates[int(scores.argmax())] == probe.answer for scores, probe in zip(scores_by_probe, probes)]
    return sum(right) / len(right)


SEEDS = (0, 1, 2)
# The seeds whose checkpoints are committed (a registered recipe must have its checkpoint).
TRAINED_SEEDS = {"mlm": (0, 1, 2), "clm": (0, 1, 2), "prefix": (0, 1, 2), "mlm40": (0, 1, 2)}
_NAMES = {"mlm": "masked LM (BERT's 80/10/10 on 15% of the tokens)", "clm": "causal LM",
          "prefix": "prefix LM (random prefix, loss on the continuation)",
          "mlm40": "masked LM (80/10/10 on 40% of the tokens)"}


def recipe_name(objective: str, seed: int = 0) -> str:
    """``ch09_mlm`` for seed 0, ``ch09_mlm_seed1`` for seed 1, and so on."""
    one_of("objective", objective, OBJECTIVES)
    return f"ch09_{objective}" if seed == 0 else f"ch09_{objective}_seed{seed}"


def _recipe(objective: str, seed: int) -> Recipe:
    total = sum(stage.steps for stage in SCHEDULE)
    return Recipe(
        name=recipe_name(objective, seed),
        description=(f"small Transformer (hidden 64, 3 layers, about 210,000 parameters) trained as a "
                     f"{_NAMES[objective]} for {total} AdamW steps of {BATCH_SIZE} stories, seed {seed}"),
        build_model=build_model,
        train=lambda seed=seed, steps=None: train_model(objective, seed, steps),
        seed=seed,
    )


RECIPES = {recipe.name: recipe for objective in OBJECTIVES
           for recipe in (_recipe(objective, seed) for seed in TRAINED_SEEDS[objective])}
