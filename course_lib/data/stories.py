"""The story corpus: short Simple-English stories from a probabilistic program with an exact log-probability.

Every chapter trains and evaluates on these stories. The generator is a *probabilistic program*:
each random decision is a draw from an explicit finite distribution (:class:`Categorical`), so the
probability of a story is the product of the probabilities of its decisions,

    log p(story) = sum_k log p(decision_k | earlier decisions).

The grammar is built so that **each text has exactly one derivation** (one sequence of decisions
producing it), which makes this the probability of the *text* under the generator. Two rules give
that: every word group of the lexicon is disjoint from the others and from the fixed words of the
templates, and every template can be told apart from the others by its words. The tests check it by
brute force: with :meth:`Lexicon.tiny` every derivation is enumerated and the texts are all
distinct and their probabilities sum to one; with the full lexicon, sampled stories are parsed
back (:func:`derivations`) and each has exactly one derivation.

Because the probability is exact, the average of ``-log p`` over a split, per predicted unit, is
the generator's own cross-entropy: the *entropy floor* no language model can beat in expectation
(:func:`entropy_floor`).

A story reads like::

    Once upon a time, there was a kind girl named Mia. She had a red ball. She lived in a cosy
    hut near the lake. One morning, Mia went to the park. A bird sang. What colour was the ball
    that Mia had? It was red. Where did Mia live? She lived near the lake. The end.

Facts stated early (the ball's colour, the home's landmark, the pet's name) are asked for later,
after a random number of filler sentences: long-range dependencies whose answers are certain given
the story (probability 1). :func:`make_probes` cuts stories right before such an answer.

The program is written against a *chooser*: any callable ``choose(distribution) -> option``.
:class:`SamplingChooser` draws from a seeded generator and adds up log-probabilities; the
enumerator used by :func:`enumerate_stories` and :func:`derivations` replays every decision
sequence instead.
"""
from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from course_lib.data.lexicon import Lexicon
from course_lib.data.text import detokenize, word_tokenize

FACT_KINDS = ("colour", "home", "pet")
PROBE_KINDS = FACT_KINDS
UNITS = ("token", "char")
SPLITS = ("train", "validation", "test")
DEFAULT_SPLIT_SIZES = {"train": 2000, "validation": 200, "test": 200}


# ---------------------------------------------------------------------------------------------
# Distributions and choosers
# ---------------------------------------------------------------------------------------------


class Categorical:
    """A finite distribution: ``options[i]`` with probability ``weights[i] / sum(weights)``.

    ``log_probs[i]`` is the exact natural log of that probability; weights must be positive
    (an option that can never be chosen does not belong in the list).
    """

    __slots__ = ("options", "weights", "cumulative", "total", "log_probs")

    def __init__(self, options: Sequence[Any], weights: Sequence[float] | None = None):
        options = tuple(options)
        if not options:
            raise ValueError("a Categorical needs at least one option")
        weights = (1.0,) * len(options) if weights is None else tuple(float(w) for w in weights)
        if len(weights) != len(options):
            raise ValueError(f"{len(options)} options but {len(weights)} weights")
        if not all(w > 0 and math.isfinite(w) for w in weights):
            raise ValueError(f"weights must be positive and finite, got {weights}")
        self.options = options
        self.weights = weights
        self.cumulative = tuple(_running_sum(weights))
        self.total = self.cumulative[-1]
        log_total = math.log(self.total)
        self.log_probs = tuple(math.log(w) - log_total for w in weights)

    def __len__(self) -> int:
        return len(self.options)

    def __repr__(self) -> str:
        shown = ", ".join(f"{option!r}: {math.exp(lp):.3f}" for option, lp in zip(self.options[:5], self.log_probs))
        return f"Categorical({{{shown}{', ...' if len(self) > 5 else ''}}})"

    def without(self, excluded: object) -> Categorical:
        """The same distribution conditioned on not choosing ``excluded`` (renormalised)."""
        return self.restricted([option for option in self.options if option != excluded])

    def restricted(self, allowed: Sequence[Any]) -> Categorical:
        """The same distribution conditioned on the option being in ``allowed`` (renormalised)."""
        kept = [(option, w) for option, w in zip(self.options, self.weights) if option in allowed]
        if not kept:
            raise ValueError(f"none of {list(allowed)!r} is an option of this distribution")
        return Categorical([option for option, _ in kept], [w for _, w in kept])


