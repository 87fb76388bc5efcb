"""The story generator: unique derivations, exact probabilities, entropy floor, probes, corpus splits."""
import dataclasses
import hashlib
import math
import random
import re
from collections import Counter

import pytest
from nltk.tokenize import wordpunct_tokenize

from course_lib.data import (
    Categorical,
    Lexicon,
    SamplingChooser,
    StoryProgram,
    StoryShape,
    chance_accuracy,
    derivations,
    detokenize,
    entropy_floor,
    enumerate_stories,
    generate_stories,
    make_probes,
    predicted_units,
    prefix_logprob,
    probe_answers,
    story_corpus,
    story_logprob,
    word_tokenize,
)
from course_lib.data.lexicon import TEMPLATE_WORDS
from course_lib.data.stories import default_program

TINY = StoryProgram(Lexicon.tiny(), StoryShape(max_facts=1, max_fillers=0))
# The tiny lexicon with a single answer per fact, to afford more sentences in a brute-force search.
MICRO_LEXICON = dataclasses.replace(Lexicon.tiny(), colours=("orange",), landmarks=("lake",), pet_names=("Coco",))

# Probabilities of the first decisions, from the documented weights (not from the code's output):
# opening "Once upon a time" 3 of (3, 2, 2); no adjective 1/2; "girl" first of the Zipf-weighted
# roles (girl, boy, artist) = 1 / (1 + 1/2 + 1/3); "Mia" the only female name.
P_ONCE_A_GIRL_NAMED_MIA = 3 / 7 * 1 / 2 * 6 / 11
ONCE_A_GIRL_NAMED_MIA = (0, 0, 0, 0)


def sample_with_decisions(program, seed, n):
    """(text, logprob, decisions) of ``n`` stories drawn by the sampler."""
    rng = random.Random(seed)
    drawn = []
    for _ in range(n):
        chooser = SamplingChooser(rng, record=True)
        out = []
        program.tell(chooser.choose, out)
        drawn.append((detokenize(out), chooser.logprob, tuple(chooser.decisions)))
    return drawn


# -- one derivation per text, exact probabilities -------------------------------------------------


@pytest.fixture(scope="module")
def tiny_derivations():
    return list(enumerate_stories(TINY))


def test_brute_force_every_text_has_one_derivation_and_probabilities_sum_to_one(tiny_derivations):
    texts = [d.text for d in tiny_derivations]
    assert len(texts) > 5000
    assert len(set(texts)) == len(texts)
    assert math.fsum(math.exp(d.logprob) for d in tiny_derivations) == pytest.approx(1.0, abs=1e-9)


def test_brute_force_reaches_every_template_of_the_short_shape(tiny_derivations):
    text = "\n".join(d.text for d in tiny_derivations)
    for phrase in ("Once upon a time", "There was an artist", "Tom was a kind boy", "had an orange ball",
                   "lived in a cosy hut near the hill", "had a cat named Rocky", "What did Mia call the cat?",
                   "Where was the home of Tom? It was near the lake.", "The end.", "He smiled.",
                   "It was a good day.", "She would never forget that day."):
        assert phrase in text, phrase


def test_sampler_logprob_equals_the_enumerated_one(tiny_derivations):
    by_text = {d.text: d for d in tiny_derivations}
    for text, logprob, decisions in sample_with_decisions(TINY, seed=3, n=300):
        assert by_text[text].decisions == decisions
        assert logprob == pytest.approx(by_text[text].logprob, rel=1e-12, abs=1e-12)


