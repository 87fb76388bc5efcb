"""The probabilistic-program machinery on its own: distributions, sampling, enumeration, parsing, floors.

A toy program (not the stories) shows that nothing here depends on the story grammar.
"""
import math
import random

import pytest

from course_lib.checks import ArgumentError
from course_lib.data.program import (
    Categorical,
    Sample,
    SamplingChooser,
    derive_seed,
    draw,
    entropy_floor,
    enumerate_derivations,
    find_derivations,
    interleave,
    log_total,
    optional,
    predicted_units,
    prefix_logprob_of,
    replay,
    text_logprob,
    zipf,
)
from course_lib.data.text import detokenize, word_tokenize

GREETING = Categorical(("hello", "hi"), (3, 1))
NAME = zipf(("Mia", "Tom", "Ada"))  # weights 1, 1/2, 1/3
PUNCTUATION = optional(("!",), none_weight=2.0)  # None 2/3, "!" 1/3


def greet(choose, out):
    """A toy program: "hello Mia", "hi Tom!", ... and, one time in four, a second name."""
    out.append(choose(GREETING))
    out.append(choose(NAME))
    if choose(Categorical((False, True), (3, 1))):
        out.extend(("and", choose(NAME)))
    mark = choose(PUNCTUATION)
    if mark is not None:
        out.append(mark)


def p_name(name):
    return {"Mia": 1, "Tom": 1 / 2, "Ada": 1 / 3}[name] / (1 + 1 / 2 + 1 / 3)


def test_categorical_probabilities_and_conditioning():
    assert [math.exp(lp) for lp in GREETING.log_probs] == pytest.approx([0.75, 0.25])
    assert math.exp(NAME.log_probs[2]) == pytest.approx(p_name("Ada"))
    without_tom = NAME.without("Tom")
    assert without_tom.options == ("Mia", "Ada")
    assert math.exp(without_tom.log_probs[0]) == pytest.approx(3 / 4)
    assert math.exp(PUNCTUATION.log_probs[0]) == pytest.approx(2 / 3)


def test_enumeration_gives_every_text_once_with_probabilities_summing_to_one():
    found = list(enumerate_derivations(greet))
    assert len(found) == 2 * 3 * (1 + 3) * 2
    assert len({d.text for d in found}) == len(found)
    assert math.fsum(math.exp(d.logprob) for d in found) == pytest.approx(1.0, abs=1e-12)
    by_text = {d.text: d.logprob for d in found}
    expected = 0.25 * p_name("Tom") * 0.25 * p_name("Ada") * (1 / 3)
    assert math.exp(by_text["hi Tom and Ada!"]) == pytest.approx(expected, rel=1e-12)


def test_sampling_matches_the_exact_probabilities():
    rng = random.Random(0)
    chooser = SamplingChooser(rng, record=True)
    out = []
    greet(chooser.choose, out)
    parsed = find_derivations(greet, out)
    assert [d.decisions for d in parsed] == [tuple(chooser.decisions)]
    assert parsed[0].logprob == pytest.approx(chooser.logprob, rel=1e-12)
    # draw() is the same sampler: same stream, same texts and log-probabilities.
    first, second = random.Random(5), random.Random(5)
    for _ in range(20):
        chooser = SamplingChooser(first)
        out = []
        greet(chooser.choose, out)
        assert draw(greet, second)[:2] == (out, chooser.logprob)
    # Frequencies follow the distribution: "hello" three times in four.
    rng = random.Random(1)
    hellos = sum(draw(greet, rng)[0][0] == "hello" for _ in range(4000))
    assert abs(hellos / 4000 - 0.75) < 0.03


def test_text_and_prefix_logprobs_equal_sums_over_the_enumeration():
    found = list(enumerate_derivations(greet))
    for tokens in (["hello", "Mia"], ["hi", "Ada", "and", "Ada", "!"]):
        assert text_logprob(greet, tokens) == pytest.approx(
            next(d.logprob for d in found if word_tokenize(d.text) == tokens), rel=1e-12)
    mass = math.fsum(math.exp(d.logprob) for d in found if word_tokenize(d.text)[:2] == ["hi", "Tom"])
    assert math.exp(prefix_logprob_of(greet, ["hi", "Tom"])) == pytest.approx(mass, rel=1e-12)
    assert prefix_logprob_of(greet, []) == 0.0
    assert text_logprob(greet, ["Mia", "hello"]) == -math.inf
    assert log_total([]) == -math.inf


def test_entropy_floor_is_minus_the_mean_logprob_per_predicted_unit():
    samples = [Sample("hello Mia", math.log(0.25)), Sample("hi Tom!", math.log(0.125))]
    floor = entropy_floor(samples)
    assert floor.units == (2 + 1) + (3 + 1)
    assert floor.nats == pytest.approx(-(math.log(0.25) + math.log(0.125)) / 7)
    assert entropy_floor(samples[0], unit="char").units == len("hello Mia") + 1
    assert predicted_units("hi Tom!") == 4
    assert floor.bits == pytest.approx(floor.nats / math.log(2))


def test_replay_reruns_a_derivation_and_refuses_a_partial_one():
    for derivation in list(enumerate_derivations(greet))[::7]:
        run = replay(greet, derivation.decisions)
        assert (detokenize(run.tokens), run.logprob) == (derivation.text, derivation.logprob)
    with pytest.raises(ArgumentError, match="stop before"):
        replay(greet, (0, 0))
    with pytest.raises(ArgumentError, match="more than"):
        replay(greet, (0, 0, 0, 0, 0))


def test_interleave_merges_ranks():
    assert interleave(["Mia", "Lily", "Emma"], ["Tom"]) == ["Mia", "Tom", "Lily", "Emma"]


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, "stories", "train") == derive_seed(0, "stories", "train")
    assert len({derive_seed(s, "stories", split) for s in range(3) for split in ("train", "test")}) == 6


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: Categorical(["a", "b"], [1.0, -1.0]), "weights"),
        (lambda: Categorical(["a", "b"], [1.0]), "one weight per option"),
        (lambda: Categorical(["a"], [float("inf")]), "finite"),
        (lambda: NAME.restricted(["Zed"]), "none of"),
        (lambda: entropy_floor([], unit="token"), "at least one"),
        (lambda: predicted_units("hi", unit="word"), "unit"),
        (lambda: list(enumerate_derivations(greet, prefix=(0, 0, 0, 0, 0, 0, 0))), "longer than the text"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ArgumentError, match=message):
        call()