def _running_sum(values: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def zipf_weights(n: int, exponent: float = 1.0) -> list[float]:
    """``1 / (rank + 1) ** exponent`` for ranks ``0 .. n - 1``: a few common words, a long tail."""
    return [1.0 / (rank + 1) ** exponent for rank in range(n)]


def zipf(options: Sequence[Any], exponent: float = 1.0) -> Categorical:
    """A Zipf-weighted distribution over ``options`` (listed most frequent first)."""
    return Categorical(options, zipf_weights(len(options), exponent))


Choose = Callable[[Categorical], Any]


class SamplingChooser:
    """Draws each decision from a seeded ``random.Random`` and adds up the log-probabilities.

    ``choose`` is the chooser; ``logprob`` the sum so far; with ``record=True`` the indices of
    the chosen options are kept in ``decisions`` (what :func:`derivations` recovers from text).
    """

    def __init__(self, rng: random.Random, record: bool = False):
        self.rng = rng
        self.logprob = 0.0
        self.decisions: list[int] | None = [] if record else None

    def choose(self, distribution: Categorical) -> Any:
        # The same inverse-CDF draw as random.choices, without its per-call set-up.
        options = distribution.options
        index = bisect(distribution.cumulative, self.rng.random() * distribution.total, 0, len(options) - 1)
        self.logprob += distribution.log_probs[index]
        if self.decisions is not None:
            self.decisions.append(index)
        return options[index]


# ---------------------------------------------------------------------------------------------
# The story program
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoryShape:
    """How long stories are: 1..``max_facts`` facts, each asked for after 0..``max_fillers`` fillers."""

    max_facts: int = 3
    max_fillers: int = 8
    endings: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.max_facts, int) or not 1 <= self.max_facts <= len(FACT_KINDS):
            raise ValueError(f"max_facts must be an integer from 1 to {len(FACT_KINDS)}, got {self.max_facts!r}")
        if not isinstance(self.max_fillers, int) or self.max_fillers < 0:
            raise ValueError(f"max_fillers must be a non-negative integer, got {self.max_fillers!r}")


@dataclass(frozen=True)
class _Fact:
    kind: str
    answer: str
    position: int  # index of the answer word among the story's tokens
    detail: str  # the toy, the pet kind, or "" for the home


@dataclass(frozen=True)
class ProbeSite:
    """Where :meth:`StoryProgram.tell` stopped in probe mode: the next token is ``answer``."""

    kind: str
    answer: str
    fact_position: int


def _article(word: str) -> str:
    return "an" if word[0] in "aeiouAEIOU" else "a"


def _capitalised(word: str, first: bool) -> str:
    return word[0].upper() + word[1:] if first else word


def _interleave(*groups: Sequence[str]) -> list[str]:
    """Ranks of several lists merged: the first of each, then the second of each, ..."""
    merged: list[str] = []
    for rank in range(max(len(group) for group in groups)):
        merged.extend(group[rank] for group in groups if rank < len(group))
    return merged