def test_brute_force_with_three_facts_in_every_order():
    program = StoryProgram(MICRO_LEXICON, StoryShape(max_facts=3, max_fillers=0, endings=False))
    found = list(enumerate_stories(program, prefix=ONCE_A_GIRL_NAMED_MIA))
    texts = [d.text for d in found]
    assert len(set(texts)) == len(texts)
    assert all(text.startswith("Once upon a time, there was a girl named Mia.") for text in texts)
    # The subtree holds exactly the probability of its first decisions.
    assert math.fsum(math.exp(d.logprob) for d in found) == pytest.approx(P_ONCE_A_GIRL_NAMED_MIA, rel=1e-9)
    three_facts = [t for t in texts if t.count("?") == 3]
    question = re.compile(r"(What colour|What was the colour|Where|What was the name|What did)")
    orders = {tuple(question.findall(text)) for text in three_facts}
    assert len(orders) >= 6 * 4  # 3! question orders, and several wordings


def test_every_filler_keeps_the_text_uniquely_parsable():
    # All one-filler stories below a fixed opening and fact, each parsed back against the whole program.
    program = StoryProgram(MICRO_LEXICON, StoryShape(max_facts=1, max_fillers=1, endings=False))
    prefix = (*ONCE_A_GIRL_NAMED_MIA, 0, 0, 0, 0, 0)  # one fact, about a colour, "She", orange, ball
    found = list(enumerate_stories(program, prefix=prefix))
    p_prefix = P_ONCE_A_GIRL_NAMED_MIA * (3 / 7) * (2 / 3)  # colour fact 3 of (3, 2, 2); pronoun 2 of (2, 1)
    assert math.fsum(math.exp(d.logprob) for d in found) == pytest.approx(p_prefix, rel=1e-9)
    assert len({d.text for d in found}) == len(found) > 1000
    for derivation in found[::2]:
        parsed = derivations(derivation.text, program)
        assert [p.decisions for p in parsed] == [derivation.decisions]


def test_full_lexicon_stories_parse_back_to_their_one_derivation():
    for text, logprob, decisions in sample_with_decisions(default_program(), seed=7, n=12):
        parsed = derivations(text)
        assert len(parsed) == 1
        assert parsed[0].decisions == decisions
        assert parsed[0].logprob == pytest.approx(logprob, rel=1e-12)


def test_story_logprob_recomputes_the_generators_figure_from_text_alone():
    for story in generate_stories(5, seed=21):
        assert story_logprob(story.text) == pytest.approx(story.logprob, rel=1e-12)


def test_the_documented_example_is_a_story_of_the_generator():
    import course_lib.data.stories as stories

    example = stories.__doc__.split("A story reads like::")[1].split("\n\n")[1]
    example = " ".join(example.split())
    assert example.startswith("Once upon a time") and example.endswith("The end.")
    assert len(derivations(example)) == 1


def test_impossible_texts_have_probability_zero():
    assert story_logprob("Mia had a red ball.") == -math.inf
    assert derivations("The end.") == []
    # Changing a remembered answer makes the story impossible: answers are certain given the story.
    story = next(s for s in generate_stories(50, seed=4) if re.search(r"It was (\w+)\.", s.text))
    answer = re.search(r"It was (\w+)\.", story.text)
    wrong = "purple" if answer.group(1) != "purple" else "green"
    altered = story.text[: answer.start(1)] + wrong + story.text[answer.end(1) :]
    assert story_logprob(story.text) > -math.inf
    assert story_logprob(altered) == -math.inf


def test_prefix_logprob_equals_brute_force_sum_over_stories(tiny_derivations):
    for prefix in ("Once upon a time", "Tom was a kind", "There was an artist named Mia . She had",
                   "Mia was a girl . Mia had an orange ball . What"):
        target = word_tokenize(prefix)
        starting = [d for d in tiny_derivations if word_tokenize(d.text)[: len(target)] == target]
        mass = math.fsum(math.exp(d.logprob) for d in starting)
        assert math.exp(prefix_logprob(prefix, TINY)) == pytest.approx(mass, rel=1e-9)
    assert prefix_logprob("", TINY) == 0.0
    assert prefix_logprob("Mia Mia", TINY) == -math.inf


def test_every_word_is_from_the_lexicon_or_the_templates():
    # Makes Lexicon.check()'s disjointness meaningful: no word comes from anywhere else.
    lexicon_words = Lexicon().vocabulary()
    for story in generate_stories(300, seed=5):
        for token in word_tokenize(story.text):
            assert token in lexicon_words or token in TEMPLATE_WORDS, token


