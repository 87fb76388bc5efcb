"""Chapter 5's experiment: a vanilla RNN, an LSTM and a GRU trained alike on the stories.

Three word-level language models (:class:`~course_lib.rnn.RecurrentLM`: embedding -> recurrent
layer -> read-out) with **the same number of
parameters** (about 205,000 each), trained through the same curriculum of stories for the same
number of steps. Equal parameters rather than equal hidden sizes: a gate costs parameters, so at
equal width the gated models would also be the bigger ones, and a win could be put down to size.
At equal size the vanilla RNN gets the widest hidden state (207 units against the LSTM's 128), so
if it remembers less, the gates are why. Each model is trained from three seeds (:data:`SEEDS`,
recipes ``ch05_lstm``, ``ch05_lstm_seed1``, ...), and one more GRU without the curriculum
(``ch05_gru_no_curriculum``, :data:`WITHOUT_CURRICULUM`) measures what the curriculum is worth.

Word tokens, not characters, so that a fact stated 100 words before its question is 100 steps
back, not 500: the long-range effect the chapter measures shows within a few minutes of CPU.

Each story is one sequence, ``<s> w_1 ... w_n </s>``, read from a zero state: the model predicts
every word and the end of the story, the units the corpus's entropy floor is counted in, and the
probes (:func:`course_lib.data.probes.make_probes`) are read the same way. Training stories are
drawn fresh from the corpus's generator at every step (:func:`stage_batches`), first short ones,
then ever longer (:data:`CURRICULUM`); the validation split is every chapter's.

The stories become ids with :func:`course_lib.story_text.encode_stories`; the chapter measures the
checkpoints with :mod:`course_lib.evaluate` (nats per token, probe scores), reading them exactly as
they were trained.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from itertools import count
from typing import Any

import torch
from torch import Tensor

from course_lib.checks import one_of
from course_lib.data.corpus import story_corpus
from course_lib.data.program import derive_seed
from course_lib.data.stories import StoryProgram, StoryShape, generate_stories
from course_lib.data.text import Vocabulary
from course_lib.lstm import CELLS, recurrent_layer
from course_lib.recipes import Recipe
from course_lib.rnn import RecurrentLM
from course_lib.runtime import seed_everything
from course_lib.story_text import encode_stories
from course_lib.train import TrainConfig, pad_sequences, train

__all__ = [
    "CELLS",
    "CORPUS",
    "CURRICULUM",
    "D_EMBED",
    "HIDDEN",
    "RECIPES",
    "SEEDS",
    "WITHOUT_CURRICULUM",
    "build_model",
    "recipe_name",
    "stage_batches",
    "story_vocabulary",
    "train_model",
    "train_through_curriculum",
    "validation_batches",
    "validation_stories",
]

# The validation and test splits are those of every chapter (each split has its own seed); the
# vocabulary is the words of this training split (training itself draws fresh stories).
CORPUS = {"train_stories": 8000, "validation_stories": 200, "test_stories": 200, "seed": 0}
D_EMBED = 64
# Hidden sizes that give the three models the same number of parameters (204,899 to 205,295).
HIDDEN = {"rnn": 207, "lstm": 128, "gru": 144}


# ---------------------------------------------------------------------------------------------
# Data: whole stories as id sequences, padded into batches
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _corpus():
    return story_corpus(**CORPUS)


@lru_cache(maxsize=1)
def story_vocabulary() -> Vocabulary:
    """Every word type of the 8000 stories of the training split, with ``<pad>``, ``<unk>``, ``<s>``,
    ``</s>`` first: the generator's whole vocabulary (a rarer word would be ``<unk>``)."""
    return Vocabulary.build(_corpus().tokens("train"))


@lru_cache(maxsize=1)
def validation_stories() -> tuple[tuple[int, ...], ...]:
    """Every chapter's validation split as ids of :func:`story_vocabulary`."""
    return tuple(map(tuple, encode_stories(_corpus().tokens("validation"), story_vocabulary())))