class StoryProgram:
    """The generator: ``tell(choose, out)`` appends one story's word tokens to ``out``.

    Every random decision goes through ``choose``; the tokens are written in text order as soon
    as they are known (the parser in :func:`derivations` prunes on them). Build it once: the
    constructor precomputes every distribution.
    """

    # How each fact is asked for, and how the answer sentence begins; the answer word follows.
    QUESTIONS = {
        "colour": (
            "What colour was the {thing} that {name} had ?",
            "What was the colour of the {thing} that {name} had ?",
        ),
        "home": ("Where did {name} live ?", "Where was the home of {name} ?"),
        "pet": ("What was the name of the {thing} that {name} had ?", "What did {name} call the {thing} ?"),
    }
    ANSWERS = {
        "colour": ("It was", "The {thing} was"),
        "home": ("{pronoun} lived near the", "It was near the"),
        "pet": ("Its name was", "The {thing} was called"),
    }
    # What a filler sentence is about, then what a person in it does (most frequent first).
    OPENERS = ("pronoun", "name", "animal", "other", "scenery")
    PERSON_FILLERS = ("go", "thing", "play", "feel", "eat", "watch", "give", "pair")
    SOLO_FILLERS = ("go", "thing", "feel", "eat", "watch")  # for a character other than the protagonist
    ADVERBIALS = (None, "Then", "One", "Later", "After", "That", "Soon", "On")
    ENDINGS = (None, "The end", "smiled", "good day", "never forget")

    def __init__(self, lexicon: Lexicon | None = None, shape: StoryShape | None = None):
        lexicon = Lexicon() if lexicon is None else lexicon
        lexicon.check()
        self.lexicon = lexicon
        self.shape = StoryShape() if shape is None else shape
        lex = lexicon

        self.gender = {name: "female" for name in lex.female_names} | {name: "male" for name in lex.male_names}
        self.role_gender = (
            {role: "female" for role in lex.female_roles}
            | {role: "male" for role in lex.male_roles}
            | {role: None for role in lex.neutral_roles}
        )
        self.opening = Categorical(("Once", "There", "name"), (3, 2, 2))
        self.all_names = zipf(_interleave(lex.female_names, lex.male_names))
        self.names_of = {"female": zipf(lex.female_names), "male": zipf(lex.male_names), None: self.all_names}
        self.all_roles = zipf(_interleave(lex.female_roles, lex.male_roles) + list(lex.neutral_roles))
        self.roles_for = {
            "female": zipf(list(lex.female_roles) + list(lex.neutral_roles)),
            "male": zipf(list(lex.male_roles) + list(lex.neutral_roles)),
        }
        self.person_adjective = self._optional(lex.person_adjectives, none_weight=1.0)
        self.subject = Categorical(("pronoun", "name"), (2, 1))

        self.fact_count = zipf(range(1, self.shape.max_facts + 1), exponent=0.5)
        self.fact_kind = Categorical(FACT_KINDS, (3, 2, 2))
        self.question_kind = Categorical(FACT_KINDS)
        self.question_form = {kind: Categorical([tuple(f.split()) for f in fs]) for kind, fs in self.QUESTIONS.items()}
        self.answer_form = {kind: Categorical([tuple(f.split()) for f in fs]) for kind, fs in self.ANSWERS.items()}
        # The answers of facts are uniform: guessing from frequency alone scores 1 / len(list).
        self.colour = Categorical(lex.colours)
        self.landmark = Categorical(lex.landmarks)
        self.pet_name = Categorical(lex.pet_names)
        self.toy = zipf(lex.toys)
        self.dwelling = zipf(lex.dwellings)
        self.home_adjective = self._optional(lex.home_adjectives, none_weight=1.0)
        self.pet_kind = zipf(lex.pet_kinds)

        # The number of fillers before a question is uniform on 0..max_fillers, drawn one filler at a
        # time: after k fillers, "another?" has probability (max_fillers - k) / (max_fillers - k + 1).
        # Same distribution as drawing the count up front, but each decision shows in the very next
        # sentence, which keeps parsing by search fast.
        self.another_filler = [
            Categorical((False, True), (1, self.shape.max_fillers - k)) for k in range(self.shape.max_fillers)
        ]
        self.filler_opener = Categorical(self.OPENERS, (4, 3, 1.5, 1.5, 1))
        self.person_filler = zipf(self.PERSON_FILLERS, exponent=0.3)
        self.other_filler = self.person_filler.restricted(self.SOLO_FILLERS)
        self.adverbial = Categorical(self.ADVERBIALS, [4.0] + zipf_weights(len(self.ADVERBIALS) - 1))
        self.daypart = zipf(lex.dayparts)
        self.meal = zipf(lex.meals)
        self.weekday = zipf(lex.weekdays)
        self.motion_verb = zipf(lex.motion_verbs)
        self.place = zipf(lex.places)
        self.optional_place = self._optional(lex.places, none_weight=2.0)
        self.thing_verb = zipf(lex.thing_verbs)
        self.thing = zipf(lex.things)
        self.thing_adjective = self._optional(lex.thing_adjectives, none_weight=1.5)
        self.animal = zipf([animal for animal, _ in lex.animal_verbs])
        self.animal_verb = {animal: zipf(verbs) for animal, verbs in lex.animal_verbs}
        self.scenery = zipf([noun for noun, _ in lex.scenery])
        self.scenery_adjective = {noun: zipf(adjectives) for noun, adjectives in lex.scenery}
        self.feeling = zipf(lex.feelings)
        self.very = Categorical((False, True), (3, 1))
        self.food = zipf(lex.foods)
        self.optional_meal = self._optional(lex.meals, none_weight=3.0)
        self.pair_verb = zipf(lex.pair_verbs)
        self.together = Categorical((False, True), (2, 1))
        self.ending = Categorical(self.ENDINGS, (3, 3, 2, 2, 1))
        self._other_names: dict[str, Categorical] = {}
        self._kinds_left: dict[tuple[str, tuple[str, ...]], Categorical] = {}

    @staticmethod
    def _optional(words: Sequence[str], none_weight: float) -> Categorical:
        """``None`` (leave the word out) with weight ``none_weight`` against the Zipf-weighted words."""
        weights = zipf_weights(len(words))
        total = sum(weights)
        return Categorical((None, *words), [none_weight * total] + weights)

    def _kinds(self, purpose: str, kinds_left: list[str]) -> Categorical:
        """The kinds of fact still to be stated (``purpose="state"``) or asked (``"ask"``)."""
        key = (purpose, tuple(kinds_left))
        if key not in self._kinds_left:
            distribution = self.fact_kind if purpose == "state" else self.question_kind
            self._kinds_left[key] = distribution.restricted(kinds_left)
        return self._kinds_left[key]

    def _other_name(self, name: str) -> Categorical:
        """Names other than the protagonist's, for a second character."""
        if name not in self._other_names:
            self._other_names[name] = self.all_names.without(name)
        return self._other_names[name]

    # -- the story -------------------------------------------------------------------------

    def tell(self, choose: Choose, out: list[str], min_distance: int | None = None) -> ProbeSite | None:
        """Append one story's tokens to ``out`` (through ``out.append``/``out.extend`` only).

        With ``min_distance`` (probe mode), the fillers before the first question are not counted
        out in advance but added one at a time until at least ``min_distance`` tokens separate the
        fact's answer from the end of the prompt; the story stops right before the answer and the
        probe's site is returned.
        """
        name, pronoun = self._opening(choose, out)
        facts: dict[str, _Fact] = {}
        kinds_left = list(FACT_KINDS)
        for _ in range(choose(self.fact_count)):
            kind = choose(self._kinds("state", kinds_left)) if len(kinds_left) > 1 else kinds_left[0]
            kinds_left.remove(kind)
            facts[kind] = self._fact(choose, out, kind, name, pronoun)

        unasked = list(facts)
        for _ in range(len(facts)):
            if min_distance is not None:
                # Probe mode: the question is settled first (its decisions do not depend on the
                # fillers), then fillers are added until the fact is far enough back.
                kind = choose(self._kinds("ask", unasked)) if len(unasked) > 1 else unasked[0]
                fact = facts[kind]
                wording = self._question(choose, fact, name, pronoun)
                while len(out) + len(wording) - 1 - fact.position < min_distance:
                    self._filler(choose, out, name, pronoun)
                out.extend(wording)
                return ProbeSite(kind, fact.answer, fact.position)
            self._fillers(choose, out, name, pronoun)
            kind = choose(self._kinds("ask", unasked)) if len(unasked) > 1 else unasked[0]
            unasked.remove(kind)
            out.extend(self._question(choose, facts[kind], name, pronoun))
            out.extend((facts[kind].answer, "."))
        if self.shape.endings:
            self._ending(choose, out, name, pronoun)
        return None

    def _opening(self, choose: Choose, out: list[str]) -> tuple[str, str]:
        """"Once upon a time, there was a kind girl named Mia." / "There was ..." / "Mia was a kind girl." """
        template = choose(self.opening)
        if template == "name":
            name = choose(self.all_names)
            out.extend((name, "was"))
            role = self._noun_phrase(choose, out, self.person_adjective, self.roles_for[self.gender[name]])
            out.append(".")
        else:
            out.extend(("Once", "upon", "a", "time", ",", "there", "was") if template == "Once" else ("There", "was"))
            role = self._noun_phrase(choose, out, self.person_adjective, self.all_roles)
            out.append("named")
            name = choose(self.names_of[self.role_gender[role]])
            out.extend((name, "."))
        return name, ("She" if self.gender[name] == "female" else "He")

    @staticmethod
    def _noun_phrase(choose: Choose, out: list[str], adjectives: Categorical, nouns: Categorical) -> str:
        """ "a ball", "a big ball", "an old ball": an optional adjective, then the noun; returns the noun.

        Each word is written as soon as it is chosen (the article follows the next word's sound).
        """
        adjective = choose(adjectives)
        if adjective is not None:
            out.extend((_article(adjective), adjective))
        noun = choose(nouns)
        if adjective is None:
            out.append(_article(noun))
        out.append(noun)
        return noun

    def _subject(self, choose: Choose, out: list[str], name: str, pronoun: str) -> None:
        """The protagonist, by name or pronoun, opening a sentence."""
        out.append(name if choose(self.subject) == "name" else pronoun)

    def _fact(self, choose: Choose, out: list[str], kind: str, name: str, pronoun: str) -> _Fact:
        """"She had a red ball." / "She lived in a cosy hut near the lake." / "She had a cat named Coco." """
        self._subject(choose, out, name, pronoun)
        if kind == "colour":
            out.append("had")
            colour = choose(self.colour)
            out.append(_article(colour))
            position = len(out)
            out.append(colour)
            toy = choose(self.toy)
            out.extend((toy, "."))
            return _Fact(kind, colour, position, toy)
        if kind == "home":
            out.extend(("lived", "in"))
            self._noun_phrase(choose, out, self.home_adjective, self.dwelling)
            out.extend(("near", "the"))
            landmark = choose(self.landmark)
            position = len(out)
            out.extend((landmark, "."))
            return _Fact(kind, landmark, position, "")
        out.append("had")
        pet_kind = choose(self.pet_kind)
        out.extend((_article(pet_kind), pet_kind, "named"))
        pet_name = choose(self.pet_name)
        position = len(out)
        out.extend((pet_name, "."))
        return _Fact(kind, pet_name, position, pet_kind)

    def _question(self, choose: Choose, fact: _Fact, name: str, pronoun: str) -> list[str]:
        """The question and its answer sentence, up to (not including) the answer word.

        Only the wording is random: the story has already fixed the answer, so it has probability 1.
        """
        slots = {"{name}": name, "{pronoun}": pronoun, "{thing}": fact.detail}
        question, answer = choose(self.question_form[fact.kind]), choose(self.answer_form[fact.kind])
        return [slots.get(word, word) for word in (*question, *answer)]

    def _fillers(self, choose: Choose, out: list[str], name: str, pronoun: str) -> None:
        """0..max_fillers filler sentences, uniformly many, decided one at a time."""
        for another in self.another_filler:
            if not choose(another):
                return
            self._filler(choose, out, name, pronoun)

    def _filler(self, choose: Choose, out: list[str], name: str, pronoun: str) -> None:
        """A sentence that states nothing asked about later (the distance between fact and question).

        Decisions come in text order: the time phrase, then who or what the sentence is about,
        then what happens.
        """
        first = self._adverbial(choose, out)
        opener = choose(self.filler_opener)
        if opener == "animal":
            animal = choose(self.animal)
            out.extend((_capitalised(_article(animal), first), animal))
            out.append(choose(self.animal_verb[animal]))
            place = choose(self.optional_place)
            if place is not None:
                out.extend(("in", "the", place))
        elif opener == "scenery":
            out.append(_capitalised("the", first))
            noun = choose(self.scenery)
            out.extend((noun, "was"))
            out.append(choose(self.scenery_adjective[noun]))
        else:
            if opener == "pronoun":
                out.append(_capitalised(pronoun.lower(), first))
            else:
                out.append(name if opener == "name" else choose(self._other_name(name)))
            # Someone else than the protagonist does things alone (no "Tom played with Tom").
            template = choose(self.person_filler if opener != "other" else self.other_filler)
            if template == "go":
                out.append(choose(self.motion_verb))
                out.extend(("to", "the"))
                out.append(choose(self.place))
            elif template == "thing":
                out.append(choose(self.thing_verb))
                self._noun_phrase(choose, out, self.thing_adjective, self.thing)
                place = choose(self.optional_place)
                if place is not None:
                    out.extend(("in", "the", place))
            elif template == "play":
                out.extend(("played", "with"))
                out.append(choose(self._other_name(name)))
                place = choose(self.optional_place)
                if place is not None:
                    out.extend(("in", "the", place))
            elif template == "watch":
                animal = choose(self.animal)
                out.extend(("watched", _article(animal), animal))
                place = choose(self.optional_place)
                if place is not None:
                    out.extend(("in", "the", place))
            elif template == "give":
                out.append("gave")
                out.append(choose(self._other_name(name)))
                self._noun_phrase(choose, out, self.thing_adjective, self.thing)
            elif template == "feel":
                out.append("felt")
                if choose(self.very):
                    out.append("very")
                out.append(choose(self.feeling))
            elif template == "eat":
                out.append("ate")
                out.extend(choose(self.food))
                meal = choose(self.optional_meal)
                if meal is not None:
                    out.extend(("for", meal))
            else:  # pair
                out.append("and")
                out.append(choose(self._other_name(name)))
                out.append(choose(self.pair_verb))
                if choose(self.together):
                    out.append("together")
        out.append(".")

    def _adverbial(self, choose: Choose, out: list[str]) -> bool:
        """An optional time phrase opening a filler; returns whether the next word starts the sentence."""
        adverbial = choose(self.adverbial)
        if adverbial is None:
            return True
        if adverbial == "Then":
            out.append("Then")  # "Then she went ...": no comma
            return False
        if adverbial in ("Later", "Soon"):
            out.extend((adverbial, ","))
        elif adverbial in ("One", "That"):
            out.extend((adverbial, choose(self.daypart)))
            out.append(",")
        elif adverbial == "After":
            out.append("After")
            out.extend((choose(self.meal), ","))
        else:
            out.append("On")
            out.extend((choose(self.weekday), ","))
        return False

    def _ending(self, choose: Choose, out: list[str], name: str, pronoun: str) -> None:
        ending = choose(self.ending)
        if ending == "The end":
            out.extend(("The", "end", "."))
        elif ending == "good day":
            out.extend(("It", "was", "a", "good", "day", "."))
        elif ending == "smiled":
            self._subject(choose, out, name, pronoun)
            out.extend(("smiled", "."))
        elif ending == "never forget":
            self._subject(choose, out, name, pronoun)
            out.extend(("would", "never", "forget", "that", "day", "."))



