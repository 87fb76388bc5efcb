"""course_lib.widgets: the n-gram explorer and the pure functions behind it, without a browser.

The numbers are checked against counts done by hand (collections.Counter) and, on the story
corpus, against the model's own ``prob`` called word by word (brute force over the vocabulary).
The explorer is driven by setting its controls and clicking its button from Python.
"""
from __future__ import annotations

import html
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.data import detokenize, generate_stories, word_tokenize
from course_lib.ngram import NGramLM
from course_lib.widgets import (NextTokenTable, context_as_seen, ngram_explorer, next_token_table,
                                sample_text)

TOY = [sentence.split() for sentence in (
    "Mia had a red ball", "Tom had a red kite", "Mia had a cat", "the cat had a ball")]


@pytest.fixture(scope="module")
def stories() -> list[list[str]]:
    return [word_tokenize(story.text) for story in generate_stories(60, seed=3)]


@pytest.fixture(scope="module")
def story_models(stories) -> dict[tuple[str, int], NGramLM]:
    models = {("Kneser-Ney", n): NGramLM(n, "kneser_ney").fit(stories) for n in (1, 2, 3)}
    models.update({("MLE", n): NGramLM(n, "mle").fit(stories) for n in (2, 3, 4)})
    return models


# ------------------------------------------------------------------ the pure functions

def test_table_of_an_mle_bigram_is_the_counts_ratio():
    model = NGramLM(2, "mle").fit(TOY)
    bigrams = Counter((h, w) for s in TOY for h, w in zip(s, s[1:] + ["</s>"]))
    after_a = {w: Fraction(c, sum(c2 for (h2, _), c2 in bigrams.items() if h2 == "a"))
               for (h, w), c in bigrams.items() if h == "a"}
    table = next_token_table(model, "Tom had a", k=10)
    assert table.context == ("a",)
    assert dict(table.rows) == pytest.approx({w: float(p) for w, p in after_a.items()}, abs=1e-15)
    assert table.tokens == ["red", "ball", "cat"]  # 2/4, then the ties 1/4 in alphabetical order
    assert table.probabilities == pytest.approx([0.5, 0.25, 0.25])


def test_table_keeps_the_k_most_probable_in_order(story_models):
    model = story_models[("Kneser-Ney", 3)]
    table = next_token_table(model, "She had a", k=5)
    brute_force = sorted(((model.prob(w, ["had", "a"]), w) for w in model.vocabulary), key=lambda pw: (-pw[0], pw[1]))
    assert table.rows == tuple((w, pytest.approx(p, rel=1e-12)) for p, w in brute_force[:5])
    assert len(next_token_table(model, "She had a", k=10_000).rows) == model.vocab_size


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_table_matches_the_model_word_by_word_for_any_context(story_models, data):
    label, n = data.draw(st.sampled_from(sorted(k for k in story_models if k[0] == "Kneser-Ney")))
    model = story_models[(label, n)]
    words = st.sampled_from(list(model.vocabulary[3:]) + ["zebra", "Qwerty"])
    context = data.draw(st.lists(words, max_size=4))
    k = data.draw(st.integers(1, 12))
    table = next_token_table(model, context, k=k)
    assert len(table.rows) == k
    assert table.probabilities == sorted(table.probabilities, reverse=True)
    for token, probability in table.rows:
        assert probability == pytest.approx(model.prob(token, context), rel=1e-12)
    left_out = set(model.vocabulary) - set(table.tokens)
    assert all(model.prob(w, context) <= table.probabilities[-1] + 1e-15 for w in left_out)