def validation_batches() -> list[Tensor]:
    """The validation split in padded batches of 50 stories, as the recipes evaluate it while training."""
    validation = [list(ids) for ids in validation_stories()]
    pad = story_vocabulary().special_id("<pad>")
    return [pad_sequences(validation[i : i + 50], pad) for i in range(0, len(validation), 50)]


# ---------------------------------------------------------------------------------------------
# The recipes: a curriculum of ever longer stories
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    """A stretch of training on stories of one shape: at most ``max_facts`` facts, each asked for
    after at most ``max_fillers`` filler sentences."""

    max_facts: int
    max_fillers: int
    steps: int
    learning_rate_factor: float = 1.0  # times the model's learning rate


# Starting small (Elman, 1993): facts asked right away first, then ever more sentences in between,
# ending on the corpus's own shape (3 facts, up to 8 fillers).
CURRICULUM = (
    Stage(max_facts=1, max_fillers=0, steps=1000),
    Stage(max_facts=3, max_fillers=0, steps=1000),
    Stage(max_facts=3, max_fillers=2, steps=1000),
    Stage(max_facts=3, max_fillers=4, steps=1000),
    Stage(max_facts=3, max_fillers=8, steps=2000, learning_rate_factor=0.3),
)
# What the curriculum is worth: the same stages, steps and learning rates, every one on the corpus's own shape.
WITHOUT_CURRICULUM = tuple(replace(stage, max_facts=StoryShape().max_facts, max_fillers=StoryShape().max_fillers)
                           for stage in CURRICULUM)
LEARNING_RATE = {"rnn": 3e-3, "lstm": 1e-2, "gru": 1e-2}
BATCH_SIZE = 32
CLIP_GRAD_NORM = 1.0
EVAL_EVERY = 250


