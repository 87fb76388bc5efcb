"""CharBPE: Sennrich's character-level BPE as a tokenizer (train, encode, decode, stream, save, load)."""
from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.bpe import END_OF_WORD, UNKNOWN, CharBPE, NotTrainedError, Tokenizer, apply_merges, train_naive
from course_lib.bpe.char_bpe import word_counts_from_text

SENNRICH_TEXT = "low " * 5 + "lower " * 2 + "newest " * 6 + "widest " * 3
TRAINING_TEXT = (
    "the cat sat on the mat\nthe dog sat on the log\n"
    "a quick brown fox jumps over the lazy dog\n"
    "Zebras, yaks & vicunas! 1234567890 (quiet) [jolly] x-ray"
)
ALPHABET = sorted(set(TRAINING_TEXT) - set(" \n"))


@pytest.fixture(scope="module")
def tok() -> CharBPE:
    return CharBPE().train(TRAINING_TEXT * 3, vocab_size=80)


def test_vocabulary_layout_markers_then_characters_then_merges():
    tok = CharBPE().train(SENNRICH_TEXT, vocab_size=2 + 10 + 4)
    assert tok.vocab[:2] == [UNKNOWN, END_OF_WORD]
    assert tok.vocab[2:12] == sorted(set("lowernstid"))
    assert tok.merges == [("e", "s"), ("es", "t"), ("est", "</w>"), ("l", "o")]
    assert tok.vocab[12:] == ["es", "est", "est</w>", "lo"]
    assert tok.vocab_size == 16


def test_encode_segments_words_like_apply_merges(tok):
    for word in ["the", "lazy", "zebra", "Zebras,"]:
        symbols = apply_merges(tuple(word) + (END_OF_WORD,), tok.merges)
        assert tok.encode(word) == [tok.vocab.index(symbol) for symbol in symbols]
        assert tok.segment(word) == symbols


def test_trained_merges_equal_the_naive_trainer(tok):
    assert tok.merges == train_naive(word_counts_from_text(TRAINING_TEXT * 3), 80 - 2 - len(ALPHABET))
    assert CharBPE().train(TRAINING_TEXT * 3, 80, method="naive").merges == tok.merges


def test_unseen_characters_become_unk(tok):
    ids = tok.encode("the çat")
    assert tok.unknown_id in ids
    assert tok.decode(ids) == "the [UNK]at"


@settings(max_examples=120, deadline=None)
@given(st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=8), max_size=8), st.data())
def test_round_trip_normalises_whitespace(tok, words, data):
    separators = data.draw(st.lists(st.sampled_from([" ", "  ", "\n", "\t", " \r\n "]), min_size=len(words) + 1, max_size=len(words) + 1))
    text = "".join(sep + word for sep, word in zip(separators, words)) + separators[-1]
    assert tok.decode(tok.encode(text)) == " ".join(text.split())


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=ALPHABET + [" ", "\n"], max_size=60), cuts=st.lists(st.integers(0, 60), max_size=6))
def test_encode_iter_equals_encode_wherever_the_chunks_split(tok, text, cuts):
    bounds = sorted({0, len(text), *(min(c, len(text)) for c in cuts)})
    chunks = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    assert list(tok.encode_iter(iter(chunks))) == tok.encode(text)


def test_encode_iter_streams_without_reading_everything(tok):
    endless = itertools.cycle(["the cat sat ", "on the mat\n"])
    first = list(itertools.islice(tok.encode_iter(endless), 50))
    assert first == tok.encode("the cat sat on the mat\n" * 10)[:50]


def test_save_and_load_round_trip(tok, tmp_path):
    path = tok.save(tmp_path / "char.json")
    for loader in (CharBPE.load, Tokenizer.load):
        loaded = loader(path)
        assert isinstance(loaded, CharBPE)
        assert loaded.merges == tok.merges and loaded.vocab == tok.vocab
        assert loaded.encode(TRAINING_TEXT) == tok.encode(TRAINING_TEXT)


def test_training_on_an_iterable_of_documents(tok):
    lines = (TRAINING_TEXT * 3).splitlines()
    assert CharBPE().train(iter(lines), vocab_size=80).merges == tok.merges


def test_training_stops_early_when_words_are_whole():
    tok = CharBPE().train("ab ab", vocab_size=50)
    assert tok.merges == [("a", "b"), ("ab", END_OF_WORD)]
    assert tok.vocab_size == 2 + 2 + 2


# --------------------------------------------------------------------------- bad input


def test_bad_input_gets_clear_errors(tok, tmp_path):
    with pytest.raises(NotTrainedError, match=r"call \.train"):
        CharBPE().encode("hello")
    with pytest.raises(TypeError, match="must be a str"):
        tok.encode(b"bytes")
    with pytest.raises(TypeError, match="text\\[1\\] must be a str"):
        CharBPE().train(["fine", 42], vocab_size=40)
    with pytest.raises(ValueError, match="at least 8"):
        CharBPE().train("abc def", vocab_size=7)
    with pytest.raises(ValueError, match="no words"):
        CharBPE().train("   \n", vocab_size=10)
    with pytest.raises(ValueError, match="reserves"):
        CharBPE().train("a</w>b", vocab_size=10)
    with pytest.raises(ValueError, match="method"):
        CharBPE().train("abc", vocab_size=10, method="fast")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.decode([0, tok.vocab_size])
    with pytest.raises(TypeError, match="not an integer"):
        tok.decode([1.5])
    with pytest.raises(TypeError, match="not a str"):
        tok.encode_iter("one string")
    with pytest.raises(TypeError, match="chunk 1"):
        list(tok.encode_iter(["ok ", 3]))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a saved tokenizer"):
        CharBPE.load(other)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"format": "course_lib.bpe", "version": 1, "class": "CharBPE", "base": ["[UNK]", "</w>", "a"], "merges": [["a", "q"]]}))
    with pytest.raises(ValueError, match="'q' is not in the vocabulary"):
        CharBPE.load(broken)
