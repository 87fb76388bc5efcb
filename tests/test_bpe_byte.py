"""ByteBPE: GPT-2's byte-level BPE, checked against Hugging Face's GPT-2 tokenizer on the same files."""
from __future__ import annotations

import itertools
import json
import os

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.bpe import (
    ENDOFTEXT,
    GPT2_SPLIT_PATTERN,
    ByteBPE,
    NotTrainedError,
    Tokenizer,
    bytes_to_unicode,
    train_naive,
)

os.environ["HF_HUB_OFFLINE"] = "1"  # the reference tokenizer is built from local files only

TRAINING_TEXT = (
    "The quick brown fox jumps over the lazy dog. It's 2024; we'll see what they've done!\n"
    "Naïve café owners don't serve crème brûlée.\n\n"
    "日本語のテキストも少し。 Ελληνικά και русский текст. 👍🏽 🦜🦜 e\u0301 a\u0308\n"
    "    indented   code\tand\ttabs\r\n<|endoftext|>"
) * 8
EDGE_CASES = [
    "",
    " ",
    "   ",
    "\n",
    "\n\n\n",
    "\r\n",
    "\t \t",
    "Hello world",
    " Hello world ",
    "trailing spaces   ",
    "   leading spaces",
    "a  b   c    d",
    "line one\nline two\n\n  indented",
    "It's, I'm, we'll, they're, she'd, you've, DON'T, O'Neil's",
    "'s 're 've 'll 'd 'm 't",
    "numbers: 3.14159, 1,000,000 and 42nd",
    "naïve café, crème brûlée, Zürich",
    "日本語のテキスト",
    "emoji 👍🏽👨‍👩‍👧 family, 🦜!",
    "combining e\u0301 vs é, a\u0308\u0301",
    "nbsp\u00a0here, ideographic\u3000space, thin\u2009space",
    "zero\u200bwidth\ufeffjoiners",
    "\x00\x01 control \x7f bytes",
    "<|endoftext|>",
    "a<|endoftext|>b",
    "<|endoftext|><|endoftext|>",
    "  <|endoftext|>  \n",
    "<|endoftext",
    "endoftext|>",
    "<|endoftext|>The end.<|endoftext|> Once upon a time",
    "x" * 200,
    "unknown 🪐 planet and ꙮ multiocular O",
]


@pytest.fixture(scope="module")
def tok() -> ByteBPE:
    return ByteBPE(special_tokens=[ENDOFTEXT]).train(TRAINING_TEXT, vocab_size=420)


@pytest.fixture(scope="module")
def gpt2_dir(tok, tmp_path_factory):
    directory = tmp_path_factory.mktemp("gpt2_files")
    tok.save_gpt2_files(directory)
    return directory


@pytest.fixture(scope="module")
def hf_tokenizers(gpt2_dir):
    """Hugging Face's GPT-2 tokenizer(s) read from our files. In transformers 5 the pure-Python
    tokenizer is gone and ``GPT2TokenizerFast`` is ``GPT2Tokenizer`` (Rust ``tokenizers``)."""
    from transformers import GPT2Tokenizer, GPT2TokenizerFast

    classes = list(dict.fromkeys([GPT2Tokenizer, GPT2TokenizerFast]))
    return [cls.from_pretrained(str(gpt2_dir)) for cls in classes]


def hf_encode(hf, text: str) -> list[int]:
    return hf(text, add_special_tokens=False)["input_ids"]


# --------------------------------------------------------------------------- GPT-2's pieces


def test_bytes_to_unicode_is_gpt2s_mapping():
    from transformers.convert_slow_tokenizer import bytes_to_unicode as hf_bytes_to_unicode

    mapping = bytes_to_unicode()
    assert mapping == hf_bytes_to_unicode()
    assert sorted(mapping) == list(range(256)) and len(set(mapping.values())) == 256
    assert all(symbol.isprintable() and not symbol.isspace() for symbol in mapping.values())
    assert mapping[ord(" ")] == "Ġ" and mapping[ord("\n")] == "Ċ" and mapping[ord("a")] == "a"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_the_split_pattern_covers_the_text_without_gaps(text):
    assert "".join(regex.findall(GPT2_SPLIT_PATTERN, text)) == text


def test_pre_tokenization_matches_gpt2s_examples():
    pieces = regex.findall(GPT2_SPLIT_PATTERN, "Hello world, it's 2024!   Bye\n")
    assert pieces == ["Hello", " world", ",", " it", "'s", " 2024", "!", "  ", " Bye", "\n"]


# --------------------------------------------------------------------------- training