def stage_batches(stage: Stage, vocabulary: Vocabulary, batch_size: int, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless padded batches of stories of the stage's shape, freshly generated, never repeated.

    Stories are drawn 16 batches at a time and sorted by length, so that a batch holds stories of
    similar length and little computation goes to padding; the batches of a pool come in random order.
    Their seeds are derived from ``seed`` and the stage, apart from those of the validation and test
    splits, so training never sees a held-out story.
    """
    pad = vocabulary.special_id("<pad>")
    program = StoryProgram(shape=StoryShape(max_facts=stage.max_facts, max_fillers=stage.max_fillers))
    generator = torch.Generator().manual_seed(seed)
    for pool in count():
        stories = generate_stories(16 * batch_size, derive_seed(seed, "ch05 training", stage, pool), program)
        sequences = sorted(encode_stories([story.text for story in stories], vocabulary), key=len)
        for b in torch.randperm(16, generator=generator).tolist():
            yield pad_sequences(sequences[b * batch_size : (b + 1) * batch_size], pad)


def build_model(cell: str) -> RecurrentLM:
    """The untrained model of one recipe: embedding 64, one recurrent layer of ``HIDDEN[cell]``, fused."""
    cell = one_of("cell", cell, CELLS)
    return RecurrentLM(len(story_vocabulary()), recurrent_layer(cell, D_EMBED, HIDDEN[cell], fused=True))


def train_model(cell: str, seed: int = 0, steps: int | None = None,
                curriculum: Sequence[Stage] = CURRICULUM) -> tuple[RecurrentLM, dict[str, Any]]:
    """Train one of the three models through the curriculum; ``steps`` keeps only its first steps.

    Each stage is one call of :func:`course_lib.train.train` (a fresh AdamW at the stage's learning
    rate), evaluated on the validation split every ``EVAL_EVERY`` steps. The metadata holds the
    settings and the loss history, with steps counted from the start of the curriculum.
    """
    model = build_model(cell)
    seed_everything(seed)
    model.reset_parameters()  # the seed draws the embedding, the layer, the read-out, in that order
    vocabulary = story_vocabulary()
    history = train_through_curriculum(model, curriculum, LEARNING_RATE[cell], seed, vocabulary,
                                       validation_batches(), steps)
    metadata = {
        "cell": cell,
        "d_embed": D_EMBED,
        "d_hidden": HIDDEN[cell],
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocabulary": vocabulary.to_json(),
        "corpus": CORPUS,
        "batch_size": BATCH_SIZE,
        "clip_grad_norm": CLIP_GRAD_NORM,
        **history,
    }
    return model, metadata


def train_through_curriculum(model, curriculum: Sequence[Stage], learning_rate: float, seed: int,
                             vocabulary: Vocabulary, validation_batches: list, steps: int | None = None) -> dict:
    """Train ``model`` in place through ``curriculum``, then put it in eval mode; ``steps`` keeps only
    the first steps. Returns ``stages``, ``train_loss``, ``val_steps`` and ``val_loss`` for the metadata.

    Each stage is one call of :func:`course_lib.train.train` (a fresh AdamW at ``learning_rate``
    times the stage's factor, gradients clipped to norm 1) on the stage's fresh stories, evaluated
    on ``validation_batches`` every ``EVAL_EVERY`` steps; steps count from the start of the curriculum.
    """
    budget = sum(stage.steps for stage in curriculum) if steps is None else steps
    done, stages = 0, []
    train_loss: list[float] = []
    val_steps: list[int] = []
    val_loss: list[float] = []
    for index, stage in enumerate(curriculum):
        stage_steps = min(stage.steps, budget - done)
        if stage_steps <= 0:
            break
        config = TrainConfig(max_steps=stage_steps, batch_size=BATCH_SIZE,
                             learning_rate=learning_rate * stage.learning_rate_factor,
                             clip_grad_norm=CLIP_GRAD_NORM, eval_every=min(EVAL_EVERY, stage_steps),
                             eval_batches=len(validation_batches), seed=seed + index, progress=False)
        history = train(model, stage_batches(stage, vocabulary, BATCH_SIZE, derive_seed(seed, "stage", index)),
                        config, val_batches=validation_batches)
        train_loss += [round(x, 4) for x in history.train_loss]
        val_steps += [done + step for step in history.val_steps]
        val_loss += [round(x, 4) for x in history.val_loss]
        done += stage_steps
        stages.append({**asdict(stage), "steps": stage_steps, "last_step": done,
                       "learning_rate": config.learning_rate})
    model.eval()
    return {"stages": stages, "train_loss": train_loss, "val_steps": val_steps, "val_loss": val_loss}


SEEDS = (0, 1, 2)


def _recipe(cell: str, label: str, seed: int) -> Recipe:
    total = sum(stage.steps for stage in CURRICULUM)
    return Recipe(
        name=recipe_name(cell, seed),
        description=(f"word-level {label} language model (embedding {D_EMBED}, hidden {HIDDEN[cell]}, about "
                     f"205,000 parameters), {total} AdamW steps on ever longer stories, seed {seed}"),
        build_model=lambda: build_model(cell),
        train=lambda seed=seed, steps=None: train_model(cell, seed, steps),
        seed=seed,
    )


def recipe_name(cell: str, seed: int = 0) -> str:
    """``ch05_lstm`` for seed 0, ``ch05_lstm_seed1`` for seed 1, and so on."""
    one_of("cell", cell, CELLS)
    return f"ch05_{cell}" if seed == 0 else f"ch05_{cell}_seed{seed}"


# Each model is trained from three seeds, so that the chapter can show how much of a result is the
# architecture and how much the luck of one initialisation; one more GRU is trained without the curriculum.
RECIPES = {recipe.name: recipe
           for cell, label in (("rnn", "vanilla RNN"), ("lstm", "LSTM"), ("gru", "GRU"))
           for recipe in (_recipe(cell, label, seed) for seed in SEEDS)}
RECIPES["ch05_gru_no_curriculum"] = Recipe(
    name="ch05_gru_no_curriculum",
    description=(f"the GRU of ch05_gru trained without the curriculum: the same {sum(s.steps for s in CURRICULUM)} "
                 "steps and learning rates, every story of the corpus's own shape"),
    build_model=lambda: build_model("gru"),
    train=lambda seed=0, steps=None: train_model("gru", seed, steps, WITHOUT_CURRICULUM),
)
