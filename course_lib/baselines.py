"""The best models of the earlier chapters, for the later chapters' comparison tables.

* Chapter 1's best n-gram model: interpolated Kneser-Ney with the order and discount that do best on
  the validation split (:func:`best_kneser_ney`);
* Chapter 3's fixed-window neural model, trained with that chapter's settings (:func:`train_fixed_window`,
  about 20 seconds on a laptop CPU).

Both are fitted on the 1,000 training stories of :func:`course_lib.data.corpus.story_corpus` with
``seed=0`` by the recipes ``ch01_kneser_ney`` and ``ch03_fixed_window`` (``course train NAME``), and a
later chapter loads their committed checkpoints (:func:`load_kneser_ney`, :func:`load_fixed_window`)
instead of fitting them again. They are measured with :mod:`course_lib.evaluate`, in nats per
predicted word token: every word and ``</s>``.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

import torch

from course_lib.data.text import Vocabulary
from course_lib.neural_lm import FixedWindowLM, context_windows
from course_lib.ngram import SPECIALS, NGramLM
from course_lib.recipes import load_trained
from course_lib.train import History, TrainConfig, random_batches, train

__all__ = ["FixedWindowBaseline", "best_kneser_ney", "fixed_window_vocabulary", "load_fixed_window",
           "load_kneser_ney", "train_fixed_window", "word_types"]

KNESER_NEY_ORDERS = (3, 4, 5)
KNESER_NEY_DISCOUNTS = (0.5, 0.75, 0.9, 1.0)
FIXED_WINDOW_CONTEXT = 5
FIXED_WINDOW_SETTINGS = {"embedding_dim": 16, "hidden_dim": 64, "optimizer": "adamw", "learning_rate": 3e-3,
                         "weight_decay": 0.1, "batch_size": 128, "max_steps": 6000, "eval_every": 200,
                         "early_stopping_patience": 5}


def best_kneser_ney(train_tokens: Sequence[Sequence[str]], validation_tokens: Sequence[Sequence[str]],
                    orders: Iterable[int] = KNESER_NEY_ORDERS,
                    discounts: Iterable[float] = KNESER_NEY_DISCOUNTS) -> NGramLM:
    """Kneser-Ney fitted on ``train_tokens`` with the (order, discount) of lowest validation cross-entropy.

    The chosen model's ``order`` and ``discount`` attributes say which it is; ties go to the first
    candidate in the order given.
    """
    candidates = [(n, d) for n in orders for d in discounts]
    if not candidates:
        raise ValueError("best_kneser_ney needs at least one order and one discount to choose from")
    best, best_loss = None, float("inf")
    for n, d in candidates:
        model = NGramLM(n, "kneser_ney", discount=d).fit(train_tokens)
        loss = model.cross_entropy(validation_tokens)
        if loss < best_loss:
            best, best_loss = model, loss
    return best


def word_types(train_tokens: Sequence[Sequence[str]]) -> list[str]:
    """The distinct words of the training stories, sorted: Chapter 1's vocabulary without its specials."""
    return sorted(set(chain.from_iterable(train_tokens)) - set(SPECIALS))


def fixed_window_vocabulary(types: Iterable[str]) -> Vocabulary:
    """``<unk>``, ``<s>``, ``</s>``, then ``types``: the ids Chapter 1's n-gram model gives the same words."""
    return Vocabulary([w for w in types if w not in SPECIALS], specials=SPECIALS)


@dataclass
class FixedWindowBaseline:
    """Chapter 3's model with the vocabulary it reads and its training history."""

    model: FixedWindowLM
    vocabulary: Vocabulary
    history: History

    def examples(self, stories: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Every (context window, next token) pair of the stories, ``</s>`` included, contexts padded with ``<s>``."""
        bos, eos = self.vocabulary.special_id("<s>"), self.vocabulary.special_id("</s>")
        pairs = [context_windows(self.vocabulary.encode(tokens) + [eos], self.model.context_size, boundary_id=bos)
                 for tokens in stories]
        return torch.cat([contexts for contexts, _ in pairs]), torch.cat([targets for _, targets in pairs])


def train_fixed_window(train_tokens: Sequence[Sequence[str]], validation_tokens: Sequence[Sequence[str]],
                       word_types: Sequence[str], seed: int = 0,
                       max_steps: int = FIXED_WINDOW_SETTINGS["max_steps"]) -> FixedWindowBaseline:
    """Chapter 3's fixed-window model: 5 words of context, embeddings of 16, 64 hidden units, AdamW
    at 3e-3 with weight decay 0.1, batches of 128, at most ``max_steps`` steps with early stopping on
    the validation split (the weights of the best validation step are kept).

    ``word_types`` are the words it may predict besides ``<unk>``, ``<s>`` and ``</s>`` (Chapter 1's
    n-gram vocabulary, so that both models know the same words).
    """
    settings = FIXED_WINDOW_SETTINGS
    vocabulary = fixed_window_vocabulary(word_types)
    torch.manual_seed(seed)
    model = FixedWindowLM(len(vocabulary), FIXED_WINDOW_CONTEXT, embedding_dim=settings["embedding_dim"],
                          hidden_dim=settings["hidden_dim"])
    torch.nn.init.normal_(model.C.weight, std=0.1)
    baseline = FixedWindowBaseline(model, vocabulary, History())
    x_train, y_train = baseline.examples(train_tokens)
    validation = baseline.examples(validation_tokens)
    config = TrainConfig(max_steps=max_steps, batch_size=settings["batch_size"], optimizer=settings["optimizer"],
                         learning_rate=settings["learning_rate"], weight_decay=settings["weight_decay"],
                         eval_every=settings["eval_every"], early_stopping_patience=settings["early_stopping_patience"],
                         seed=seed, progress=False)
    baseline.history = train(model, random_batches(x_train, y_train, settings["batch_size"], seed=seed), config,
                             val_batches=[validation])
    model.eval()
    return baseline


def load_kneser_ney() -> NGramLM:
    """Chapter 1's best Kneser-Ney model, from the checkpoint of the recipe ``ch01_kneser_ney``."""
    return load_trained("ch01_kneser_ney")[0]


def load_fixed_window() -> tuple[FixedWindowLM, Vocabulary, dict]:
    """Chapter 3's fixed-window model from the checkpoint of the recipe ``ch03_fixed_window``, the
    vocabulary it reads, and the checkpoint's metadata (settings, best validation step)."""
    model, metadata = load_trained("ch03_fixed_window")
    return model, Vocabulary.from_json(metadata["vocabulary"]), metadata
