"""Train, validation and test: the three splits every corpus of the course comes in.

Each split is drawn from its own seed, so the splits are independent streams of the same program;
a corpus (:class:`course_lib.data.corpus.StoryCorpus`, :class:`course_lib.data.parallel.ParallelCorpus`)
adds what its items are measured by.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from course_lib.checks import one_of

SPLITS = ("train", "validation", "test")

Item = TypeVar("Item")


@dataclass(frozen=True)
class Splits(Generic[Item]):
    """The items of each split, and the seed the splits were drawn from."""

    train: list[Item]
    validation: list[Item]
    test: list[Item]
    seed: int = 0

    def split(self, name: str) -> list[Item]:
        one_of("split", name, SPLITS)
        return getattr(self, name)