def test_lexicon_check_rejects_ambiguous_word_lists():
    Lexicon().check()
    Lexicon.tiny().check()
    with pytest.raises(ValueError, match="both"):
        dataclasses.replace(Lexicon(), colours=("red", "ball")).check()
    with pytest.raises(ValueError, match="fixed word"):
        dataclasses.replace(Lexicon(), toys=("ball", "end")).check()
    with pytest.raises(ValueError, match="single word"):
        dataclasses.replace(Lexicon(), places=("park", "ice rink")).check()
    with pytest.raises(ValueError, match="empty"):
        dataclasses.replace(Lexicon(), colours=()).check()
    with pytest.raises(ValueError, match="repeats"):
        dataclasses.replace(Lexicon(), colours=("red", "red")).check()


# -- the corpus -------------------------------------------------------------------------------------

# sha256 of the stories, log-probabilities and probes below, computed with the generator as it was
# when the corpus was first published: any change to what a seed gives shows here.
CORPUS_DIGEST = "67e349bed20dcc1986581494f8a6645f4f7c0769a444f7a88a7851a6c00a8596"


def test_every_seed_gives_the_same_stories_log_probabilities_and_probes_as_published():
    digest = hashlib.sha256()
    for story in generate_stories(300, seed=0):
        digest.update(f"{story.text}\t{story.logprob!r}\n".encode())
    corpus = story_corpus(40, 10, 10, seed=3)
    for split in ("train", "validation", "test"):
        for story in corpus.split(split):
            digest.update(f"{split}\t{story.text}\t{story.logprob!r}\n".encode())
    for probe in make_probes(5, distances=(16, 64), seed=1):
        digest.update(f"{probe.prompt}\t{probe.answer}\t{probe.distance}\t{probe.kind}\n".encode())
    assert digest.hexdigest() == CORPUS_DIGEST


def test_same_seed_same_stories_different_seed_different_stories():
    assert generate_stories(20, seed=1) == generate_stories(20, seed=1)
    assert generate_stories(20, seed=1) != generate_stories(20, seed=2)
    assert generate_stories(50, seed=1)[:20] == generate_stories(20, seed=1)
    assert generate_stories(0, seed=1) == []


def test_splits_are_independent_of_each_others_sizes():
    small = story_corpus(10, 5, 5, seed=3)
    large = story_corpus(30, 5, 8, seed=3)
    assert large.validation == small.validation
    assert large.train[:10] == small.train
    assert large.test[:5] == small.test
    assert small.train[:5] != small.validation  # different streams
    assert story_corpus(10, 5, 5, seed=4).train != small.train


def test_corpus_text_and_tokens():
    corpus = story_corpus(6, 2, 2, seed=0)
    assert corpus.text("train").split("\n") == [story.text for story in corpus.train]
    assert corpus.tokens("test") == [word_tokenize(story.text) for story in corpus.test]
    assert all("\n" not in story.text and "  " not in story.text for story in corpus.train)


def test_entropy_floor_equals_a_direct_recomputation():
    stories = generate_stories(60, seed=8)
    # Independent unit counts: NLTK's tokenizer, and characters plus one end per story.
    tokens = sum(len(wordpunct_tokenize(story.text)) + 1 for story in stories)
    chars = len("\n".join(story.text for story in stories)) + 1
    nats = -sum(story.logprob for story in stories)
    floor = entropy_floor(stories, unit="token")
    assert floor.units == tokens
    assert floor.nats == pytest.approx(nats / tokens, rel=1e-12)
    assert floor.bits == pytest.approx(nats / tokens / math.log(2), rel=1e-12)
    assert floor.perplexity == pytest.approx(math.exp(nats / tokens), rel=1e-12)
    assert entropy_floor(stories, unit="char").nats == pytest.approx(nats / chars, rel=1e-12)
    assert predicted_units(stories[0]) == len(wordpunct_tokenize(stories[0].text)) + 1