# ---------------------------------------------------------------------------------------------
# Stories and corpora
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    """One story and its exact probability under the generator."""

    text: str  # sentences separated by single spaces, no newlines
    logprob: float  # natural log of the probability of this text

    @property
    def tokens(self) -> list[str]:
        """The story's word tokens (:func:`word_tokenize`), without an end-of-story token."""
        return word_tokenize(self.text)


_DEFAULT_PROGRAM: StoryProgram | None = None


def default_program() -> StoryProgram:
    """The generator with the full lexicon and default story shape (built once)."""
    global _DEFAULT_PROGRAM
    if _DEFAULT_PROGRAM is None:
        _DEFAULT_PROGRAM = StoryProgram()
    return _DEFAULT_PROGRAM


def _check_count(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _check_seed(seed: object) -> int:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return seed


def derive_seed(seed: int, *labels: object) -> int:
    """A seed for one named stream (a split, a probe distance), independent of the others."""
    digest = hashlib.sha256(":".join(map(str, ("lm-course", seed, *labels))).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def generate_stories(n_stories: int, seed: int = 0, program: StoryProgram | None = None) -> list[Story]:
    """``n_stories`` stories drawn from the generator, deterministic from ``seed``.

    The stream is a prefix code of the seed: ``generate_stories(k, s)`` is the first ``k`` of
    ``generate_stories(n, s)`` for ``k <= n``.
    """
    _check_count(n_stories, "n_stories")
    _check_seed(seed)
    program = default_program() if program is None else program
    rng = random.Random(seed)
    stories = []
    for _ in range(n_stories):
        chooser = SamplingChooser(rng)
        out: list[str] = []
        program.tell(chooser.choose, out)
        stories.append(Story(detokenize(out), chooser.logprob))
    return stories


@dataclass(frozen=True)
class EntropyFloor:
    """The generator's cross-entropy on a set of stories: the best any model can do on average.

    ``nats`` per unit; ``bits = nats / ln 2``; ``perplexity = exp(nats)``; ``units`` is the
    number of predicted units it was averaged over.
    """

    nats: float
    unit: str
    units: int

    @property
    def bits(self) -> float:
        return self.nats / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats)

    def __str__(self) -> str:
        return f"{self.nats:.4f} nats/{self.unit} = {self.bits:.4f} bits/{self.unit} (perplexity {self.perplexity:.3f})"


def predicted_units(story: Story | str, unit: str = "token") -> int:
    """How many units a language model predicts for one story: its tokens plus the end of the story.

    ``unit="token"``: ``len(word_tokenize(text)) + 1``; ``unit="char"``: ``len(text) + 1``.
    The ``+ 1`` is the end-of-story symbol (``</s>``, or the newline that separates stories),
    which the model must predict too and whose probability the generator includes.
    """
    text = story.text if isinstance(story, Story) else story
    if unit == "token":
        return len(word_tokenize(text)) + 1
    if unit == "char":
        return len(text) + 1
    raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")


def entropy_floor(stories: Sequence[Story], unit: str = "token") -> EntropyFloor:
    """The generator's cross-entropy on ``stories``, per predicted unit: ``-sum(logprob) / units``.

    Units are counted by :func:`predicted_units`: each story contributes
    ``len(word_tokenize(text)) + 1`` word tokens, or ``len(text) + 1`` characters, the ``+ 1``
    being the end of the story. A model evaluated the same way (one story at a time, the end
    included) has a cross-entropy at least this large in expectation; in bits divide by ``ln 2``
    (``.bits``).
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if isinstance(stories, Story):
        stories = [stories]
    if not stories:
        raise ValueError("entropy_floor needs at least one story")
    units = sum(predicted_units(story, unit) for story in stories)
    return EntropyFloor(-math.fsum(story.logprob for story in stories) / units, unit, units)


@dataclass(frozen=True)
class SplitSummary:
    """Statistics of one split, as the book tabulates them."""

    split: str
    stories: int
    tokens: int  # word tokens, end-of-story tokens not included
    chars: int  # characters of the split's text, one "\n" between stories
    vocabulary: int  # distinct word types
    floor_token: EntropyFloor | None
    floor_char: EntropyFloor | None


@dataclass(frozen=True)
class StoryCorpus:
    """The three splits of the story corpus; each split is drawn from its own seed."""

    train: list[Story]
    validation: list[Story]
    test: list[Story]
    seed: int = 0

    def split(self, name: str) -> list[Story]:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)

    def text(self, split: str) -> str:
        """The split's stories joined by ``"\\n"`` (one story per line, no trailing newline)."""
        return "\n".join(story.text for story in self.split(split))

    def tokens(self, split: str) -> list[list[str]]:
        """One word-token list per story: the sequences the n-gram chapter trains on."""
        return [word_tokenize(story.text) for story in self.split(split)]

    def entropy_floor(self, split: str, unit: str = "token") -> EntropyFloor:
        return entropy_floor(self.split(split), unit)

    def summary(self, split: str) -> SplitSummary:
        stories = self.split(split)
        token_lists = [word_tokenize(story.text) for story in stories]
        return SplitSummary(
            split=split,
            stories=len(stories),
            tokens=sum(map(len, token_lists)),
            chars=len(self.text(split)),
            vocabulary=len({token for tokens in token_lists for token in tokens}),
            floor_token=entropy_floor(stories, "token") if stories else None,
            floor_char=entropy_floor(stories, "char") if stories else None,
        )

    def describe(self) -> str:
        """A plain-text table of every split: sizes, vocabulary and entropy floors."""
        header = (
            f"{'split':<11}{'stories':>8}{'tokens':>10}{'chars':>11}{'types':>7}"
            f"  {'floor nats/token':>16}{'bits/token':>11}{'bits/char':>10}"
        )
        lines = [header, "-" * len(header)]
        for split in SPLITS:
            s = self.summary(split)
            floors = (
                f"{s.floor_token.nats:>16.4f}{s.floor_token.bits:>11.4f}{s.floor_char.bits:>10.4f}"
                if s.floor_token and s.floor_char
                else f"{'-':>16}{'-':>11}{'-':>10}"
            )
            lines.append(f"{split:<11}{s.stories:>8}{s.tokens:>10}{s.chars:>11}{s.vocabulary:>7}  {floors}")
        return "\n".join(lines)


def story_corpus(
    train_stories: int = DEFAULT_SPLIT_SIZES["train"],
    validation_stories: int = DEFAULT_SPLIT_SIZES["validation"],
    test_stories: int = DEFAULT_SPLIT_SIZES["test"],
    seed: int = 0,
    program: StoryProgram | None = None,
) -> StoryCorpus:
    """Train/validation/test splits of the story corpus.

    Each split comes from its own seed, derived from ``seed`` and the split's name, so changing
    the size of one split leaves the others as they were (and a larger split extends a smaller).
    The defaults give about 0.8 MB of training text.
    """
    _check_seed(seed)
    sizes = {"train": train_stories, "validation": validation_stories, "test": test_stories}
    for name, size in sizes.items():
        _check_count(size, f"{name}_stories")
    splits = {name: generate_stories(size, derive_seed(seed, "stories", name), program) for name, size in sizes.items()}
    return StoryCorpus(seed=seed, **splits)


# ---------------------------------------------------------------------------------------------
# Probes of long-range memory
# ---------------------------------------------------------------------------------------------


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
    lexicon = Lexicon() if lexicon is None else lexicon
    if kind == "colour":
        return lexicon.colours
    if kind == "home":
        return lexicon.landmarks
    if kind == "pet":
        return lexicon.pet_names
    raise ValueError(f"probe kind must be one of {PROBE_KINDS}, got {kind!r}")


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
    _check_count(n, "n")
    _check_seed(seed)
    if isinstance(distances, int) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in distances
    ):
        raise ValueError(f"distances must be a sequence of non-negative integers, got {distances!r}")
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not kinds or any(kind not in PROBE_KINDS for kind in kinds):
        raise ValueError(f"kinds must be a non-empty selection of {PROBE_KINDS}, got {kinds!r}")
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


