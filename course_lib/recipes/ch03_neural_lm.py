"""Chapter 3's fixed-window model, kept for the later chapters' comparisons.

The model and settings of :func:`course_lib.baselines.train_fixed_window` (5 words of context,
embeddings of 16, 64 hidden units, AdamW with early stopping), trained on the training split of
Chapter 1 (:data:`course_lib.recipes.ch01_ngrams.CORPUS`) over Chapter 1's word types.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from course_lib.baselines import (FIXED_WINDOW_CONTEXT, FIXED_WINDOW_SETTINGS, fixed_window_vocabulary,
                                  train_fixed_window, word_types)
from course_lib.data.corpus import StoryCorpus, story_corpus
from course_lib.data.text import Vocabulary
from course_lib.neural_lm import FixedWindowLM
from course_lib.recipes import Recipe
from course_lib.recipes.ch01_ngrams import CORPUS
from course_lib.runtime import seed_everything

__all__ = ["RECIPES", "build_model", "train_model", "vocabulary"]


@lru_cache(maxsize=1)
def _corpus() -> StoryCorpus:
    return story_corpus(**CORPUS)


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """Chapter 1's word types of the training split, after ``<unk>``, ``<s>``, ``</s>``."""
    return fixed_window_vocabulary(word_types(_corpus().tokens("train")))


def build_model() -> FixedWindowLM:
    """The untrained model, to load the checkpoint into."""
    return FixedWindowLM(len(vocabulary()), FIXED_WINDOW_CONTEXT, FIXED_WINDOW_SETTINGS["embedding_dim"],
                         FIXED_WINDOW_SETTINGS["hidden_dim"])


def train_model(seed: int = 0, steps: int | None = None) -> tuple[FixedWindowLM, dict[str, Any]]:
    """Train with Chapter 3's settings; the metadata holds the vocabulary and the validation history."""
    seed_everything(seed)  # one thread: the sums of the notebooks that trained it before
    corpus = _corpus()
    baseline = train_fixed_window(corpus.tokens("train"), corpus.tokens("validation"),
                                  word_types(corpus.tokens("train")), seed=seed,
                                  max_steps=FIXED_WINDOW_SETTINGS["max_steps"] if steps is None else steps)
    history = baseline.history
    return baseline.model, {"corpus": CORPUS, "vocabulary": baseline.vocabulary.to_json(),
                            "settings": FIXED_WINDOW_SETTINGS, "best_step": history.best_step,
                            "val_steps": history.val_steps, "val_loss": [round(x, 4) for x in history.val_loss]}


RECIPES = {
    "ch03_fixed_window": Recipe(
        name="ch03_fixed_window",
        description="Chapter 3's fixed-window model (5 words of context, 16-dim embeddings, 64 hidden units), "
                    "AdamW with early stopping on Chapter 1's 1,000 training stories; about 20 s",
        build_model=build_model,
        train=train_model,
    ),
}