def test_the_corpus_is_rich_and_zipfian():
    corpus = story_corpus(1500, 0, 0, seed=0)
    counts = Counter(token for tokens in corpus.tokens("train") for token in tokens)
    assert len(counts) >= 300
    names = [counts[name] for name in Lexicon().female_names]
    assert names[0] > 3 * names[9] > 0  # Zipf: rank 1 well above rank 10
    floor = corpus.entropy_floor("train")
    assert 0.5 < floor.nats < 3.0


def _ngram_cross_entropy(train, held_out, n, k=0.01):
    """Add-k n-gram cross-entropy (nats per token) and the share of held-out n-grams never seen."""
    counts, contexts = Counter(), Counter()
    vocabulary = {token for tokens in train for token in tokens} | {"</s>"}
    pad = lambda tokens: ["<s>"] * (n - 1) + tokens + ["</s>"]  # noqa: E731
    for tokens in map(pad, train):
        for i in range(n - 1, len(tokens)):
            counts[tuple(tokens[i - n + 1 : i + 1])] += 1
            contexts[tuple(tokens[i - n + 1 : i])] += 1
    total, unseen, nats = 0, 0, 0.0
    for tokens in map(pad, held_out):
        for i in range(n - 1, len(tokens)):
            gram = tuple(tokens[i - n + 1 : i + 1])
            total += 1
            unseen += gram not in counts
            nats -= math.log((counts[gram] + k) / (contexts[gram[:-1]] + k * len(vocabulary)))
    return nats / total, unseen / total


def test_ngrams_show_sparsity_and_overfitting():
    corpus = story_corpus(600, 100, 0, seed=0)
    train, held_out = corpus.tokens("train"), corpus.tokens("validation")
    results = {n: _ngram_cross_entropy(train, held_out, n) for n in range(1, 6)}
    unseen = [results[n][1] for n in range(1, 6)]
    assert unseen == sorted(unseen) and unseen[4] > 0.2 and unseen[1] < 0.05
    assert results[3][0] < results[2][0]  # more context helps ...
    assert results[5][0] > results[3][0]  # ... until the counts run out: the 5-gram overfits
    # On its own training text (almost unsmoothed) the 5-gram fits better than the 3-gram.
    assert _ngram_cross_entropy(train, train, 5, k=1e-9)[0] < _ngram_cross_entropy(train, train, 3, k=1e-9)[0]


def test_describe_tabulates_each_split():
    corpus = story_corpus(20, 5, 0, seed=0)
    table = corpus.describe()
    assert all(split in table for split in ("train", "validation", "test"))
    summary = corpus.summary("train")
    assert summary.tokens == sum(len(tokens) for tokens in corpus.tokens("train"))
    assert summary.chars == len(corpus.text("train"))
    assert corpus.summary("test").floor_token is None


# -- probes ------------------------------------------------------------------------------------------

FACT_PATTERNS = {
    "colour": r"had an? (?P<answer>\w+) (?P<detail>\w+)\.",
    "home": r"lived in an? (?:\w+ )?\w+ near the (?P<answer>\w+)\.",
    "pet": r"had an? (?P<detail>\w+) named (?P<answer>\w+)\.",
}
QUESTION_PATTERNS = {
    "colour": r"(?:What colour was|What was the colour of) the (?P<detail>\w+) that \w+ had\? (?:It|The \w+) was$",
    "home": r"Where (?:did \w+ live|was the home of \w+)\? (?:She lived|He lived|It was) near the$",
    "pet": r"(?:What was the name of the (?P<detail>\w+) that \w+ had|What did \w+ call the (?P<detail2>\w+))\? "
    r"(?:Its name was|The \w+ was called)$",
}


@pytest.fixture(scope="module")
def probes():
    return make_probes(40, distances=(16, 32, 64), seed=0)