# ---------------------------------------------------------------------------------------------
# Every derivation: brute-force enumeration and parsing by search
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Derivation:
    """One run of the program: its text, log-probability and the index chosen at each decision."""

    text: str
    logprob: float
    decisions: tuple[int, ...]


class _Branch(Exception):
    """Raised by the replaying chooser when it reaches a decision its path does not cover."""

    def __init__(self, distribution: Categorical):
        self.distribution = distribution


class _Mismatch(Exception):
    """Raised when the program writes a token that the target text does not have there."""


class _Complete(Exception):
    """Raised when the program has written the whole target and only its beginning was asked for."""


class _ReplayChooser:
    """Follows a fixed list of decision indices, then stops at the first new decision."""

    def __init__(self, path: tuple[int, ...]):
        self.path = path
        self.position = 0
        self.logprob = 0.0

    def choose(self, distribution: Categorical) -> Any:
        if self.position == len(self.path):
            raise _Branch(distribution)
        index = self.path[self.position]
        self.position += 1
        self.logprob += distribution.log_probs[index]
        return distribution.options[index]


class _TokensMatching(list):
    """A token list that only accepts the tokens of ``target``, in order."""

    def __init__(self, target: Sequence[str], prefix_only: bool):
        super().__init__()
        self.target = target
        self.prefix_only = prefix_only

    def append(self, token: str) -> None:
        if len(self) >= len(self.target) or self.target[len(self)] != token:
            raise _Mismatch
        super().append(token)
        if self.prefix_only and len(self) == len(self.target):
            raise _Complete

    def extend(self, tokens: Sequence[str]) -> None:
        for token in tokens:
            self.append(token)