def test_context_as_seen_pads_truncates_and_marks_unknown_words(story_models):
    trigram = story_models[("Kneser-Ney", 3)]
    assert context_as_seen(trigram, "") == ("<s>", "<s>")
    assert context_as_seen(trigram, "She") == ("<s>", "She")
    assert context_as_seen(trigram, "Once upon a zebra") == ("a", "<unk>")
    assert context_as_seen(trigram, ["had", "a"]) == ("had", "a")
    assert context_as_seen(story_models[("Kneser-Ney", 1)], "She had a") == ()
    table = next_token_table(trigram, "She saw a zebra")
    assert table.context == ("a", "<unk>")
    assert table.rows == next_token_table(trigram, ["a", "<unk>"]).rows


def test_empty_context_is_the_start_of_a_story(story_models):
    model = story_models[("Kneser-Ney", 2)]
    table = next_token_table(model, "")
    assert table.context == ("<s>",)
    assert dict(table.rows) == pytest.approx({w: model.prob(w, []) for w in table.tokens})


def test_an_mle_model_after_an_unseen_context_raises_a_clear_error(story_models):
    with pytest.raises(ValueError, match="never occurs in training"):
        next_token_table(story_models[("MLE", 2)], "zebra")


def test_sample_text_is_seeded_and_is_the_model_s_generation(story_models):
    model = story_models[("Kneser-Ney", 3)]
    first = sample_text(model, "She had a", seed=7, max_tokens=30)
    assert first == sample_text(model, "She had a", seed=7, max_tokens=30)
    generated = model.generate(max_tokens=30, context=["She", "had", "a"], seed=7)
    assert first.removesuffix(" …") == detokenize(generated)
    assert first.endswith(" …") == (len(generated) == 30)
    assert len({sample_text(model, "She had a", seed=s) for s in range(5)}) > 1
    assert len(word_tokenize(sample_text(model, "", seed=0, max_tokens=2).removesuffix(" …"))) <= 2


@pytest.mark.parametrize("call, error, words", [
    (lambda m: next_token_table(m, "a", k=0), ValueError, "k must be >= 1"),
    (lambda m: next_token_table(m, "a", k=True), TypeError, "k must be an integer"),
    (lambda m: next_token_table(m, 42), TypeError, "context must be a str or a list"),
    (lambda m: next_token_table("not a model", "a"), TypeError, "fitted NGramLM"),
    (lambda m: next_token_table(NGramLM(2), "a"), ValueError, "not fitted"),
    (lambda m: context_as_seen(m, ["a", 3]), TypeError, "context must be"),
])
def test_bad_input_gets_a_clear_error(story_models, call, error, words):
    with pytest.raises(error, match=words):
        call(story_models[("Kneser-Ney", 2)])


# ------------------------------------------------------------------ the explorer

def test_explorer_table_follows_n_and_context(story_models):
    explorer = ngram_explorer(story_models, context="She had a", top_k=5)
    assert (explorer.smoothing.value, explorer.order.value) == ("Kneser-Ney", 1)
    assert list(explorer.order.options) == [1, 2, 3]
    unigram = explorer.table
    assert unigram.context == () and len(unigram.rows) == 5
    explorer.order.value = 3
    trigram = explorer.table
    assert trigram.context == ("had", "a") and trigram.rows != unigram.rows
    assert trigram == next_token_table(story_models[("Kneser-Ney", 3)], "She had a", k=5)
    explorer.context.value = "It was"
    assert explorer.table.context == ("It", "was") and explorer.table.rows != trigram.rows
    explorer.top_k.value = 8
    assert len(explorer.table.rows) == 8
    for token in explorer.table.tokens:
        assert f">{token}<" in explorer.table_view.value.replace("&lt;", "<").replace("&gt;", ">")


def test_explorer_shows_an_unknown_word_as_unk_and_accepts_an_empty_context(story_models):
    explorer = ngram_explorer(story_models, context="She saw a zebra")
    explorer.order.value = 2
    assert explorer.table.context == ("<unk>",)
    assert "P(w | &lt;unk&gt;)" in explorer.table_view.value
    explorer.context.value = ""
    assert explorer.table.context == ("<s>",) and explorer.message == ""
    assert explorer.table.rows == next_token_table(story_models[("Kneser-Ney", 2)], "").rows


