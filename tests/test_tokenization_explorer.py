"""Chapter 2's explorer and figure: cutting text with the first k merges of a BPE tokenizer.

The segmentation with every merge is checked against the tokenizer's own ``tokens()``; with k
merges, against a tokenizer *trained* with k merges (training learns merges one after another, so
the first k are what k merges of training learn); with none, against the raw bytes or characters.
"""
from __future__ import annotations

import html

import matplotlib

matplotlib.use("Agg")

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from course_lib.bpe import ENDOFTEXT, ByteBPE, CharBPE, NotTrainedError
from course_lib.bpe.gpt2_files import bytes_to_symbols
from course_lib.data.stories import generate_stories
from course_lib.viz import plot_token_segmentations
from course_lib.widgets import (MergeExplorer, Segmentation, merge_explorer, segment_with_merges, segmentation_html,
                                segmentation_summary)

SAMPLE = "The committee met on Tuesday, 14 March; naïve café 🦜\n\n  tabs\there<|endoftext|>Once upon a time"


@pytest.fixture(scope="module")
def documents() -> list[str]:
    return [story.text for story in generate_stories(80, seed=5)]


@pytest.fixture(scope="module")
def byte_tok(documents) -> ByteBPE:
    return ByteBPE(special_tokens=[ENDOFTEXT]).train(documents, 500)


@pytest.fixture(scope="module")
def char_tok(documents) -> CharBPE:
    return CharBPE().train(documents, 300)


# ------------------------------------------------------------------ segment_with_merges

@pytest.mark.parametrize("text", [SAMPLE, "", "   ", "<|endoftext|><|endoftext|>", "x", "Mia had a red ball."])
def test_all_merges_give_the_tokenizers_own_tokens(byte_tok, char_tok, text):
    assert list(segment_with_merges(byte_tok, text).tokens) == byte_tok.tokens(text)
    assert list(segment_with_merges(char_tok, text).tokens) == char_tok.tokens(text)


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=40))
def test_all_merges_give_the_tokenizers_own_tokens_on_any_text(byte_tok, char_tok, text):
    assert list(segment_with_merges(byte_tok, text).tokens) == byte_tok.tokens(text)
    assert list(segment_with_merges(char_tok, text).tokens) == char_tok.tokens(text)


@pytest.mark.parametrize("num_merges", [1, 7, 60, 180])
def test_the_first_k_merges_cut_like_a_tokenizer_trained_with_k_merges(documents, byte_tok, char_tok, num_merges):
    small_bytes = ByteBPE(special_tokens=[ENDOFTEXT]).train(documents, 256 + num_merges + 1)
    assert small_bytes.merges == byte_tok.merges[:num_merges]
    got = segment_with_merges(byte_tok, SAMPLE, num_merges)
    assert list(got.tokens) == small_bytes.tokens(SAMPLE)
    assert got.vocab_size == small_bytes.vocab_size
    base = char_tok.vocab_size - len(char_tok.merges)
    small_chars = CharBPE().train(documents, base + num_merges)
    got = segment_with_merges(char_tok, SAMPLE, num_merges)
    assert list(got.tokens) == small_chars.tokens(SAMPLE)
    assert got.vocab_size == small_chars.vocab_size


def test_no_merges_leave_bytes_and_characters(byte_tok, char_tok):
    text = "naïve café, 14 times"
    got = segment_with_merges(byte_tok, text, 0)
    assert len(got.tokens) == len(text.encode("utf-8")) and got.vocab_size == 257 and got.last_merge is None
    words = text.split()
    chars = segment_with_merges(char_tok, text, 0).tokens
    assert len(chars) == sum(len(word) + 1 for word in words)
    assert chars.count("</w>") == len(words) and "[UNK]" in chars  # the stories never use digits


def test_more_merges_never_give_more_tokens(byte_tok):
    counts = [len(segment_with_merges(byte_tok, SAMPLE, k).tokens) for k in range(0, len(byte_tok.merges) + 1, 5)]
    assert all(later <= earlier for earlier, later in zip(counts, counts[1:]))
    assert counts[-1] < counts[0]


def test_summary_names_the_latest_merge_and_the_rate(byte_tok):
    got = segment_with_merges(byte_tok, "the cat", 2)
    left, right = byte_tok.merges[1]
    assert got.last_merge == (bytes_to_symbols(left), bytes_to_symbols(right))
    summary = segmentation_summary(got)
    assert summary.startswith("2 merges, vocabulary of 259 tokens")
    assert f"{len(got.tokens)} tokens for 7 characters ({len(got.tokens) / 7:.3f} tokens per character)" in summary