def test_base_alphabet_and_layout(tok):
    assert all(tok.vocab[i] == bytes([i]) for i in range(256))
    assert tok.vocab_size == 420 and len(tok.merges) == 420 - 256 - 1
    assert tok.special_tokens == {ENDOFTEXT: 419}
    assert [tok.vocab[256 + i] for i in range(len(tok.merges))] == [a + b for a, b in tok.merges]


def test_merges_equal_the_naive_trainer_and_never_cross_pieces(tok):
    word_counts = tok.word_counts(TRAINING_TEXT)
    assert tok.merges == train_naive(word_counts, 420 - 256 - 1)
    assert ByteBPE([ENDOFTEXT]).train(TRAINING_TEXT, 420, method="naive").merges == tok.merges
    pieces = set(regex.findall(GPT2_SPLIT_PATTERN, TRAINING_TEXT.replace(ENDOFTEXT, "")))
    # A merged token is always a substring of a single piece: never across a word boundary.
    piece_bytes = [piece.encode() for piece in pieces]
    assert all(any((a + b) in p for p in piece_bytes) for a, b in tok.merges)


def test_special_tokens_in_training_text_learn_nothing(tok):
    assert not any(b"endoftext" in a + b or b"<|" in a + b for a, b in tok.merges)


def test_training_on_story_corpus_equals_naive():
    from course_lib.data.stories import generate_stories

    text = "\n".join(story.text for story in generate_stories(40, seed=1))
    fast = ByteBPE().train(text, 400)
    assert fast.merges == ByteBPE().train(text, 400, method="naive").merges
    assert fast.decode(fast.encode(text)) == text
    assert len(fast.encode(text)) < len(text) / 2


def test_verbose_training_prints_merges(capsys):
    ByteBPE().train("aaab aaab", 258, verbose=True)
    # Pieces "aaab" and " aaab": (a, a) occurs twice in each. Then (aa, a) and (a, b) tie at 2.
    assert capsys.readouterr().out.splitlines() == [
        "merge 1/2: b'a' + b'a' -> b'aa' (4 occurrences)",
        "merge 2/2: b'a' + b'b' -> b'ab' (2 occurrences)",
    ]


# --------------------------------------------------------------------------- encode / decode laws

special_or_text = st.lists(
    st.one_of(st.text(), st.sampled_from([ENDOFTEXT, " ", "  ", "\n", "'re", "👍🏽", "e\u0301", "日本"])), max_size=8
).map("".join)


