"""A translation pair with a known word alignment, for Chapter 6 (seq2seq and attention).

**Source**: simple English sentences written by a probabilistic program
(:mod:`course_lib.data.program`) from the story lexicon, so each sentence has an exact
log-probability and, as for the stories, exactly one derivation. A sentence is one to
``max_units`` *units* joined by "and"/"but"; a unit is a clause, optionally followed by
"because" and a second clause (its *reason*); a clause is subject, verb, object, with adjective
lists, an optional relative clause on the object and an optional place.

**Target**: a small constructed language, *Kelo*, produced from the source's derivation tree by a
deterministic transduction. Clause by clause:

1. Word order subject - [place] - object - verb (verb-final, SOV).
2. No articles: "the" is not translated (no target token is aligned to it), except in a place.
3. Adjectives follow their noun, in the order the source gives them.
4. Case: the object ends with the particle ``ko``, aligned to the verb that governs it.
5. Agreement: the verb is followed by a marker of its subject's gender, ``na`` (female),
   ``ro`` (male) or ``su`` (neither: "the farmer"), aligned to the subject's head word, which in
   the target is the clause's first word, far from the marker.
6. A relative clause comes before its noun: "the ball that Tom made" becomes
   ``Tom <made> ki <ball>``; ``ki`` is aligned to "that".
7. A place becomes a postposition: "in the park" becomes ``<park> ne``; ``ne`` is aligned to
   "in" and "the" (two source positions).
8. A reason comes first: "A because B" becomes ``B kasi A``, ``kasi`` (aligned to "because")
   closing the reason.
9. "and" is ``e``, "but" is ``mu``, both between units as in English; "." is ".".

Names stay as they are. Every other content word has one Kelo word of two syllables
(consonants ``bdfglmnprstvz``, vowels ``aeiou``; no ``k``, so no content word can be a particle):
the ``i``-th translatable word of the lexicon, in the order of :data:`TRANSLATED_GROUPS`, gets
syllable pair ``(i * 1237 + 611) mod 65**2`` (:func:`target_lexicon` lists them all). With the
full lexicon, for example, girl = dume, brave = sufo, red = sabi, ball = peve, found = fome,
made = nimo, park = gadu, kite = vavo, lost = dose.

A worked example (source position in brackets)::

    source:  The[0] brave[1] girl[2] found[3] the[4] red[5] ball[6] that[7] Tom[8] made[9]
             in[10] the[11] park[12] because[13] Mia[14] lost[15] the[16] kite[17] .[18]
    target:  Mia vavo ko dose na kasi dume sufo gadu ne Tom nimo ki peve sabi ko fome na .
    aligned: 14 17 15 15 14 13 2 1 12 10,11 8 9 7 6 5 3 3 2 18

The reason ("Mia lost the kite") moves first and ends with ``kasi``; in the main clause the
place comes before the object, the relative clause before "ball", the adjective after it; the
object particle ``ko`` and the verb are both aligned to "found" [3], and the agreement marker
``na`` to "girl" [2], whose Kelo word ``dume`` is eleven tokens earlier. Every source
sentence has exactly one translation, and :func:`detranslate` recovers the source from it.

Source lengths range from 5 tokens to about 90 (the number of units is uniform, so long
sentences are as common as short ones). :mod:`course_lib.data.parallel` draws pairs in a length
range, fills length buckets and makes disjoint train/validation/test splits.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from course_lib.checks import ArgumentError, non_negative_int, positive_int
from course_lib.data.lexicon import Lexicon
from course_lib.data.program import (
    Categorical,
    Choose,
    Run,
    find_derivations,
    interleave,
    replay,
    zipf,
)
from course_lib.data.text import detokenize, word_tokenize

# The source's fixed words; no lexicon word may be one of them.
SOURCE_WORDS = frozenset(("The", "the", "that", "in", "because", "and", "but", "."))
# Kelo's particles and markers (rules 4-9 of the module docstring).
OBJECT_CASE, RELATIVE, IN, BECAUSE = "ko", "ki", "ne", "kasi"
CONNECTORS = {"and": "e", "but": "mu"}
AGREEMENT = {"female": "na", "male": "ro", None: "su"}
TARGET_WORDS = frozenset((OBJECT_CASE, RELATIVE, IN, BECAUSE, ".", *CONNECTORS.values(), *AGREEMENT.values()))

# The lexicon groups the source uses whose words Kelo translates (names are kept), in this order.
TRANSLATED_GROUPS = (
    "female_roles", "male_roles", "neutral_roles", "person_adjectives",
    "things", "toys", "thing_adjectives", "colours", "thing_verbs", "places",
)
_SYLLABLES = [consonant + vowel for consonant in "bdfglmnprstvz" for vowel in "aeiou"]


def target_lexicon(lexicon: Lexicon | None = None) -> dict[str, str]:
    """Every translated source word and its Kelo word (names, kept as they are, not listed)."""
    lexicon = Lexicon() if lexicon is None else lexicon
    words = [word for group in TRANSLATED_GROUPS for word in getattr(lexicon, group)]
    pairs = len(_SYLLABLES) ** 2
    if len(words) > pairs:
        raise ArgumentError(f"Kelo has {pairs} two-syllable words, the lexicon needs {len(words)}")
    # 1237 is coprime with 65 ** 2, so i -> i * 1237 + 611 (mod 65 ** 2) gives distinct words.
    kelo = [(i * 1237 + 611) % pairs for i in range(len(words))]
    return {word: _SYLLABLES[k // len(_SYLLABLES)] + _SYLLABLES[k % len(_SYLLABLES)] for word, k in zip(words, kelo)}


# ---------------------------------------------------------------------------------------------
# The derivation tree of a source sentence (each word with its source position)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Word:
    text: str
    position: int  # index among the source tokens


@dataclass(frozen=True)
class Relative:
    """ "that Tom made": a relative clause on the object."""

    that: Word
    subject: Word  # a name
    verb: Word


@dataclass(frozen=True)
class NounPhrase:
    """A name, or "the" + adjectives + noun (+ a relative clause, on objects)."""

    head: Word
    adjectives: tuple[Word, ...] = ()
    relative: Relative | None = None


@dataclass(frozen=True)
class Place:
    """ "in the park"."""

    preposition: Word
    article: Word
    noun: Word


@dataclass(frozen=True)
class Clause:
    subject: NounPhrase
    verb: Word
    object: NounPhrase
    place: Place | None


@dataclass(frozen=True)
class Unit:
    """A clause, optionally followed by "because" and its reason."""

    main: Clause
    because: Word | None = None
    reason: Clause | None = None


@dataclass(frozen=True)
class Sentence:
    units: tuple[Unit, ...]
    connectors: tuple[Word, ...]  # "and"/"but" before units 2, 3, ...
    stop: Word


# ---------------------------------------------------------------------------------------------
# The source program
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentenceShape:
    """How long sentences are: 1..``max_units`` units (uniformly many), up to ``max_adjectives``
    adjectives per noun; ``relatives``, ``places`` and ``reasons`` switch those parts on."""

    max_units: int = 5
    max_adjectives: int = 3
    relatives: bool = True
    places: bool = True
    reasons: bool = True

    def __post_init__(self) -> None:
        positive_int("max_units", self.max_units)
        non_negative_int("max_adjectives", self.max_adjectives)


class TranslationProgram:
    """The source program: ``write(choose, out)`` appends one sentence's tokens and returns its tree.

    Every decision shows in the next token written (an adjective or the noun, "that" or what
    follows, ...), so each sentence has one derivation and parsing by search is fast.
    ``transduce(sentence)`` gives the Kelo tokens and their alignment.
    """

    def __init__(self, lexicon: Lexicon | None = None, shape: SentenceShape | None = None):
        lexicon = Lexicon() if lexicon is None else lexicon
        lexicon.check()
        clash = SOURCE_WORDS & lexicon.vocabulary()
        if clash:
            raise ArgumentError(f"lexicon words {sorted(clash)} are fixed words of the translation source")
        self.lexicon = lexicon
        self.shape = SentenceShape() if shape is None else shape
        self.kelo = target_lexicon(lexicon)
        self.english = {kelo: english for english, kelo in self.kelo.items()}
        self.names = frozenset(lexicon.female_names + lexicon.male_names)
        self.gender = (
            {word: "female" for word in lexicon.female_names + lexicon.female_roles}
            | {word: "male" for word in lexicon.male_names + lexicon.male_roles}
            | {word: None for word in lexicon.neutral_roles}
        )
        self.group = {word: group for group in TRANSLATED_GROUPS for word in getattr(lexicon, group)}

        self.another_unit = [
            Categorical((False, True), (1, self.shape.max_units - 1 - k)) for k in range(self.shape.max_units - 1)
        ]
        self.connector = Categorical(("and", "but"), (2, 1))
        self.reason = Categorical((False, True), (2, 1))
        self.subject_kind = Categorical(("name", "role"), (1, 1))
        self.name = zipf(interleave(lexicon.female_names, lexicon.male_names))
        self.role = zipf(interleave(lexicon.female_roles, lexicon.male_roles) + list(lexicon.neutral_roles))
        self.verb = zipf(lexicon.thing_verbs)
        self.thing = zipf(interleave(lexicon.toys, lexicon.things))
        self.place = zipf(lexicon.places)
        self.another_adjective = Categorical((False, True), (3, 2))
        self.relative = Categorical((False, True), (3, 1))
        self.has_place = Categorical((False, True), (2, 1))
        self.adjective_lists = {
            "person": zipf(lexicon.person_adjectives),
            "thing": zipf(interleave(lexicon.colours, lexicon.thing_adjectives)),
        }
        self._adjectives_left: dict[tuple[str, tuple[str, ...]], Categorical] = {}

    def source_words(self) -> list[str]:
        """Every token a source sentence can hold, in a fixed order (names, lexicon words, fixed words)."""
        words = sorted(self.names) + [word for group in TRANSLATED_GROUPS for word in getattr(self.lexicon, group)]
        return words + sorted(SOURCE_WORDS)

    def target_words(self) -> list[str]:
        """Every token a Kelo sentence can hold, in a fixed order (names, Kelo words, particles)."""
        return sorted(self.names) + list(self.kelo.values()) + sorted(TARGET_WORDS)

    # -- the source sentence --------------------------------------------------------------

    def write(self, choose: Choose, out: list[str]) -> Sentence:
        """Append one source sentence's tokens to ``out`` and return its derivation tree."""
        units = [self._unit(choose, out, first=True)]
        connectors = []
        for another in self.another_unit:
            if not choose(another):
                break
            connectors.append(_write(out, choose(self.connector)))
            units.append(self._unit(choose, out, first=False))
        return Sentence(tuple(units), tuple(connectors), _write(out, "."))

    def _unit(self, choose: Choose, out: list[str], first: bool) -> Unit:
        main = self._clause(choose, out, first)
        if not self.shape.reasons or not choose(self.reason):
            return Unit(main)
        because = _write(out, "because")
        return Unit(main, because, self._clause(choose, out, first=False))

    def _clause(self, choose: Choose, out: list[str], first: bool) -> Clause:
        """ "The brave girl found the red ball that Tom made in the park"."""
        if choose(self.subject_kind) == "name":
            subject = NounPhrase(_write(out, choose(self.name)))
        else:
            _write(out, "The" if first else "the")
            adjectives = self._adjectives(choose, out, "person")
            subject = NounPhrase(_write(out, choose(self.role)), adjectives)
        verb = _write(out, choose(self.verb))
        _write(out, "the")
        adjectives = self._adjectives(choose, out, "thing")
        thing = _write(out, choose(self.thing))
        relative = None
        if self.shape.relatives and choose(self.relative):
            that = _write(out, "that")
            relative = Relative(that, _write(out, choose(self.name)), _write(out, choose(self.verb)))
        place = None
        if self.shape.places and choose(self.has_place):
            place = Place(_write(out, "in"), _write(out, "the"), _write(out, choose(self.place)))
        return Clause(subject, verb, NounPhrase(thing, adjectives, relative), place)

    def _adjectives(self, choose: Choose, out: list[str], kind: str) -> tuple[Word, ...]:
        """Up to ``max_adjectives`` distinct adjectives, each added with probability 2/5."""
        chosen: list[str] = []
        words = []
        for _ in range(self.shape.max_adjectives):
            left = self._left(kind, chosen)
            if left is None or not choose(self.another_adjective):
                break
            adjective = choose(left)
            chosen.append(adjective)
            words.append(_write(out, adjective))
        return tuple(words)

    def _left(self, kind: str, chosen: list[str]) -> Categorical | None:
        """The adjectives of ``kind`` not yet chosen for this noun (``None`` when all are)."""
        key = (kind, tuple(chosen))
        if key not in self._adjectives_left:
            full = self.adjective_lists[kind]
            remaining = [word for word in full.options if word not in chosen]
            self._adjectives_left[key] = full.restricted(remaining) if remaining else None
        return self._adjectives_left[key]

    # -- the transduction -------------------------------------------------------------------

    def pair(self, run: Run) -> TranslationPair:
        """The translation pair of one run of :meth:`write` (as :func:`draw` or :func:`replay` give it)."""
        target, alignment = self.transduce(run.value)
        return TranslationPair(tuple(run.tokens), tuple(target), tuple(alignment), run.logprob)

    def transduce(self, sentence: Sentence) -> tuple[list[str], list[tuple[int, ...]]]:
        """Kelo tokens of ``sentence`` and, for each, the source positions it is aligned to."""
        target: list[str] = []
        alignment: list[tuple[int, ...]] = []

        def emit(token: str, *words: Word) -> None:
            target.append(token)
            alignment.append(tuple(word.position for word in words))

        for index, unit in enumerate(sentence.units):
            if index:
                connector = sentence.connectors[index - 1]
                emit(CONNECTORS[connector.text], connector)
            if unit.reason is not None:
                self._transduce_clause(unit.reason, emit)
                emit(BECAUSE, unit.because)
            self._transduce_clause(unit.main, emit)
        emit(".", sentence.stop)
        return target, alignment

    def _transduce_clause(self, clause: Clause, emit) -> None:
        """Rules 1 and 3-7: subject, place, object + ``ko``, verb + agreement."""
        self._transduce_noun_phrase(clause.subject, emit)
        if clause.place is not None:
            emit(self.kelo[clause.place.noun.text], clause.place.noun)
            emit(IN, clause.place.preposition, clause.place.article)
        relative = clause.object.relative
        if relative is not None:
            emit(relative.subject.text, relative.subject)
            emit(self.kelo[relative.verb.text], relative.verb)
            emit(RELATIVE, relative.that)
        self._transduce_noun_phrase(clause.object, emit)
        emit(OBJECT_CASE, clause.verb)
        emit(self.kelo[clause.verb.text], clause.verb)
        emit(AGREEMENT[self.gender[clause.subject.head.text]], clause.subject.head)

    def _transduce_noun_phrase(self, phrase: NounPhrase, emit) -> None:
        head = phrase.head
        emit(head.text if head.text in self.names else self.kelo[head.text], head)
        for adjective in phrase.adjectives:
            emit(self.kelo[adjective.text], adjective)

    # -- and back -------------------------------------------------------------------------------

    def detranslate(self, target: Sequence[str]) -> list[str]:
        """The source tokens whose translation is ``target`` (the inverse of the transduction).

        Raises :class:`~course_lib.checks.ArgumentError` naming the first token that does not
        fit Kelo's grammar.
        """
        tokens = list(target)
        if not tokens or tokens[-1] != ".":
            raise ArgumentError(f"a Kelo sentence ends with '.', got {tokens[-1:]!r}")
        source: list[str] = []
        reader = _Reader(tokens[:-1])
        while True:
            reason = None
            clause = self._read_clause(reader)
            if reader.peek() == BECAUSE:
                reader.next()
                reason, clause = clause, self._read_clause(reader)
            source.extend(clause)
            if reason is not None:
                source.append("because")
                source.extend(reason)
            if reader.done():
                break
            connector = reader.expect(*CONNECTORS.values())
            source.append(next(english for english, kelo in CONNECTORS.items() if kelo == connector))
        source.append(".")
        source[0] = source[0][0].upper() + source[0][1:]
        return source

    def _read_clause(self, reader: _Reader) -> list[str]:
        head = reader.next()
        subject = self._read_noun_phrase(reader, head, "person")
        place = []
        if self._group_of(reader.peek()) == "places":
            place = ["in", "the", self.english[reader.next()]]
            reader.expect(IN)
        relative = []
        if reader.peek() in self.names:
            relative = ["that", reader.next(), self._english(reader.next(), "thing_verbs")]
            reader.expect(RELATIVE)
        thing = self._read_noun_phrase(reader, reader.next(), "thing")
        reader.expect(OBJECT_CASE)
        verb = self._english(reader.next(), "thing_verbs")
        subject_head = head if head in self.names else self.english[head]
        reader.expect(AGREEMENT[self.gender[subject_head]])
        return [*subject, verb, *thing, *relative, *place]

    def _read_noun_phrase(self, reader: _Reader, head: str, kind: str) -> list[str]:
        if kind == "person" and head in self.names:
            return [head]
        nouns = ("female_roles", "male_roles", "neutral_roles") if kind == "person" else ("things", "toys")
        noun = self._english(head, *nouns)
        adjective_groups = ("person_adjectives",) if kind == "person" else ("thing_adjectives", "colours")
        adjectives = []
        while self._group_of(reader.peek()) in adjective_groups:
            adjectives.append(self.english[reader.next()])
        return ["the", *adjectives, noun]

    def _group_of(self, kelo: str | None) -> str | None:
        """The lexicon group of the English word a Kelo word translates (``None`` for particles)."""
        return self.group.get(self.english.get(kelo))

    def _english(self, kelo: str, *groups: str) -> str:
        english = self.english.get(kelo)
        if english is None or self.group[english] not in groups:
            raise ArgumentError(f"expected a Kelo word of {' or '.join(groups)}, got {kelo!r}")
        return english