def _search(
    program: StoryProgram, target: Sequence[str] | None, root: tuple[int, ...] = (), prefix_only: bool = False
) -> Iterator[Derivation]:
    """Depth-first over decision sequences below ``root``, re-running the program once per node of the tree.

    With a ``target``, branches that write anything else are abandoned; with ``prefix_only``, a
    run stops with success as soon as the whole target is written.
    """
    stack: list[tuple[int, ...]] = [tuple(root)]
    while stack:
        path = stack.pop()
        chooser = _ReplayChooser(path)
        out: list[str] = [] if target is None else _TokensMatching(target, prefix_only)
        try:
            program.tell(chooser.choose, out)
        except _Branch as branch:
            stack.extend(path + (index,) for index in reversed(range(len(branch.distribution))))
            continue
        except _Mismatch:
            continue
        except _Complete:
            pass
        else:
            if target is not None and (prefix_only or len(out) != len(target)):
                continue
        if chooser.position < len(path):
            raise ValueError(f"the decision prefix {root} is longer than the story it leads to")
        yield Derivation(detokenize(out), chooser.logprob, path)


def enumerate_stories(program: StoryProgram, prefix: Sequence[int] = ()) -> Iterator[Derivation]:
    """Every derivation of the program, by brute force: only for tiny lexicons and short shapes.

    With ``prefix``, only the derivations whose first decisions are these option indices (a
    subtree; its probabilities add up to the probability of the prefix). With
    ``StoryProgram(Lexicon.tiny(), StoryShape(max_facts=1, max_fillers=0))`` there are about ten
    thousand derivations; with the full lexicon, astronomically many.
    """
    return _search(program, None, tuple(prefix))


