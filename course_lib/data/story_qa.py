"""Cloze probes in both directions and extractive questions, cut from whole stories (Chapter 9).

A story states a fact and, later, asks for it and answers it::

    Mia had a red ball . ... What colour was the ball that Mia had ? It was red .
              ^^^ the statement                                            ^^^ the answer

The words of a fact kind (colours, landmarks, pet names) are a group of the lexicon that no
other part of the grammar uses, so each stated fact shows exactly twice in a whole story: at
its statement and at its answer. Blank one of the two and the other one fixes it:

* **right-context cloze** (:func:`cloze_probes`, ``direction="right"``): the statement is
  blanked; only what comes *after* the blank says what it was (``Mia had a ___ ball .`` ...
  ``It was red .``). A left-to-right model has nothing better than chance there;
* **left-context cloze** (``direction="left"``): the answer is blanked, as in Chapter 5's probes,
  but inside the whole story, the words after the blank visible too.

**Extractive question answering** (:func:`qa_examples`): the context is the beginnings of two
stories up to their first questions (facts and fillers of two protagonists), the question one of
the program's questions about a fact of one of them, and the answer the fact's word, a span of the
context whose position is known exactly (``What colour was the ball that Mia had ?`` -> ``red``).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from course_lib.checks import non_negative_int, one_of, positive_int
from course_lib.data.lexicon import Lexicon
from course_lib.data.program import derive_seed
from course_lib.data.stories import FACT_KINDS, StoryProgram, generate_stories

__all__ = ["ClozeProbe", "QAExample", "cloze_probes", "fact_positions", "qa_examples", "DIRECTIONS"]

DIRECTIONS = ("right", "left")


def _groups(lexicon: Lexicon) -> dict[str, frozenset[str]]:
    return {"colour": frozenset(lexicon.colours), "home": frozenset(lexicon.landmarks),
            "pet": frozenset(lexicon.pet_names)}


def fact_positions(tokens: list[str], lexicon: Lexicon | None = None) -> dict[str, list[int]]:
    """For each fact kind, the positions of its words in ``tokens`` (statement first)."""
    groups = _groups(Lexicon() if lexicon is None else lexicon)
    return {kind: [i for i, token in enumerate(tokens) if token in words] for kind, words in groups.items()}


@dataclass(frozen=True)
class ClozeProbe:
    """A whole story's tokens with one blank at ``position``; ``answer`` is the word there and
    ``candidates`` the words of its kind (chance is ``1 / len(candidates)``)."""

    tokens: tuple[str, ...]
    position: int
    answer: str
    kind: str
    direction: str
    candidates: tuple[str, ...]


def cloze_probes(n: int, direction: str, seed: int = 0, lexicon: Lexicon | None = None) -> list[ClozeProbe]:
    """``n`` probes from held-out stories (their own seed stream), one per story, the kind of
    each the story's first stated fact: the statement blanked (``"right"``) or its answer
    (``"left"``)."""
    n, direction = positive_int("n", n), one_of("direction", direction, DIRECTIONS)
    lexicon = Lexicon() if lexicon is None else lexicon
    candidates = {"colour": lexicon.colours, "home": lexicon.landmarks, "pet": lexicon.pet_names}
    stories = generate_stories(n, derive_seed(non_negative_int("seed", seed), "ch09 cloze"))
    probes = []
    for story in stories:
        tokens = story.tokens
        positions = fact_positions(tokens, lexicon)
        kind = min((kind for kind in FACT_KINDS if positions[kind]), key=lambda kind: positions[kind][0])
        statement, answer = positions[kind]  # each stated fact is asked for and answered once
        position = statement if direction == "right" else answer
        probes.append(ClozeProbe(tuple(tokens), position, tokens[position], kind, direction,
                                 tuple(candidates[kind])))
    return probes


@dataclass(frozen=True)
class QAExample:
    """``question`` and ``context`` word tokens; the answer is ``context[start : end + 1]``."""

    question: tuple[str, ...]
    context: tuple[str, ...]
    start: int
    end: int

    @property
    def answer(self) -> tuple[str, ...]:
        return self.context[self.start : self.end + 1]


def _question(program: StoryProgram, rng: random.Random, kind: str, context: list[str], position: int,
              name: str) -> list[str]:
    """One of the program's wordings of the question about the fact at ``position``."""
    detail = context[position + 1] if kind == "colour" else context[position - 2] if kind == "pet" else ""
    wording = rng.choice(program.QUESTIONS[kind]).split()
    return [{"{name}": name, "{thing}": detail}.get(word, word) for word in wording]


def _story_context(tokens: list[str], lexicon: Lexicon, names: set[str]) -> tuple[list[str], str, dict[str, int]]:
    """A story's tokens before its first question, its protagonist, and where each stated fact is."""
    first_question = next(i for i, token in enumerate(tokens) if token in ("What", "Where"))
    context = tokens[:first_question]
    stated = {kind: positions[0] for kind, positions in fact_positions(context, lexicon).items() if positions}
    name = next(token for token in context if token in names)  # the protagonist is named first
    return context, name, stated


def qa_examples(n: int, seed: int = 0, split: str = "train", lexicon: Lexicon | None = None) -> list[QAExample]:
    """``n`` questions. Each context is the beginnings of two stories, one after the other, about
    two different protagonists; the question asks for a fact of one of them, chosen at random, so
    that the answer is found by whose fact it is and not only by what kind of word it is. The
    ``"train"`` and ``"test"`` splits draw from different seed streams."""
    n, split = positive_int("n", n), one_of("split", split, ("train", "test"))
    lexicon = Lexicon() if lexicon is None else lexicon
    program = StoryProgram(lexicon)
    names = set(lexicon.female_names) | set(lexicon.male_names)
    rng = random.Random(derive_seed(non_negative_int("seed", seed), "ch09 qa questions", split))
    stories = iter(generate_stories(3 * n, derive_seed(seed, "ch09 qa", split), program))
    examples = []
    while len(examples) < n:
        first = _story_context(next(stories).tokens, lexicon, names)
        second = _story_context(next(stories).tokens, lexicon, names)
        if first[1] == second[1]:  # the same protagonist twice: the question would be ambiguous
            continue
        asked = rng.randrange(2)
        context, name, stated = (first, second)[asked]
        offset = 0 if asked == 0 else len(first[0])
        kind = rng.choice(sorted(stated))
        question = _question(program, rng, kind, context, stated[kind], name)
        position = offset + stated[kind]
        examples.append(QAExample(tuple(question), tuple(first[0] + second[0]), position, position))
    return examples