def test_explorer_starts_on_the_model_asked_for(story_models):
    explorer = ngram_explorer(story_models, smoothing="MLE", n=4, context="Once upon a")
    assert explorer.model is story_models[("MLE", 4)] and list(explorer.order.options) == [2, 3, 4]
    assert explorer.table == next_token_table(story_models[("MLE", 4)], "Once upon a")
    assert ngram_explorer(story_models, smoothing="MLE").order.value == 2
    with pytest.raises(ValueError, match="no model has the smoothing label 'KN'"):
        ngram_explorer(story_models, smoothing="KN")
    with pytest.raises(ValueError, match=r"its orders are \[2, 3, 4\]"):
        ngram_explorer(story_models, smoothing="MLE", n=1)


def test_explorer_switches_smoothing_and_keeps_n_when_it_can(story_models):
    explorer = ngram_explorer(story_models, context="She had a")
    explorer.order.value = 3
    explorer.smoothing.value = "MLE"
    assert list(explorer.order.options) == [2, 3, 4] and explorer.order.value == 3
    assert explorer.model is story_models[("MLE", 3)]
    assert explorer.table == next_token_table(story_models[("MLE", 3)], "She had a")
    explorer.order.value = 4
    explorer.smoothing.value = "Kneser-Ney"
    assert explorer.order.value == 3  # n = 4 is not there: the largest available


def test_explorer_explains_an_mle_dead_end_instead_of_failing(story_models):
    explorer = ngram_explorer(story_models, context="a zebra")
    explorer.smoothing.value = "MLE"
    assert explorer.table is None
    assert "never occurs in training" in explorer.message and "never occurs" in explorer.table_view.value
    explorer.sample_button.click()
    assert "never occurs" in explorer.sample_view.value
    explorer.context.value = "She had a"
    assert explorer.table is not None and explorer.message == ""


def test_sample_button_shows_seeded_text_and_moves_the_seed_on(story_models):
    explorer = ngram_explorer(story_models, context="She had a", seed=5, max_tokens=20)
    explorer.order.value = 3
    assert explorer.sample_view.value == ""
    explorer.sample_button.click()
    expected = sample_text(story_models[("Kneser-Ney", 3)], "She had a", seed=5, max_tokens=20)
    assert "seed 5" in explorer.sample_view.value
    assert html.escape(expected) in explorer.sample_view.value
    assert explorer.seed.value == 6
    explorer.sample_button.click()
    assert "seed 6" in explorer.sample_view.value


@pytest.mark.parametrize("models, kwargs, error, words", [
    ({}, {}, ValueError, "non-empty"),
    ({"kn": None}, {}, ValueError, "pairs"),
    ({("kn", True): None}, {}, ValueError, "pairs"),
    ({("kn", 2): "model"}, {}, TypeError, "fitted NGramLM"),
    ({("kn", 2): NGramLM(2, "kneser_ney")}, {}, ValueError, "not fitted"),
    ({("kn", 3): NGramLM(2, "kneser_ney").fit(TOY)}, {}, ValueError, "has order 2, not 3"),
    ({("kn", 2): NGramLM(2, "kneser_ney").fit(TOY)}, {"top_k": 0}, ValueError, "top_k"),
    ({("kn", 2): NGramLM(2, "kneser_ney").fit(TOY)}, {"context": ["a"]}, TypeError, "context"),
])
def test_explorer_rejects_bad_models_and_settings(models, kwargs, error, words):
    with pytest.raises(error, match=words):
        ngram_explorer(models, **kwargs)


def test_table_type_exposes_tokens_and_probabilities():
    table = NextTokenTable(("a",), (("red", 0.5), ("cat", 0.25)))
    assert table.tokens == ["red", "cat"] and table.probabilities == [0.5, 0.25]
