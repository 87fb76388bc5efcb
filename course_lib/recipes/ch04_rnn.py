"""Chapter 4's experiment: a character-level vanilla RNN language model on the story corpus.

The model (:class:`~course_lib.rnn.RecurrentLM` around a tanh :class:`~course_lib.rnn.RNN`) reads one character at a time and
predicts the next one. It is trained on the training split of Chapters 1 and 3 (the same 1,000
stories), so that its perplexity can stand beside theirs.

Each story is one sequence, ``"\\n" + text + "\\n"``, read from a zero hidden state: the first
newline is the start symbol, the last one the end of the story, which the model must predict too.
The model thus predicts ``len(text) + 1`` characters per story, the units the corpus's entropy floor
counts with ``unit="char"``. Training uses whole stories (full backpropagation through time, about
400 steps on average) with gradient-norm clipping; evaluation reads them exactly the same way.

The stories become ids with :mod:`course_lib.story_text` (the chapter reads and samples them the
same way) and are measured with :mod:`course_lib.evaluate`.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor

from course_lib.checks import integer
from course_lib.data.corpus import StoryCorpus, story_corpus
from course_lib.data.text import Vocabulary
from course_lib.recipes import Recipe
from course_lib.recipes.ch01_ngrams import CORPUS  # the splits of Chapters 1 and 3
from course_lib.rnn import RNN, RecurrentLM
from course_lib.runtime import seed_everything
from course_lib.story_text import BOUNDARY, char_vocabulary, encode_story
from course_lib.train import TrainConfig, pad_sequences, train

__all__ = [
    "CORPUS",
    "D_EMBED",
    "D_HIDDEN",
    "RECIPES",
    "SETTINGS",
    "Settings",
    "build_model",
    "corpus",
    "story_batches",
    "train_char_rnn",
]

D_EMBED = 32
D_HIDDEN = 384


@dataclass(frozen=True)
class Settings:
    steps: int = 1500
    batch_size: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    clip_grad_norm: float = 1.0
    eval_every: int = 100
    early_stopping_patience: int | None = 4


SETTINGS = Settings()


# ---------------------------------------------------------------------------------------------
# Data: whole stories as character ids, padded into batches
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def corpus() -> StoryCorpus:
    """The story corpus with the splits of Chapters 1 and 3."""
    return story_corpus(**CORPUS)


@lru_cache(maxsize=1)
def _training_vocabulary() -> Vocabulary:
    return char_vocabulary([story.text for story in corpus().train])


def story_batches(sequences: Sequence[Sequence[int]], batch_size: int, pad_id: int,
                  seed: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless padded batches of whole stories, seeded.

    Each pass shuffles the stories, sorts them by length within pools of 16 batches and shuffles
    the batches of a pool: stories of similar length share a batch, so little computation goes
    into padding, while which stories meet still changes from pass to pass.
    """
    integer("batch_size", batch_size, minimum=1, maximum=len(sequences))
    generator = torch.Generator().manual_seed(seed)
    pool = 16 * batch_size
    while True:
        order = torch.randperm(len(sequences), generator=generator).tolist()
        for start in range(0, len(order) - batch_size + 1, pool):
            chunk = sorted(order[start : start + pool], key=lambda i: len(sequences[i]))
            batches = [chunk[i : i + batch_size] for i in range(0, len(chunk) - batch_size + 1, batch_size)]
            for b in torch.randperm(len(batches), generator=generator).tolist():
                yield pad_sequences([sequences[i] for i in batches[b]], pad_id)


# ---------------------------------------------------------------------------------------------
# The recipe
# ---------------------------------------------------------------------------------------------
def build_model(vocab_size: int | None = None) -> RecurrentLM:
    """The untrained model: embedding 32, one tanh RNN layer of 384 units, fused (PyTorch's ``nn.RNN``)."""
    size = len(_training_vocabulary()) if vocab_size is None else vocab_size
    return RecurrentLM(size, RNN(D_EMBED, D_HIDDEN, fused=True))


def train_char_rnn(seed: int = 0, steps: int | None = None,
                   settings: Settings = SETTINGS) -> tuple[RecurrentLM, dict[str, Any]]:
    """Train the model on whole stories; the metadata holds the settings, the vocabulary and the history.

    Validation losses are the mean of per-batch mean losses over the validation split (nats per
    character, for following the training); the chapter computes exact figures from the checkpoint.
    """
    steps = settings.steps if steps is None else steps
    seed_everything(seed)
    vocabulary = _training_vocabulary()
    pad = vocabulary.token_to_id(BOUNDARY)
    train_sequences = [encode_story(story.text, vocabulary) for story in corpus().train]
    validation_sequences = [encode_story(story.text, vocabulary) for story in corpus().validation]
    validation_batches = [pad_sequences(validation_sequences[i : i + 50], pad)
                          for i in range(0, len(validation_sequences), 50)]
    model = build_model(len(vocabulary))
    seed_everything(seed)
    model.reset_parameters()  # the seed draws the embedding, the layer, the read-out, in that order
    config = TrainConfig(max_steps=steps, batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                         weight_decay=settings.weight_decay, clip_grad_norm=settings.clip_grad_norm,
                         eval_every=min(settings.eval_every, steps), eval_batches=len(validation_batches),
                         early_stopping_patience=settings.early_stopping_patience, seed=seed, progress=False)
    # language_model_loss ignores the IGNORE_INDEX targets of the padding (PyTorch's default ignore_index)
    history = train(model, story_batches(train_sequences, settings.batch_size, pad, seed), config,
                    val_batches=validation_batches)
    model.eval()
    metadata = {
        "d_embed": D_EMBED,
        "d_hidden": D_HIDDEN,
        "parameters": sum(p.numel() for p in model.parameters()),
        "corpus": CORPUS,
        "vocabulary": vocabulary.to_json(),
        "settings": asdict(settings),
        "steps": len(history.steps),
        "best_step": history.best_step,
        "train_loss": [round(x, 4) for x in history.train_loss],
        "grad_norm": [round(x, 4) for x in history.grad_norm],
        "val_steps": history.val_steps,
        "val_loss": [round(x, 4) for x in history.val_loss],
    }
    return model, metadata


RECIPES = {
    "ch04_char_rnn": Recipe(
        name="ch04_char_rnn",
        description=(f"character-level vanilla RNN language model on whole stories (embedding {D_EMBED}, "
                     f"hidden {D_HIDDEN}), up to {SETTINGS.steps} AdamW steps with gradient clipping "
                     f"{SETTINGS.clip_grad_norm}, early stopping on validation"),
        build_model=build_model,
        train=lambda seed=0, steps=None: train_char_rnn(seed, steps),
    ),
}
