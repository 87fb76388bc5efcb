"""Tokenizers, sentence splitting, file loading and the Vocabulary table."""
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.tokenize import wordpunct_tokenize

from course_lib.data import (
    Vocabulary,
    char_tokenize,
    detokenize,
    generate_stories,
    load_text,
    split_sentences,
    word_tokenize,
)


@pytest.fixture(scope="module")
def stories():
    return generate_stories(400, seed=11)


def test_word_tokenize_separates_punctuation_and_keeps_case():
    assert word_tokenize("Once upon a time, there was a girl named Mia. Where did Mia live?") == [
        "Once", "upon", "a", "time", ",", "there", "was", "a", "girl", "named", "Mia", ".",
        "Where", "did", "Mia", "live", "?",
    ]
    assert word_tokenize("") == []
    assert word_tokenize("don't stop, well-known!") == ["don't", "stop", ",", "well-known", "!"]


def test_word_tokenize_agrees_with_nltk_on_the_corpus(stories):
    # NLTK's wordpunct tokenizer (\w+|[^\w\s]+) is an independent reference on the corpus's alphabet.
    for story in stories:
        assert word_tokenize(story.text) == wordpunct_tokenize(story.text)


def test_detokenize_inverts_word_tokenize_on_every_generated_story(stories):
    for story in stories:
        assert detokenize(word_tokenize(story.text)) == story.text


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_round_trip_holds_for_stories_from_any_seed(seed):
    for story in generate_stories(3, seed=seed):
        assert detokenize(word_tokenize(story.text)) == story.text


def test_detokenize_spacing_rules():
    assert detokenize(["It", "was", "red", ".", "Where", "?"]) == "It was red. Where?"
    assert detokenize(["(", "a", ")", "b"]) == "(a) b"
    assert detokenize([]) == ""


def test_char_tokenize_is_every_character():
    text = "Mia had a red ball.\nThe end."
    assert char_tokenize(text) == list(text)
    assert "".join(char_tokenize(text)) == text


def test_split_sentences_on_a_story(stories):
    for story in stories[:50]:
        sentences = split_sentences(story.text)
        # Independent count: every sentence of the corpus ends with "." or "?".
        assert len(sentences) == story.text.count(".") + story.text.count("?")
        assert " ".join(sentences) == story.text
        assert all(sentence[-1] in ".?" for sentence in sentences)


def test_split_sentences_across_lines():
    assert split_sentences("Where did Mia live? She lived near the lake.\nThe end.") == [
        "Where did Mia live?", "She lived near the lake.", "The end.",
    ]


@pytest.mark.parametrize("function", [word_tokenize, char_tokenize, split_sentences])
def test_text_functions_reject_non_strings(function):
    with pytest.raises(TypeError, match="must be a str"):
        function(["not", "a", "string"])


def test_detokenize_rejects_a_plain_string():
    with pytest.raises(TypeError, match="not a str"):
        detokenize("Mia had a ball.")


# -- load_text ---------------------------------------------------------------------------------


def test_load_text_reads_utf8_and_normalises_line_endings(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("Zoë had a red ball.\r\nThe end.\r".encode("utf-8"))
    assert load_text(path) == "Zoë had a red ball.\nThe end.\n"
    assert load_text(str(path)) == load_text(path)


def test_load_text_other_encodings(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("café".encode("latin-1"))
    assert load_text(path, encoding="latin-1") == "café"
    wide = tmp_path / "wide.txt"
    wide.write_bytes("Mia".encode("utf-16"))
    assert load_text(wide, encoding="utf-16") == "Mia"


def test_load_text_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        load_text(tmp_path / "nowhere.txt")


def test_load_text_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load_text(tmp_path)


def test_load_text_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_text(path)


def test_load_text_undecodable_reports_offset_and_suggests_encoding(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes(b"caf\xe9 au lait")
    with pytest.raises(ValueError, match=r"offset 3.*encoding="):
        load_text(path)


def test_load_text_binary_content(tmp_path):
    path = tmp_path / "image.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ValueError, match=r"binary.*offset 8"):
        load_text(path)


def test_load_text_bad_arguments(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("a")
    with pytest.raises(TypeError, match="path"):
        load_text(42)
    with pytest.raises(ValueError, match="unknown encoding"):
        load_text(path, encoding="no-such-codec")


# -- Vocabulary ---------------------------------------------------------------------------------

token_lists = st.lists(st.lists(st.text(alphabet="abcdeXY.,?", min_size=1, max_size=4), max_size=12), max_size=8)


@settings(max_examples=60, deadline=None)
@given(streams=token_lists, min_count=st.integers(min_value=1, max_value=3))
def test_vocabulary_keeps_exactly_the_tokens_seen_min_count_times(streams, min_count):
    vocabulary = Vocabulary.build(streams, min_count=min_count)
    counts = Counter(token for stream in streams for token in stream)
    kept = {token for token, count in counts.items() if count >= min_count}
    assert set(vocabulary.tokens[len(vocabulary.specials) :]) == kept
    assert len(vocabulary) == len(Vocabulary.DEFAULT_SPECIALS) + len(kept)
    for stream in streams:
        ids = vocabulary.encode(stream)
        decoded = vocabulary.decode(ids)
        assert decoded == [token if token in kept else "<unk>" for token in stream]
        assert all(0 <= index < len(vocabulary) for index in ids)


@settings(max_examples=40, deadline=None)
@given(streams=token_lists)
def test_vocabulary_json_round_trip_and_order_independence(streams):
    vocabulary = Vocabulary.build(streams)
    assert Vocabulary.from_json(vocabulary.to_json()) == vocabulary
    assert Vocabulary.build(list(reversed(streams))) == vocabulary


def test_vocabulary_order_and_specials():
    vocabulary = Vocabulary.build([["b", "a", "b", "c"], ["c", "b"]])
    assert vocabulary.tokens == ["<pad>", "<unk>", "<s>", "</s>", "b", "c", "a"]
    assert vocabulary.special_id("<s>") == 2
    assert vocabulary.encode(["a", "zzz"]) == [6, vocabulary.unk_id]
    assert "a" in vocabulary and "zzz" not in vocabulary


def test_vocabulary_decodes_numpy_and_torch_integers():
    import numpy as np
    import torch

    vocabulary = Vocabulary.build([["x", "y"]])
    ids = vocabulary.encode(["y", "x"])
    assert vocabulary.decode(np.array(ids)) == ["y", "x"]
    assert vocabulary.decode(torch.tensor(ids)) == ["y", "x"]


def test_vocabulary_errors():
    vocabulary = Vocabulary.build([["x"]])
    with pytest.raises(ValueError, match="out of range"):
        vocabulary.decode([99])
    with pytest.raises(TypeError, match="integers"):
        vocabulary.decode(["x"])
    with pytest.raises(TypeError, match="not a str"):
        vocabulary.encode("x y")
    with pytest.raises(TypeError, match="list of tokens"):
        Vocabulary.build(["x y", "z"])
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.build([["x"]], min_count=0)
    with pytest.raises(ValueError, match="<unk>"):
        Vocabulary(["x"], specials=("<pad>",))
    with pytest.raises(ValueError, match="Vocabulary JSON"):
        Vocabulary.from_json('{"tokens": []}')
    with pytest.raises(ValueError, match="special token"):
        vocabulary.special_id("x")