def derivations(text: str, program: StoryProgram | None = None) -> list[Derivation]:
    """Every derivation of the program that writes exactly ``text`` (parsing by search).

    The search follows the program and abandons a branch as soon as it writes a token that
    ``text`` does not have, so it takes milliseconds on real stories. For a text the generator
    cannot produce the list is empty; for one it can, it has exactly one element (the claim the
    tests check).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    program = default_program() if program is None else program
    return list(_search(program, word_tokenize(text)))


def story_logprob(text: str, program: StoryProgram | None = None) -> float:
    """The exact natural-log probability of the story ``text`` (``-inf`` if the generator cannot write it)."""
    return _log_total(derivations(text, program))


def prefix_logprob(text: str, program: StoryProgram | None = None) -> float:
    """The log-probability that a story's word tokens begin with those of ``text``.

    The generator's own next-word distribution follows from it:
    ``p(w | prompt) = exp(prefix_logprob(prompt + " " + w) - prefix_logprob(prompt))``; for a
    probe's answer this is 1.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    program = default_program() if program is None else program
    target = word_tokenize(text)
    if not target:
        return 0.0
    return _log_total(list(_search(program, target, prefix_only=True)))


def _log_total(found: list[Derivation]) -> float:
    if not found:
        return -math.inf
    top = max(d.logprob for d in found)
    return top + math.log(math.fsum(math.exp(d.logprob - top) for d in found))
