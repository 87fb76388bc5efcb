"""Probes of long-range memory: story prefixes whose next word is a fact stated far back.

A probe is the beginning of a story told by the corpus's own program, cut right before the
answer to a question about a fact (the ball's colour, the home's landmark, the pet's name)::

    ... Mia had a red ball. ... What colour was the ball that Mia had? It was   -> red

The answer is certain given the prompt (probability 1 under the generator) and uniform over
:func:`probe_answers`, so a model that has forgotten the fact scores :func:`chance_accuracy`.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from course_lib.checks import ArgumentError, non_negative_int, one_of
from course_lib.data.lexicon import Lexicon
from course_lib.data.program import SamplingChooser, derive_seed
from course_lib.data.stories import FACT_KINDS, StoryProgram, default_program
from course_lib.data.text import detokenize

PROBE_KINDS = FACT_KINDS


@dataclass(frozen=True)
class Probe:
    """A story prefix whose next word is the answer to a question about a fact stated earlier.

    ``distance`` counts the word tokens after the fact's answer word up to the end of the prompt:
    for ``"Mia had a red ball. What colour was the ball that Mia had? It was"`` it is 13 (from
    ``ball`` to ``was``), so the answer is ``distance + 1`` positions after the fact's word.
    """

    prompt: str
    answer: str
    distance: int
    kind: str  # "colour", "home" or "pet"


def probe_answers(kind: str, lexicon: Lexicon | None = None) -> tuple[str, ...]:
    """The candidate answers of a probe kind; the generator draws the fact uniformly among them."""
    one_of("probe kind", kind, PROBE_KINDS)
    lexicon = Lexicon() if lexicon is None else lexicon
    return {"colour": lexicon.colours, "home": lexicon.landmarks, "pet": lexicon.pet_names}[kind]


def chance_accuracy(kind: str, lexicon: Lexicon | None = None) -> float:
    """Accuracy of guessing the right kind of word but not the fact: ``1 / len(probe_answers(kind))``."""
    return 1.0 / len(probe_answers(kind, lexicon))


def make_probes(
    n: int,
    distances: Sequence[int] = (16, 32, 64, 128),
    seed: int = 0,
    kinds: Sequence[str] = PROBE_KINDS,
    program: StoryProgram | None = None,
) -> list[Probe]:
    """``n`` probes for each target distance, in the order of ``distances``.

    Each probe is the beginning of a story told by the corpus's own program (same openings,
    facts, fillers and questions), except that before the first question filler sentences are
    added until the fact is at least ``d`` tokens back; ``Probe.distance`` is the exact figure,
    at least ``d`` and at most one filler sentence more (or more than ``d`` when the facts and the
    question alone are longer). The corpus puts at most ``StoryShape.max_fillers`` fillers
    before a question, so distances well past that test memory beyond what training showed.
    Answers are uniform over :func:`probe_answers`, so :func:`chance_accuracy` is exact.
    """
    non_negative_int("n", n)
    non_negative_int("seed", seed)
    if isinstance(distances, (int, str)) or not isinstance(distances, Sequence):
        raise ArgumentError(f"distances must be a sequence of non-negative integers, got {distances!r}")
    for index, distance in enumerate(distances):
        non_negative_int(f"distances[{index}]", distance)
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not kinds:
        raise ArgumentError(f"kinds must be a non-empty selection of {PROBE_KINDS}, got {kinds!r}")
    for kind in kinds:
        one_of("kinds", kind, PROBE_KINDS)
    program = default_program() if program is None else program
    probes = []
    for distance in distances:
        rng = random.Random(derive_seed(seed, "probes", distance))
        made = 0
        while made < n:
            chooser = SamplingChooser(rng)
            out: list[str] = []
            site = program.tell(chooser.choose, out, min_distance=distance)
            if site is None or site.kind not in kinds:
                continue  # rejection keeps the kinds in their corpus proportions among those asked for
            probes.append(Probe(detokenize(out), site.answer, len(out) - 1 - site.fact_position, site.kind))
            made += 1
    return probes
