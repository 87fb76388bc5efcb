"""The story grammar: short Simple-English stories from a probabilistic program.

Every chapter trains and evaluates on these stories. :class:`StoryProgram` is a probabilistic
program (:mod:`course_lib.data.program`): each random decision is a draw from an explicit
finite distribution, so the probability of a story is the product of the probabilities of its
decisions,

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
(:func:`course_lib.data.program.entropy_floor`; per split in :mod:`course_lib.data.corpus`).

A story reads like::

    Once upon a time, there was a kind girl named Mia. She had a red ball. She lived in a cosy
    hut near the lake. One morning, Mia went to the park. A bird sang. What colour was the ball
    that Mia had? It was red. Where did Mia live? She lived near the lake. The end.

Facts stated early (the ball's colour, the home's landmark, the pet's name) are asked for later,
after a random number of filler sentences: long-range dependencies whose answers are certain given
the story (probability 1). :func:`course_lib.data.probes.make_probes` cuts stories right before
such an answer.
"""
from __future__ import annotations

import functools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from course_lib import checks
from course_lib.checks import integer, non_negative_int
from course_lib.data.lexicon import Lexicon
from course_lib.data.program import (
    Categorical,
    Choose,
    Derivation,
    Sample,
    draw,
    enumerate_derivations,
    find_derivations,
    interleave,
    log_total,
    optional,
    prefix_logprob_of,
    zipf,
    zipf_weights,
)
from course_lib.data.text import detokenize, word_tokenize

FACT_KINDS = ("colour", "home", "pet")


@dataclass(frozen=True)
class StoryShape:
    """How long stories are: 1..``max_facts`` facts, each asked for after 0..``max_fillers`` fillers."""

    max_facts: int = 3
    max_fillers: int = 8
    endings: bool = True

    def __post_init__(self) -> None:
        integer("max_facts", self.max_facts, minimum=1, maximum=len(FACT_KINDS))
        non_negative_int("max_fillers", self.max_fillers)


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
        self.all_names = zipf(interleave(lex.female_names, lex.male_names))
        self.names_of = {"female": zipf(lex.female_names), "male": zipf(lex.male_names), None: self.all_names}
        self.all_roles = zipf(interleave(lex.female_roles, lex.male_roles) + list(lex.neutral_roles))
        self.roles_for = {
            "female": zipf(list(lex.female_roles) + list(lex.neutral_roles)),
            "male": zipf(list(lex.male_roles) + list(lex.neutral_roles)),
        }
        self.person_adjective = optional(lex.person_adjectives, none_weight=1.0)
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
        self.home_adjective = optional(lex.home_adjectives, none_weight=1.0)
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
        self.optional_place = optional(lex.places, none_weight=2.0)
        self.thing_verb = zipf(lex.thing_verbs)
        self.thing = zipf(lex.things)
        self.thing_adjective = optional(lex.thing_adjectives, none_weight=1.5)
        self.animal = zipf([animal for animal, _ in lex.animal_verbs])
        self.animal_verb = {animal: zipf(verbs) for animal, verbs in lex.animal_verbs}
        self.scenery = zipf([noun for noun, _ in lex.scenery])
        self.scenery_adjective = {noun: zipf(adjectives) for noun, adjectives in lex.scenery}
        self.feeling = zipf(lex.feelings)
        self.very = Categorical((False, True), (3, 1))
        self.food = zipf(lex.foods)
        self.optional_meal = optional(lex.meals, none_weight=3.0)
        self.pair_verb = zipf(lex.pair_verbs)
        self.together = Categorical((False, True), (2, 1))
        self.ending = Categorical(self.ENDINGS, (3, 3, 2, 2, 1))
        self._other_names: dict[str, Categorical] = {}
        self._kinds_left: dict[tuple[str, tuple[str, ...]], Categorical] = {}

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
# Stories drawn from the program, and parsed back
# ---------------------------------------------------------------------------------------------


class Story(Sample):
    """One story (sentences separated by single spaces) and its exact probability under the generator."""


@functools.cache
def default_program() -> StoryProgram:
    """The generator with the full lexicon and default story shape (built once)."""
    return StoryProgram()


def generate_stories(n_stories: int, seed: int = 0, program: StoryProgram | None = None) -> list[Story]:
    """``n_stories`` stories drawn from the generator, deterministic from ``seed``.

    The stream is a prefix code of the seed: ``generate_stories(k, s)`` is the first ``k`` of
    ``generate_stories(n, s)`` for ``k <= n``.
    """
    non_negative_int("n_stories", n_stories)
    non_negative_int("seed", seed)
    program = default_program() if program is None else program
    rng = random.Random(seed)
    stories = []
    for _ in range(n_stories):
        run = draw(program.tell, rng)
        stories.append(Story(detokenize(run.tokens), run.logprob))
    return stories


def enumerate_stories(program: StoryProgram, prefix: Sequence[int] = ()) -> Iterator[Derivation]:
    """Every derivation of the program, by brute force: only for tiny lexicons and short shapes.

    With ``prefix``, only the derivations whose first decisions are these option indices (a
    subtree; its probabilities add up to the probability of the prefix). With
    ``StoryProgram(Lexicon.tiny(), StoryShape(max_facts=1, max_fillers=0))`` there are about ten
    thousand derivations; with the full lexicon, astronomically many.
    """
    return enumerate_derivations(program.tell, prefix)


def derivations(text: str, program: StoryProgram | None = None) -> list[Derivation]:
    """Every derivation of the program that writes exactly ``text`` (parsing by search).

    The search follows the program and abandons a branch as soon as it writes a token that
    the text does not have, so it takes milliseconds on real stories. For a text the generator
    cannot produce the list is empty; for one it can, it has exactly one element (the claim the
    tests check).
    """
    checks.text("text", text)
    program = default_program() if program is None else program
    return find_derivations(program.tell, word_tokenize(text))


def story_logprob(text: str, program: StoryProgram | None = None) -> float:
    """The exact natural-log probability of the story ``text`` (``-inf`` if the generator cannot write it)."""
    return log_total(derivations(text, program))


def prefix_logprob(text: str, program: StoryProgram | None = None) -> float:
    """The log-probability that a story's word tokens begin with those of ``text``.

    The generator's own next-word distribution follows from it:
    ``p(w | prompt) = exp(prefix_logprob(prompt + " " + w) - prefix_logprob(prompt))``; for a
    probe's answer this is 1.
    """
    checks.text("text", text)
    program = default_program() if program is None else program
    return prefix_logprob_of(program.tell, word_tokenize(text))