def test_bad_input_gets_clear_errors(byte_tok):
    with pytest.raises(ValueError, match="num_merges must be an integer from 0 to"):
        segment_with_merges(byte_tok, "x", len(byte_tok.merges) + 1)
    with pytest.raises(ValueError, match="num_merges"):
        segment_with_merges(byte_tok, "x", -1)
    with pytest.raises(TypeError, match="text must be a str"):
        segment_with_merges(byte_tok, b"x")
    with pytest.raises(TypeError, match="trained ByteBPE or CharBPE"):
        segment_with_merges("tokenizer", "x")
    with pytest.raises(ValueError, match="lone surrogate"):
        segment_with_merges(byte_tok, "a\udc80b")
    with pytest.raises(NotTrainedError, match="train"):
        segment_with_merges(ByteBPE(), "x")


# ------------------------------------------------------------------ the explorer

def test_explorer_follows_its_slider_and_text(byte_tok):
    explorer = merge_explorer(byte_tok, text="the cat sat", num_merges=0)
    assert isinstance(explorer, MergeExplorer)
    assert explorer.merges.max == len(byte_tok.merges)
    assert len(explorer.segmentation.tokens) == len("the cat sat")
    explorer.merges.value = len(byte_tok.merges)
    assert list(explorer.segmentation.tokens) == byte_tok.tokens("the cat sat")
    assert html.escape(segmentation_summary(explorer.segmentation)) in explorer.summary_view.value
    explorer.text.value = "naïve <|endoftext|>"
    assert list(explorer.segmentation.tokens) == byte_tok.tokens("naïve <|endoftext|>")
    assert "&lt;|endoftext|&gt;" in explorer.tokens_view.value
    assert explorer.tokens_view.value.count("<span") == len(explorer.segmentation.tokens)


def test_explorer_reports_text_without_utf8_instead_of_raising(byte_tok):
    explorer = merge_explorer(byte_tok, text="ok")
    explorer.text.value = "bad \ud800 surrogate"
    assert explorer.segmentation is None and "surrogate" in explorer.summary_view.value
    explorer.text.value = "ok again"
    assert explorer.segmentation.text == "ok again"


def test_explorer_rejects_a_start_beyond_the_merges(char_tok):
    with pytest.raises(ValueError, match="num_merges"):
        merge_explorer(char_tok, num_merges=10_000)


def test_html_escapes_tokens_and_spells_out_line_breaks():
    shown = segmentation_html(Segmentation("a<b\n", ("a", "<b", "\n"), 0, 3, None))
    assert "&lt;b" in shown and "<b" not in shown and "\\n" in shown and "\n" not in shown
    assert shown.count("<span") == 3


# ------------------------------------------------------------------ the static figure

def test_figure_draws_one_box_per_token_with_its_text():
    rows = {"0 merges": list("low lower"), "all merges": ["low", "Ġlower", "$x$", "a\nb"]}
    figure = plot_token_segmentations(rows, title="How BPE cuts it")
    assert isinstance(figure, Figure)
    axes = figure.axes[0]
    boxes = [patch for patch in axes.patches if isinstance(patch, Rectangle)]
    assert len(boxes) == 9 + 4
    texts = [text.get_text() for text in axes.texts]
    assert texts.count("0 merges") == 1 and "all merges" in texts
    assert "Ġlower" in texts and "$x$" in texts and "a\\nb" in texts
    assert [box.get_width() for box in boxes[-4:]] == [3, 6, 3, 4]  # as wide as the text
    assert figure._suptitle.get_text() == "How BPE cuts it"


def test_figure_wraps_long_rows():
    tokens = ["token"] * 40
    short = plot_token_segmentations({"row": tokens}, line_chars=240)
    wrapped = plot_token_segmentations({"row": tokens}, line_chars=30)
    rows_of = lambda figure: {round(p.get_y(), 3) for p in figure.axes[0].patches}  # noqa: E731
    assert len(rows_of(short)) == 1 and len(rows_of(wrapped)) == 8  # 5 boxes of 5 + 0.6 characters fit in 30
    assert wrapped.get_figheight() > short.get_figheight()


@pytest.mark.parametrize("rows, error", [
    ({}, ValueError), ([("a", ["b"])], ValueError), ({"a": []}, ValueError), ({"a": ["b", ""]}, ValueError),
    ({"a": "tokens"}, TypeError), ({"a": [1, 2]}, TypeError), ({3: ["a"]}, TypeError),
])
def test_figure_rejects_malformed_rows(rows, error):
    with pytest.raises(error):
        plot_token_segmentations(rows)
