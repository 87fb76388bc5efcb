"""The course's WordPiece tokenizer against the ``tokenizers`` library on the same
``tokenizer.json`` (all-MiniLM-L6-v2's, BERT's uncased vocabulary of 30,522 tokens), and
against known answers of the algorithm on a toy vocabulary."""
import pytest
import tokenizers

from course_lib import checks, pretrained
from course_lib.wordpiece import WordPieceTokenizer, basic_tokenize, normalize, wordpiece_split

SAMPLE = [
    "Once upon a time, Mia had a red ball. She kicked it to Tom!",
    "\"Where is the ball?\" asked Tom; Mia said: 'under the bed'.",
    "Café, naïve, résumé, Ångström and Übermensch.",
    "Prices rose 3.5% to $1,234.56 on 2024-01-15 (approx.) #42 @home a+b=c <x> ^_^ `~|",
    "東京は日本の首都です。北京欢迎你！",
    "Emoji: 😀🎉 👍🏽 👨‍👩‍👧 and ❤️ end",
    "supercalifragilisticexpialidocious antidisestablishmentarianism " + "a" * 101,
    "Tabs\tand\nnewlines\r\nand\u00a0non-breaking\u2003spaces\u200b zero-width",
    "Control\x07chars\x00and\ufffdreplacement",
    "[CLS] The [MASK] sat on the mat . [SEP] [mask] stays lower",
    "İstanbul ΣΊΣΥΦΟΣ Ελληνικά Привет мир ﬁne ligature",
    "Unaffable unbelievably tokenization WordPiece's greedy longest-match-first",
    "",
    "   ",
    "The ξ-ray and ∑ of ½ ¾ ™ © §3 — “quotes” and ‘single’ … ellipsis",
]


@pytest.fixture(scope="module")
def pair():
    raw = pretrained.read_member("tokenizer.json")
    library = tokenizers.Tokenizer.from_str(raw.decode("utf-8"))
    library.no_padding()
    library.no_truncation()
    return WordPieceTokenizer.from_tokenizer_json(raw), library


@pytest.mark.parametrize("text", SAMPLE)
def test_tokens_and_ids_equal_the_tokenizers_library(pair, text):
    course, library = pair
    expected = library.encode(text)
    actual = course.encode(text)
    assert actual.tokens == expected.tokens
    assert actual.ids == expected.ids


def test_pairs_carry_segment_ids_as_the_library_does(pair):
    course, library = pair
    expected = library.encode("Mia kicked the ball.", "Tom caught it!")
    actual = course.encode("Mia kicked the ball.", "Tom caught it!")
    assert (actual.ids, actual.token_type_ids) == (expected.ids, expected.type_ids)
    assert actual.token_type_ids.count(1) == len(["tom", "caught", "it", "!", "[SEP]"])


def test_story_corpus_sentences_agree(pair):
    from course_lib.data import generate_stories

    course, library = pair
    texts = [story.text for story in generate_stories(40, seed=3)]
    assert all(course.encode(text).ids == library.encode(text).ids for text in texts)


TOY = {"[UNK]": 0, "un": 1, "##aff": 2, "##able": 3, "a": 4, "##ff": 5, "runn": 6, "##ing": 7, "run": 8}


def test_greedy_longest_match_first_on_a_toy_vocabulary():
    assert wordpiece_split("unaffable", TOY) == ["un", "##aff", "##able"]
    assert wordpiece_split("running", TOY) == ["runn", "##ing"]  # the longest first piece wins
    assert wordpiece_split("unx", TOY) == ["[UNK]"]  # one unmatched piece makes the whole word unknown
    assert wordpiece_split("a" * 6, {**TOY, "##a": 9}, max_chars=5) == ["[UNK]"]


def test_normalizer_and_pre_tokenizer_steps():
    assert normalize("Ça VA\tbien\x07") == "ca va bien"
    assert normalize("Ça", lowercase=False) == "Ça"
    assert normalize("Ça", lowercase=False, strip_accents=True) == "Ca"
    assert normalize("日本") == " 日  本 "
    assert basic_tokenize("hello, world!! a-b") == ["hello", ",", "world", "!", "!", "a", "-", "b"]


def test_bad_inputs_are_named():
    with pytest.raises(checks.ArgumentError, match="text must be a str"):
        WordPieceTokenizer(TOY | {"[PAD]": 10, "[CLS]": 11, "[SEP]": 12, "[MASK]": 13}).tokenize(3)
    with pytest.raises(checks.ArgumentError, match="lacks the special tokens"):
        WordPieceTokenizer({"[UNK]": 0})
    with pytest.raises(checks.ArgumentError, match="WordPiece with BertNormalizer"):
        WordPieceTokenizer.from_tokenizer_json({"model": {"type": "BPE"}, "normalizer": None})
