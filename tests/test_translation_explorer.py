"""Chapter 6's translation explorer: the steps are Seq2Seq.greedy's words and attention weights,
words the model does not know get a message naming them (never a traceback), and the static
figure draws the weights with the true alignment marked."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display: the figures must draw all the same

import numpy as np
import pytest
import torch

from course_lib import rnn, seq2seq
from course_lib.checks import ArgumentError
from course_lib.data.parallel import sentence_pairs
from course_lib.data.text import Vocabulary
from course_lib.data.translation import default_translation_program, translate
from course_lib.viz import COLUMN_WIDTH
from course_lib.widgets import (StepByStepTranslation, TranslationExplorer, TranslationStep, UnknownWordsError,
                                translation_explorer, translation_figure, translation_steps, true_translation)
from course_lib.widgets.translation import attention_html, translation_html, true_links, unknown_words

PROGRAM = default_translation_program()
SOURCE_VOCABULARY = Vocabulary(PROGRAM.source_words())
TARGET_VOCABULARY = Vocabulary(PROGRAM.target_words())
EOS_ID = TARGET_VOCABULARY.special_id("</s>")
PAIRS = sentence_pairs(4, min_len=5, max_len=14, seed=3)
SENTENCES = [pair.source_text for pair in PAIRS]  # as typed: "... the red hat."
TOKENS = {pair.source_text: list(pair.source) for pair in PAIRS}


def small_model(attention: str = "luong", score: str = "dot", eos_bias: float = 0.0, seed: int = 0) -> seq2seq.Seq2Seq:
    """An untrained model over the translation pair's full vocabularies; ``eos_bias`` moves EOS's logit."""
    torch.manual_seed(seed)
    encoder = seq2seq.Encoder(len(SOURCE_VOCABULARY), 8, rnn.RNN(8, 12))
    d_in = 8 + (12 if attention == "bahdanau" else 0)
    model = seq2seq.Seq2Seq(encoder, rnn.RNN(d_in, 12), len(TARGET_VOCABULARY), 8, attention=attention, score=score)
    with torch.no_grad():
        model.readout.bias[EOS_ID] += eos_bias
    return model


def greedy_of(model: seq2seq.Seq2Seq, sentence: str, max_length: int):
    ids = SOURCE_VOCABULARY.encode(TOKENS[sentence] + ["</s>"])
    (tokens,), weights = model.greedy(torch.tensor([ids]), torch.tensor([len(ids)]),
                                      TARGET_VOCABULARY.special_id("<s>"), EOS_ID, max_length)
    return TARGET_VOCABULARY.decode(tokens), weights[0].double().numpy()


# ------------------------------------------------------------------ the steps


@pytest.mark.parametrize("attention, score, eos_bias", [
    ("luong", "dot", 0.0), ("luong", "general", 2.5), ("bahdanau", "additive", 2.5), ("luong", "dot", 9.0)])
def test_the_steps_are_greedys_words_and_attention_weights(attention, score, eos_bias):
    model = small_model(attention, score, eos_bias)
    seen_finished = False
    for sentence in SENTENCES:
        translation = translation_steps(model, sentence, SOURCE_VOCABULARY, TARGET_VOCABULARY, max_length=12)
        words, weights = greedy_of(model, sentence, 12)
        assert translation.source == (*TOKENS[sentence], "</s>")
        assert translation.words == words
        np.testing.assert_array_equal(translation.weights, weights)  # the EOS step's row included
        assert len(translation.steps) == len(words) + translation.finished
        assert translation.finished == (len(words) < 12)  # 12 steps at most: fewer words, so EOS came
        np.testing.assert_allclose(translation.weights.sum(axis=1), 1.0, rtol=1e-6)
        seen_finished |= translation.finished
    if eos_bias == 9.0:  # EOS first: an empty translation of one step, where the model decided to stop
        assert seen_finished and translation.words == [] and [s.word for s in translation.steps] == ["</s>"]


def test_a_model_that_never_stops_runs_max_length_steps():
    translation = translation_steps(small_model(eos_bias=-50.0), SENTENCES[0], SOURCE_VOCABULARY,
                                    TARGET_VOCABULARY, max_length=7)
    assert len(translation.steps) == len(translation.words) == 7 and not translation.finished


def test_a_token_list_reads_like_its_text_and_eos_is_optional():
    model = small_model()
    as_text = translation_steps(model, SENTENCES[1], SOURCE_VOCABULARY, TARGET_VOCABULARY, max_length=5)
    as_tokens = translation_steps(model, TOKENS[SENTENCES[1]], SOURCE_VOCABULARY, TARGET_VOCABULARY, max_length=5)
    assert as_text == as_tokens
    without_eos = translation_steps(model, SENTENCES[1], SOURCE_VOCABULARY, TARGET_VOCABULARY, max_length=5,
                                    append_eos=False)
    assert without_eos.source == tuple(TOKENS[SENTENCES[1]]) and without_eos.weights.shape[1] == len(without_eos.source)


def test_unknown_words_are_named_once_each_in_order():
    with pytest.raises(UnknownWordsError) as raised:
        translation_steps(small_model(), "The dragon ate the dragon and Bob sang .", SOURCE_VOCABULARY,
                          TARGET_VOCABULARY)
    assert raised.value.words == ("dragon", "ate", "Bob", "sang")
    message = str(raised.value)
    assert message.startswith("4 words are not in the model's source vocabulary: 'dragon', 'ate', 'Bob', 'sang'.")
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, TypeError)
    assert unknown_words(["Tom", "x", "Tom", "x", "y"], Vocabulary(["Tom"])) == ["x", "y"]
    many = UnknownWordsError([f"w{i}" for i in range(11)])
    assert "'w7' and 3 more" in str(many) and "'w8'" not in str(many)


@pytest.mark.parametrize("call, words", [
    (lambda m: translation_steps(m, "   ", SOURCE_VOCABULARY, TARGET_VOCABULARY), "empty"),
    (lambda m: translation_steps(m, 42, SOURCE_VOCABULARY, TARGET_VOCABULARY), "source must be"),
    (lambda m: translation_steps(m, SENTENCES[0], SOURCE_VOCABULARY, SOURCE_VOCABULARY), "target vocabulary has"),
    (lambda m: translation_steps(m, SENTENCES[0], SOURCE_VOCABULARY, TARGET_VOCABULARY, max_length=0), "max_length"),
    (lambda m: translation_steps("model", SENTENCES[0], SOURCE_VOCABULARY, TARGET_VOCABULARY), "Seq2Seq"),
])
def test_bad_input_gets_a_clear_message(call, words):
    with pytest.raises(ArgumentError, match=words):
        call(small_model())


def test_a_model_without_attention_is_refused_with_the_reason():
    torch.manual_seed(0)
    plain = seq2seq.Seq2Seq(seq2seq.Encoder(len(SOURCE_VOCABULARY), 8, rnn.RNN(8, 12)), rnn.RNN(8, 12),
                            len(TARGET_VOCABULARY), 8)
    with pytest.raises(ArgumentError, match="no attention"):
        translation_steps(plain, SENTENCES[0], SOURCE_VOCABULARY, TARGET_VOCABULARY)
    with pytest.raises(ArgumentError, match="with attention"):
        translation_explorer(plain, SOURCE_VOCABULARY, TARGET_VOCABULARY, SENTENCES)


def test_the_true_translation_is_the_programs_or_none():
    pair = true_translation(SENTENCES[2])
    assert pair == translate(SENTENCES[2])
    assert true_translation("Tom Tom Tom .") is None


# ------------------------------------------------------------------ HTML and figure


def perfect_translation(sentence: str) -> tuple[StepByStepTranslation, object]:
    """A made-up translation that writes the true words and attends to each word's first aligned
    source position (to the final '.' for words aligned to nothing)."""
    pair = translate(sentence)
    S = len(pair.source) + 1
    steps = []
    for word, aligned in zip((*pair.target, "</s>"), (*pair.alignment, ())):
        row = np.full(S, 0.1 / (S - 1))
        row[aligned[0] if aligned else S - 2] = 0.9
        steps.append(TranslationStep(word, tuple(row)))
    return StepByStepTranslation((*pair.source, "</s>"), tuple(steps)), pair


def test_the_attention_html_shades_each_source_word_by_its_weight():
    translation, pair = perfect_translation(SENTENCES[0])
    page = attention_html(translation, 0)
    assert page.count("<span title='α = ") == len(translation.source)
    assert "rgba(31,119,180,1.000)" in page and "&lt;/s&gt;" in page
    focus = pair.alignment[0][0] if pair.alignment[0] else len(pair.source) - 1
    assert f"looking most at <b>{pair.source[focus]}</b> (α = 0.90)" in page
    with pytest.raises(ValueError, match="step"):
        attention_html(translation, len(translation.steps))


def test_the_translation_html_shows_the_model_beside_the_true_translation():
    translation, pair = perfect_translation(SENTENCES[0])
    page = translation_html(translation, 1, pair)
    assert pair.target[1] in page and f"(+{len(translation.steps) - 2} more)" in page
    assert "is the true one" in page
    wrong = StepByStepTranslation(translation.source, (TranslationStep("e", translation.steps[0].weights),))
    assert "differs from the true one" in translation_html(wrong, 0, pair)
    assert "cannot write this sentence" in translation_html(wrong, 0, None)


def test_the_figure_draws_the_weights_with_the_true_links_outlined():
    translation, pair = perfect_translation(SENTENCES[3])
    figure = translation_figure(translation, pair)
    figure.canvas.draw()
    axes = figure.axes[0]
    np.testing.assert_allclose(axes.images[0].get_array(), translation.weights)
    assert [label.get_text() for label in axes.get_xticklabels()] == list(translation.source)
    assert [label.get_text() for label in axes.get_yticklabels()] == [step.word for step in translation.steps]
    expected = {(i, t) for t, aligned in enumerate(pair.alignment) for i in aligned}
    assert {tuple(point) for point in axes.collections[0].get_offsets().tolist()} == expected
    assert set(true_links(translation, pair)) == {(t, i) for i, t in expected}
    assert figure.get_figwidth() <= COLUMN_WIDTH and "true alignment" in axes.get_xlabel()


def test_links_are_drawn_only_where_the_model_wrote_the_true_word():
    translation, pair = perfect_translation(SENTENCES[3])
    changed = StepByStepTranslation(translation.source, (TranslationStep("zzz", translation.steps[0].weights),
                                                         *translation.steps[1:]))
    assert all(t != 0 for t, _ in true_links(changed, pair))
    untrained = translation_steps(small_model(), SENTENCES[3], SOURCE_VOCABULARY, TARGET_VOCABULARY, max_length=6)
    figure = translation_figure(untrained)  # no reference: no links, and it still draws
    figure.canvas.draw()
    assert len(figure.axes[0].collections) == 0 and figure.axes[0].get_xlabel() == "source"
    with pytest.raises(ArgumentError, match="StepByStepTranslation"):
        translation_figure(untrained.weights)


# ------------------------------------------------------------------ the explorer


def test_the_explorer_translates_examples_and_moves_through_the_steps():
    model = small_model(eos_bias=2.5)
    explorer = translation_explorer(model, SOURCE_VOCABULARY, TARGET_VOCABULARY, SENTENCES, max_length=10)
    assert isinstance(explorer, TranslationExplorer)
    assert explorer.text.value == SENTENCES[0] and explorer.translation.words == greedy_of(model, SENTENCES[0], 10)[0]
    assert explorer.step.max == len(explorer.translation.steps) - 1
    assert explorer.reference == translate(SENTENCES[0]) and "true" in explorer.translation_view.value
    explorer.example.value = SENTENCES[2]
    assert explorer.text.value == SENTENCES[2] and explorer.translation.source[:-1] == tuple(TOKENS[SENTENCES[2]])
    first = explorer.attention_view.value
    explorer.step.value = explorer.step.max
    assert explorer.attention_view.value != first or explorer.step.max == 0
    assert f"step {explorer.step.max + 1} writes" in explorer.attention_view.value


def test_the_explorer_answers_unknown_words_with_a_message_and_recovers():
    explorer = translation_explorer(small_model(), SOURCE_VOCABULARY, TARGET_VOCABULARY, SENTENCES, max_length=8)
    explorer.step.value = explorer.step.max
    explorer.text.value = "The zebra found Bob ."
    assert explorer.translation is None and explorer.reference is None
    assert "not in the model&#x27;s source vocabulary: &#x27;zebra&#x27;, &#x27;Bob&#x27;" in explorer.message.value
    assert explorer.attention_view.value == explorer.translation_view.value == "" and explorer.step.max == 0
    explorer.text.value = ""
    assert "empty" in explorer.message.value
    explorer.text.value = SENTENCES[1]
    assert explorer.translation is not None and "vocabulary" not in explorer.message.value
    assert explorer.step.value == 0 and explorer.attention_view.value.startswith("<div")