def test_probe_answer_is_the_fact_stated_earlier_and_the_distance_is_exact(probes):
    assert len(probes) == 3 * 40
    for probe in probes:
        question = re.search(QUESTION_PATTERNS[probe.kind], probe.prompt)
        assert question, probe.prompt
        fact = re.search(FACT_PATTERNS[probe.kind], probe.prompt[: question.start()])
        assert fact and fact.group("answer") == probe.answer, probe.prompt
        if probe.kind != "home":
            assert (question.group("detail") or question.group("detail2")) == fact.group("detail")
        # Distance counted independently: NLTK tokens after the fact's answer word.
        assert probe.distance == len(wordpunct_tokenize(probe.prompt[fact.end("answer") :]))
        assert probe.answer in probe_answers(probe.kind)


def test_probe_distances_meet_their_targets(probes):
    for index, target in enumerate((16, 32, 64)):
        distances = [probe.distance for probe in probes[40 * index : 40 * (index + 1)]]
        assert min(distances) >= target
        if target >= 32:  # far enough that fillers are needed: overshoot below one filler sentence
            assert max(distances) < target + 16


def test_probes_come_from_the_corpus_generator_and_their_answer_is_certain(probes):
    for probe in probes[:6]:  # distance 16: within the corpus's own number of fillers
        before = prefix_logprob(probe.prompt)
        assert before > -math.inf
        assert prefix_logprob(f"{probe.prompt} {probe.answer}") == pytest.approx(before, abs=1e-9)


def test_probe_answers_are_uniform_so_chance_is_known():
    colour_probes = make_probes(480, distances=(20,), seed=1, kinds=("colour",))
    assert {probe.kind for probe in colour_probes} == {"colour"}
    counts = Counter(probe.answer for probe in colour_probes)
    colours = probe_answers("colour")
    assert set(counts) == set(colours)
    expected = len(colour_probes) / len(colours)
    chi_square = sum((counts[c] - expected) ** 2 / expected for c in colours)
    assert chi_square < 31.26  # the 0.1% critical value with 11 degrees of freedom
    assert chance_accuracy("colour") == 1 / len(colours) == 1 / 12
    assert chance_accuracy("pet") == 1 / len(Lexicon().pet_names)


def test_probes_are_deterministic_and_independent_per_distance():
    assert make_probes(5, (16, 32), seed=2) == make_probes(5, (16, 32), seed=2)
    assert make_probes(5, (32,), seed=2) == make_probes(5, (16, 32), seed=2)[5:]
    assert make_probes(5, (32,), seed=2) != make_probes(5, (32,), seed=3)
    kinds = Counter(probe.kind for probe in make_probes(300, (16,), seed=2))
    assert set(kinds) == {"colour", "home", "pet"}


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: generate_stories(-1), "n_stories"),
        (lambda: generate_stories(2.5), "n_stories"),
        (lambda: generate_stories(3, seed="a"), "seed"),
        (lambda: generate_stories(3, seed=-1), "seed"),
        (lambda: story_corpus(train_stories=-5), "train_stories"),
        (lambda: story_corpus(seed=1.0), "seed"),
        (lambda: story_corpus(2, 1, 1).text("dev"), "split"),
        (lambda: entropy_floor(generate_stories(2), unit="word"), "unit"),
        (lambda: entropy_floor([]), "at least one"),
        (lambda: make_probes(3, distances=16), "distances"),
        (lambda: make_probes(3, kinds=("size",)), "kinds"),
        (lambda: make_probes(-3), "n"),
        (lambda: probe_answers("size"), "kind"),
        (lambda: StoryShape(max_facts=0), "max_facts"),
        (lambda: StoryShape(max_fillers=-1), "max_fillers"),
        (lambda: Categorical(["a", "b"], [1.0, 0.0]), "positive"),
        (lambda: Categorical([]), "at least one"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_non_text_input_to_the_parser():
    with pytest.raises(TypeError, match="str"):
        derivations(["Mia"])