@settings(max_examples=250, deadline=None)
@given(special_or_text)
def test_decode_inverts_encode_for_any_text(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_decode_inverts_encode_on_edge_cases(tok):
    for text in EDGE_CASES:
        assert tok.decode(tok.encode(text)) == text, text


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_tokens_never_cross_pieces(tok, text):
    pieces = regex.findall(GPT2_SPLIT_PATTERN, text)
    assert tok.encode(text) == [i for piece in pieces for i in tok.encode(piece)]


def test_special_tokens_are_single_ids_and_never_split(tok):
    eot = tok.special_tokens[ENDOFTEXT]
    assert tok.encode(ENDOFTEXT) == [eot]
    assert tok.encode(ENDOFTEXT * 3) == [eot] * 3
    ids = tok.encode("a<|endoftext|>b")
    assert ids == tok.encode("a") + [eot] + tok.encode("b")
    assert eot not in tok.encode("<|endoftext") + tok.encode("endoftext|>")
    assert ByteBPE().train(TRAINING_TEXT, 300).encode(ENDOFTEXT) != [300]  # without registration: plain text


def test_decode_of_a_partial_character_uses_replacement(tok):
    ids = [0xC3]  # the id of the byte 0xC3: the first byte of "é", alone not UTF-8
    assert tok.decode(ids) == "\ufffd"
    assert tok.decode_bytes(ids) == b"\xc3"
    with pytest.raises(UnicodeDecodeError):
        tok.decode(ids, errors="strict")


# --------------------------------------------------------------------------- against Hugging Face


def test_encoding_equals_hugging_face_gpt2_on_edge_cases(tok, hf_tokenizers):
    for hf in hf_tokenizers:
        for text in EDGE_CASES + TRAINING_TEXT.splitlines():
            assert tok.encode(text) == hf_encode(hf, text), text


@settings(max_examples=150, deadline=None)
@given(special_or_text)
def test_encoding_equals_hugging_face_gpt2_on_any_text(tok, hf_tokenizers, text):
    for hf in hf_tokenizers:
        ids = tok.encode(text)
        assert ids == hf_encode(hf, text)
        assert tok.decode(ids) == hf.decode(ids, clean_up_tokenization_spaces=False)


def test_files_with_gpt2s_id_layout_load_and_encode_like_hugging_face(tok, tmp_path):
    """Real GPT-2 files number the bytes in bytes_to_unicode order ("!" is 0) and put
    <|endoftext|> last; build such files from our merges and check both tokenizers agree."""
    from transformers import GPT2Tokenizer

    mapping = bytes_to_unicode()
    gpt2_byte_order = sorted(range(256), key=lambda b: (not (33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255), b))
    vocab = {mapping[b]: i for i, b in enumerate(gpt2_byte_order)}
    merges = []
    for left, right in tok.merges:
        left_s, right_s = ("".join(mapping[b] for b in part) for part in (left, right))
        merges.append(f"{left_s} {right_s}")
        vocab.setdefault(left_s + right_s, len(vocab))
    vocab[ENDOFTEXT] = len(vocab)
    (tmp_path / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")

    ours = ByteBPE.from_gpt2_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    hf = GPT2Tokenizer.from_pretrained(str(tmp_path))
    assert ours.encode("!") == [0] and ours.special_tokens == {ENDOFTEXT: len(vocab) - 1}
    for text in EDGE_CASES:
        assert ours.encode(text) == hf_encode(hf, text), text
        assert ours.decode(ours.encode(text)) == text


def test_gpt2_files_round_trip(tok, gpt2_dir, tmp_path):
    loaded = ByteBPE.from_gpt2_files(gpt2_dir / "vocab.json", gpt2_dir / "merges.txt")
    assert loaded.merges == tok.merges and loaded.vocab == tok.vocab and loaded.special_tokens == tok.special_tokens
    loaded.save_gpt2_files(tmp_path)
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / name).read_bytes() == (gpt2_dir / name).read_bytes()
    lines = (gpt2_dir / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#version: 0.2" and len(lines) == 1 + len(tok.merges)


# --------------------------------------------------------------------------- streaming


@settings(max_examples=150, deadline=None)
@given(text=special_or_text, cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=8))
def test_encode_iter_equals_encode_wherever_the_chunks_split(tok, text, cuts):
    bounds = sorted({0, len(text), *(min(cut, len(text)) for cut in cuts)})
    chunks = (text[a:b] for a, b in zip(bounds, bounds[1:]))
    expected = tok.encode(text)
    assert list(tok.encode_iter(chunks)) == expected
    assert list(tok.encode_iter(iter(text))) == expected  # one character at a time


def test_encode_iter_waits_for_a_special_token_after_a_whitespace_run(tok):
    # "\r\n" before a special token is one piece; before a word it splits as "\r", "\n": the
    # stream must not commit to either until it has seen the whole special token.
    for text in ["x\r\n<|endoftext|>", "a   <|endoftext|>b", "\n\n\n<|endoftext|>", "it<|endoftext|>'re"]:
        assert list(tok.encode_iter(iter(text))) == tok.encode(text), text


def test_encode_iter_equals_encode_on_every_short_string():
    """Brute force: every string of up to 4 characters over an alphabet that exercises contractions,
    whitespace runs, digits and two overlapping special tokens, streamed one character at a time."""
    alphabet = ["a", " ", "\n", "'", "s", "<", "x", ">", "1"]
    tok = ByteBPE(special_tokens=["<x>", "<x> >"]).train("a as 's <x> x 11 \n\n  a'sa", 300)
    for length in range(5):
        for characters in itertools.product(alphabet, repeat=length):
            text = "".join(characters)
            assert list(tok.encode_iter(iter(text))) == tok.encode(text), text


def test_encode_iter_on_stories_split_at_lines(tok):
    from course_lib.data.stories import generate_stories

    text = "\n".join(story.text for story in generate_stories(30, seed=2)) + "\n" + TRAINING_TEXT
    lines = text.splitlines(keepends=True)
    assert list(tok.encode_iter(line for line in lines)) == tok.encode(text)
    assert list(tok.encode_iter(iter(text))) == tok.encode(text)  # one character at a time


def test_encode_iter_streams_an_endless_source(tok):
    endless = itertools.cycle(["The end.", ENDOFTEXT, " Once", " upon a time\n"])
    first = list(itertools.islice(tok.encode_iter(endless), 40))
    assert first == tok.encode(("The end." + ENDOFTEXT + " Once upon a time\n") * 10)[:40]


# --------------------------------------------------------------------------- saving and special tokens


def test_save_and_load(tok, tmp_path):
    path = tok.save(tmp_path / "byte.json")
    for loader in (ByteBPE.load, Tokenizer.load):
        loaded = loader(path)
        assert isinstance(loaded, ByteBPE) and loaded.merges == tok.merges
        assert loaded.encode(TRAINING_TEXT) == tok.encode(TRAINING_TEXT)


def test_add_special_tokens_after_training():
    extended = ByteBPE([ENDOFTEXT]).train(TRAINING_TEXT, 420)
    added = extended.add_special_tokens(["<|pad|>", ENDOFTEXT])
    assert added == {"<|pad|>": 420}
    assert extended.encode("x<|pad|><|endoftext|>")[1:] == [420, 419]
    assert extended.decode([420, 419]) == "<|pad|><|endoftext|>"
    assert extended.id_to_token(420) == "<|pad|>" and extended.id_to_token(32) == "Ġ"


def test_id_to_token_and_tokens_read_like_gpt2(tok):
    assert tok.tokens(" the") == ["Ġthe"]
    assert tok.tokens("the fox\n") == [tok.id_to_token(i) for i in tok.encode("the fox\n")]


# --------------------------------------------------------------------------- bad input


def test_bad_input_gets_clear_errors(tok):
    with pytest.raises(NotTrainedError, match=r"call \.train"):
        ByteBPE().encode("hi")
    with pytest.raises(NotTrainedError):
        ByteBPE().decode([1])
    with pytest.raises(TypeError, match="decode it first"):
        tok.encode(b"hi")
    with pytest.raises(TypeError, match="must be a str"):
        tok.encode(None)
    with pytest.raises(TypeError, match="must be a str"):
        ByteBPE().train(12, vocab_size=300)
    with pytest.raises(ValueError, match="256 bytes \\+ 1 special tokens = 257"):
        ByteBPE([ENDOFTEXT]).train("abc", vocab_size=256)
    with pytest.raises(TypeError, match="vocab_size must be an int"):
        ByteBPE().train("abc", vocab_size=300.0)
    with pytest.raises(ValueError, match="id 5000 is not in the vocabulary"):
        tok.decode([1, 5000])
    with pytest.raises(ValueError, match="id -1"):
        tok.decode([-1])
    with pytest.raises(TypeError, match="did you mean encode"):
        tok.decode("abc")
    with pytest.raises(ValueError, match="lone surrogate"):
        tok.encode("bad \ud800 text")
    with pytest.raises(TypeError, match="not one str"):
        ByteBPE(special_tokens=ENDOFTEXT)
    with pytest.raises(ValueError, match="listed twice"):
        ByteBPE(special_tokens=[ENDOFTEXT, ENDOFTEXT])


def write_files(directory, vocab, merges_text):
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (directory / "merges.txt").write_text(merges_text, encoding="utf-8")
    return directory / "vocab.json", directory / "merges.txt"


def test_corrupt_gpt2_files_name_the_problem(tmp_path):
    mapping = bytes_to_unicode()
    vocab = {mapping[b]: b for b in range(256)}
    vocab.update({"Ġt": 256, "he": 257})
    good = "#version: 0.2\nĠ t\nh e\n"
    ByteBPE.from_gpt2_files(*write_files(tmp_path, vocab, good))  # fine

    with pytest.raises(ValueError, match="line 3: expected two tokens"):
        ByteBPE.from_gpt2_files(*write_files(tmp_path, vocab, "#version: 0.2\nĠ t\nhe\n"))
    with pytest.raises(ValueError, match="line 2: expected two tokens"):
        ByteBPE.from_gpt2_files(*write_files(tmp_path, vocab, "#version: 0.2\nĠ t x\nh e\n"))
    with pytest.raises(ValueError, match="line 3: 'hx' .* is not in the vocabulary"):
        ByteBPE.from_gpt2_files(*write_files(tmp_path, vocab, "#version: 0.2\nĠ t\nh x\n"))
    with pytest.raises(ValueError, match="lacks 1 of the 256 single bytes"):
        ByteBPE.from_gpt2_files(*write_files(tmp_path, {k: v for k, v in vocab.items() if k != "a"}, good))
    with pytest.raises(ValueError, match="id 256 is given to both"):
        ByteBPE.from_gpt2_files(*write_files(tmp_path, {**vocab, "he": 256}, good))
    with pytest.raises(ValueError, match="outside GPT-2's"):
        ByteBPE.from_gpt2_files(*write_files(tmp_path, {**vocab, "<pad> x": 300}, good))
    ByteBPE.from_gpt2_files(*write_files(tmp_path, {**vocab, "<pad> x": 300}, good), special_tokens=["<pad> x"])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        ByteBPE.from_gpt2_files(*write_files(tmp_path, vocab, good), special_tokens=[ENDOFTEXT])
    (tmp_path / "vocab.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        ByteBPE.from_gpt2_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    (tmp_path / "vocab.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid vocab.json"):
        ByteBPE.from_gpt2_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
