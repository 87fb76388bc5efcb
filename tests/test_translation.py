"""The translation pair: exact source probabilities, a bijective transduction, correct alignments,
lengths, disjoint and deterministic splits."""
import math
import random
import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import course_lib.data.parallel as parallel
import course_lib.data.translation as translation
from course_lib.checks import ArgumentError
from course_lib.data import Lexicon
from course_lib.data.program import SamplingChooser, enumerate_derivations, find_derivations
from course_lib.data.text import Vocabulary
from course_lib.data.parallel import length_buckets, parallel_corpus, sentence_pairs, split_of
from course_lib.data.translation import (
    AGREEMENT,
    BECAUSE,
    CONNECTORS,
    IN,
    OBJECT_CASE,
    RELATIVE,
    TARGET_WORDS,
    SentenceShape,
    TranslationProgram,
    default_translation_program,
    detranslate,
    target_lexicon,
    translate,
)

TINY_LEXICON = Lexicon.tiny()


@pytest.fixture(scope="module")
def pairs():
    return sentence_pairs(1500, seed=0)


# -- exact probabilities --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, least",
    [
        (SentenceShape(max_units=1, max_adjectives=2, reasons=False), 900),
        (SentenceShape(max_units=2, max_adjectives=0, relatives=False, places=False), 20000),
    ],
)
def test_brute_force_every_sentence_has_one_derivation_and_probabilities_sum_to_one(shape, least):
    program = TranslationProgram(TINY_LEXICON, shape)
    found = list(enumerate_derivations(program.write))
    texts = [d.text for d in found]
    assert len(texts) >= least
    assert len(set(texts)) == len(texts)
    assert math.fsum(math.exp(d.logprob) for d in found) == pytest.approx(1.0, abs=1e-9)


def test_the_first_decisions_have_their_documented_probabilities():
    # One unit of four (1/4); no reason (2/3); a name (1/2); "Mia", first of the Zipf-weighted
    # names (1 / (1 + 1/2)); "found", the only verb of the tiny lexicon; no adjective (3/5);
    # "ball" of (ball, egg) (2/3); no relative clause (3/4); no place (2/3).
    program = TranslationProgram(TINY_LEXICON, SentenceShape(max_units=4))
    pair = translate("Mia found the ball.", program)
    expected = 1 / 4 * 1 / 2 * 2 / 3 * 1 * 3 / 5 * 2 / 3 * 3 / 4 * 2 / 3 * 2 / 3
    assert math.exp(pair.logprob) == pytest.approx(expected, rel=1e-12)


def test_sampled_sentences_parse_back_to_their_one_derivation(pairs):
    program = default_translation_program()
    rng = random.Random(4)
    for _ in range(12):
        chooser = SamplingChooser(rng, record=True)
        out = []
        program.write(chooser.choose, out)
        parsed = find_derivations(program.write, out)
        assert [d.decisions for d in parsed] == [tuple(chooser.decisions)]
        assert parsed[0].logprob == pytest.approx(chooser.logprob, rel=1e-12)
    for pair in pairs[:12]:
        assert translate(pair.source) == pair


def test_sentences_outside_the_language_are_refused():
    with pytest.raises(ArgumentError, match="cannot write"):
        translate("The ball found Mia.")
    with pytest.raises(ArgumentError, match="cannot write"):
        translate("Mia found the ball")  # no full stop


# -- the transduction --------------------------------------------------------------------------------


def test_the_documented_example_is_what_the_code_gives():
    lines = translation.__doc__.split("A worked example")[1].split("\n\n")[1]
    source = re.findall(r"(\S+)\[(\d+)\]", lines.split("target:")[0])
    target = lines.split("target:")[1].split("aligned:")[0].split()
    aligned = [tuple(map(int, item.split(","))) for item in lines.split("aligned:")[1].split()]
    assert [int(position) for _, position in source] == list(range(len(source)))
    pair = translate([word for word, _ in source])
    assert list(pair.target) == target
    assert list(pair.alignment) == aligned
    words = dict(re.findall(r"(\w+) = (\w+)", translation.__doc__))
    assert all(target_lexicon()[english] == kelo for english, kelo in words.items()) and len(words) == 9


