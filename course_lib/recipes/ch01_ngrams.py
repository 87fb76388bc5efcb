"""Chapter 1's best n-gram model, kept for the later chapters' comparisons.

Interpolated Kneser-Ney, with the order and discount of lowest validation cross-entropy
(:func:`course_lib.baselines.best_kneser_ney`), fitted on the 1,000 training stories of
:data:`CORPUS`, the split Chapters 1, 3 and 4 share. Its checkpoint holds the order-n counts as
integer arrays (:meth:`course_lib.ngram.NGramLM.save`), from which every probability follows.
"""
from __future__ import annotations

from typing import Any

from course_lib.baselines import KNESER_NEY_DISCOUNTS, KNESER_NEY_ORDERS, best_kneser_ney
from course_lib.data.corpus import story_corpus
from course_lib.ngram import NGramLM
from course_lib.recipes import Recipe

__all__ = ["CORPUS", "RECIPES", "train_kneser_ney"]

CORPUS = {"train_stories": 1000, "validation_stories": 200, "test_stories": 200, "seed": 0}


def train_kneser_ney(seed: int = 0, steps: int | None = None) -> tuple[NGramLM, dict[str, Any]]:
    """Fit every candidate on the training split and keep the best on validation (no randomness:
    ``seed`` and ``steps`` are accepted for the recipe interface and change nothing)."""
    corpus = story_corpus(**CORPUS)
    model = best_kneser_ney(corpus.tokens("train"), corpus.tokens("validation"))
    return model, {"corpus": CORPUS, "orders": list(KNESER_NEY_ORDERS), "discounts": list(KNESER_NEY_DISCOUNTS),
                   "validation_nats_per_token": round(model.cross_entropy(corpus.tokens("validation")), 6)}


RECIPES = {
    "ch01_kneser_ney": Recipe(
        name="ch01_kneser_ney",
        description=(f"interpolated Kneser-Ney, order in {KNESER_NEY_ORDERS} and discount in {KNESER_NEY_DISCOUNTS} "
                     "chosen on validation, on Chapter 1's 1,000 training stories; about 2 s"),
        build_model=None,
        train=train_kneser_ney,
        save=lambda model, path, metadata: model.save(path, metadata),
        load=NGramLM.load,
    ),
}