def _write(out: list[str], token: str) -> Word:
    """Append ``token`` to the source and return it with its position."""
    word = Word(token, len(out))
    out.append(token)
    return word


class _Reader:
    """Kelo tokens read left to right, with errors that say where."""

    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.position = 0

    def done(self) -> bool:
        return self.position == len(self.tokens)

    def peek(self) -> str | None:
        return None if self.done() else self.tokens[self.position]

    def next(self) -> str:
        if self.done():
            raise ArgumentError("the Kelo sentence ends in the middle of a clause")
        self.position += 1
        return self.tokens[self.position - 1]

    def expect(self, *allowed: str) -> str:
        token = self.peek()
        if token not in allowed:
            expected = " or ".join(map(repr, allowed))
            raise ArgumentError(f"expected {expected} at Kelo token {self.position}, got {token!r}")
        return self.next()


# ---------------------------------------------------------------------------------------------
# Translation pairs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranslationPair:
    """A source sentence, its one Kelo translation, and the alignment between them.

    ``alignment[j]`` lists the source positions that target token ``j`` translates (empty for
    none); ``logprob`` is the exact log-probability of the source under the program.
    """

    source: tuple[str, ...]
    target: tuple[str, ...]
    alignment: tuple[tuple[int, ...], ...]
    logprob: float

    @property
    def source_text(self) -> str:
        return detokenize(self.source)

    @property
    def target_text(self) -> str:
        return detokenize(self.target)

    def aligned_words(self) -> list[tuple[str, tuple[str, ...]]]:
        """Each target token with the source words it is aligned to."""
        return [
            (token, tuple(self.source[i] for i in positions))
            for token, positions in zip(self.target, self.alignment)
        ]


@functools.cache
def default_translation_program() -> TranslationProgram:
    """The source program with the full lexicon and default sentence shape (built once)."""
    return TranslationProgram()


def translate(source: str | Sequence[str], program: TranslationProgram | None = None) -> TranslationPair:
    """The pair of a source sentence (text or tokens): parsed back by search, then transduced.

    Raises :class:`~course_lib.checks.ArgumentError` if the program cannot write the sentence.
    """
    program = default_translation_program() if program is None else program
    tokens = word_tokenize(source) if isinstance(source, str) else list(source)
    found = find_derivations(program.write, tokens)
    if not found:
        raise ArgumentError(f"the source program cannot write {detokenize(tokens)!r}")
    run = replay(program.write, found[0].decisions)
    return program.pair(run)


def detranslate(target: str | Sequence[str], program: TranslationProgram | None = None) -> list[str]:
    """The source tokens of a Kelo sentence (text or tokens): the inverse of :func:`translate`."""
    program = default_translation_program() if program is None else program
    return program.detranslate(word_tokenize(target) if isinstance(target, str) else target)