def test_the_transduction_is_a_bijection_and_detranslate_inverts_it(pairs):
    by_source = {pair.source: pair.target for pair in pairs}
    assert len(by_source) > 1300  # distinct sources ...
    assert len(set(by_source.values())) == len(by_source)  # ... have distinct targets
    for pair in pairs:
        assert tuple(detranslate(pair.target)) == pair.source
    assert detranslate(pairs[0].target_text) == list(pairs[0].source)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), min_len=st.integers(5, 60))
def test_detranslate_inverts_the_transduction_at_every_length(seed, min_len):
    pair = sentence_pairs(1, min_len=min_len, max_len=min_len + 5, seed=seed)[0]
    assert min_len <= len(pair.source) <= min_len + 5
    assert tuple(detranslate(pair.target)) == pair.source
    assert len(pair.alignment) == len(pair.target)


def test_the_target_lexicon_is_one_to_one_and_apart_from_the_particles():
    lexicon = target_lexicon()
    assert len(set(lexicon.values())) == len(lexicon) == 182
    assert TARGET_WORDS == {OBJECT_CASE, RELATIVE, IN, BECAUSE, ".", *CONNECTORS.values(), *AGREEMENT.values()}
    assert not TARGET_WORDS & set(lexicon.values())
    assert all(re.fullmatch(r"([bdfglmnprstvz][aeiou]){2}", word) for word in lexicon.values())


def test_every_alignment_points_to_the_word_it_translates_or_that_governs_it(pairs):
    lexicon = Lexicon()
    kelo = target_lexicon(lexicon)
    names = set(lexicon.female_names + lexicon.male_names)
    verbs = set(lexicon.thing_verbs)
    gender = {w: "female" for w in lexicon.female_names + lexicon.female_roles}
    gender |= {w: "male" for w in lexicon.male_names + lexicon.male_roles}
    gender |= {w: None for w in lexicon.neutral_roles}
    function_words = {BECAUSE: ("because",), RELATIVE: ("that",), IN: ("in", "the"), ".": (".",)}
    function_words |= {kelo_word: (english,) for english, kelo_word in CONNECTORS.items()}
    for pair in pairs:
        translated = Counter()  # how often each source position is translated, markers aside
        for j, (token, words) in enumerate(pair.aligned_words()):
            if token in function_words:
                assert words == function_words[token]
            elif token == OBJECT_CASE:  # governed by the verb, which follows it
                assert words[0] in verbs and pair.alignment[j] == pair.alignment[j + 1]
                continue
            elif token in AGREEMENT.values():  # agrees with the subject head of the verb before it
                assert len(words) == 1 and AGREEMENT[gender[words[0]]] == token
                assert pair.target[j - 1] == kelo[pair.source[pair.alignment[j - 1][0]]]
                continue
            elif token in names:
                assert words == (token,)
            else:
                assert len(words) == 1 and kelo[words[0]] == token
            translated.update(pair.alignment[j])
        # Every source word is translated exactly once, except the articles, which Kelo drops
        # (the "the" of a place is part of what "ne" translates).
        for position, word in enumerate(pair.source):
            dropped = word in ("The", "the") and pair.source[position - 1] != "in"
            assert translated[position] == (0 if dropped else 1), (pair.source_text, position)


def test_agreement_markers_reach_far_back(pairs):
    # The distance in target tokens from an agreement marker to its subject's head word.
    distances = []
    for pair in pairs:
        positions = {p: j for j, a in enumerate(pair.alignment) for p in a if pair.target[j] not in AGREEMENT.values()}
        distances += [j - positions[a[0]] for j, a in enumerate(pair.alignment) if pair.target[j] in AGREEMENT.values()]
    assert min(distances) == 4 and max(distances) >= 14


# -- lengths, splits, determinism ------------------------------------------------------------------


def test_lengths_are_controllable_up_to_forty_and_beyond():
    long = sentence_pairs(20, min_len=40, max_len=50, seed=1)
    assert all(40 <= len(pair.source) <= 50 for pair in long)
    buckets = length_buckets(5, edges=(5, 11, 21, 31, 41, 51), seed=0)
    assert list(buckets) == [(5, 10), (11, 20), (21, 30), (31, 40), (41, 50)]
    for (low, high), bucket in buckets.items():
        assert len(bucket) == 5 and all(low <= len(pair.source) <= high for pair in bucket)
        assert all(split_of(pair.source) == "test" for pair in bucket)


def test_splits_are_disjoint_deterministic_and_independent_of_each_others_sizes():
    corpus = parallel_corpus(300, 40, 40, seed=2)
    sources = {name: {pair.source for pair in corpus.split(name)} for name in ("train", "validation", "test")}
    assert not sources["train"] & sources["validation"]
    assert not sources["train"] & sources["test"]
    assert not sources["validation"] & sources["test"]
    assert all(split_of(pair.source) == name for name in sources for pair in corpus.split(name))
    larger = parallel_corpus(350, 40, 50, seed=2)
    assert larger.train[:300] == corpus.train and larger.validation == corpus.validation
    assert larger.test[:40] == corpus.test
    assert parallel_corpus(300, 40, 40, seed=3).train != corpus.train
    assert sentence_pairs(10, seed=5) == sentence_pairs(10, seed=5) != sentence_pairs(10, seed=6)


def test_vocabularies_and_entropy_floor():
    corpus = parallel_corpus(200, 20, 0, seed=0)
    source_vocabulary, target_vocabulary = corpus.vocabularies()
    assert isinstance(source_vocabulary, Vocabulary) and "<unk>" in target_vocabulary.tokens
    assert {token for tokens in corpus.targets("train") for token in tokens} <= set(target_vocabulary.tokens)
    assert source_vocabulary.encode(corpus.sources("train")[0]).count(source_vocabulary.unk_id) == 0
    floor = corpus.entropy_floor("validation")
    pairs = corpus.validation
    tokens = sum(len(pair.source) + 1 for pair in pairs)
    assert floor.units == tokens
    assert floor.nats == pytest.approx(-sum(pair.logprob for pair in pairs) / tokens, rel=1e-12)
    # A target sentence has its source's probability: the same nats over the target's tokens.
    target_floor = corpus.entropy_floor("validation", side="target")
    assert target_floor.units == sum(len(pair.target) + 1 for pair in pairs)
    assert target_floor.nats * target_floor.units == pytest.approx(floor.nats * floor.units, rel=1e-12)
    table = corpus.describe()
    assert "validation" in table and f"{floor.nats:.4f}" in table


# -- bad input ---------------------------------------------------------------------------------------


def test_a_length_range_the_program_never_reaches_is_refused_not_waited_for(monkeypatch):
    monkeypatch.setattr(parallel, "MAX_MISSES", 300)
    with pytest.raises(ArgumentError, match="at least 200 tokens"):
        sentence_pairs(1, min_len=200)
    with pytest.raises(ArgumentError, match="unfilled bucket"):
        length_buckets(1, edges=(5, 200, 300))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: sentence_pairs(-1), "n"),
        (lambda: sentence_pairs(3, min_len=0), "min_len"),
        (lambda: sentence_pairs(3, min_len=10, max_len=5), "max_len"),
        (lambda: sentence_pairs(3, split="dev"), "split"),
        (lambda: parallel_corpus(2, 1, 1).entropy_floor("test", side="both"), "side"),
        (lambda: length_buckets(3, edges=(10, 5)), "edges"),
        (lambda: parallel_corpus(seed=-1), "seed"),
        (lambda: SentenceShape(max_units=0), "max_units"),
        (lambda: detranslate(["Mia", "vavo", "ko"]), "ends with"),
        (lambda: detranslate(["Mia", "vavo", "ki", "dose", "na", "."]), "expected 'ko'"),
        (lambda: detranslate(["Mia", "vavo", "ko", "dose", "ro", "."]), "expected 'na'"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ArgumentError, match=message):
        call()


def test_source_and_target_words_cover_every_sampled_sentence():
    from course_lib.data.parallel import sentence_pairs
    from course_lib.data.translation import default_translation_program
    program = default_translation_program()
    source_words, target_words = set(program.source_words()), set(program.target_words())
    assert len(source_words) == len(program.source_words()) and len(target_words) == len(program.target_words())
    seen_source, seen_target = set(), set()
    for pair in sentence_pairs(3000, seed=5):
        seen_source.update(pair.source)
        seen_target.update(pair.target)
    assert seen_source <= source_words and seen_target <= target_words
    assert len(seen_source) > 0.9 * len(source_words)  # the lists hold no words the program never writes
