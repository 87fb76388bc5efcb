"""The BPE algorithm on word-frequency dictionaries: known answers, the tie-break, both trainers agree."""
from __future__ import annotations

import doctest
import re
from collections import Counter

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.bpe import (
    GPT2_SPLIT_PATTERN,
    ByteBPE,
    apply_merges,
    best_pair,
    get_pair_counts,
    merge_pair,
    merge_step,
    merge_word,
    train_char_bpe,
    train_incremental,
    train_naive,
    word_counts_from_text,
)
from course_lib.bpe.training import apply_ranks, merge_ranks

# Sennrich et al. (2016), Section 3.2: the dictionary {low: 5, lower: 2, newest: 6, widest: 3}.
SENNRICH_VOCAB = {
    ("l", "o", "w", "</w>"): 5,
    ("l", "o", "w", "e", "r", "</w>"): 2,
    ("n", "e", "w", "e", "s", "t", "</w>"): 6,
    ("w", "i", "d", "e", "s", "t", "</w>"): 3,
}
# Worked out by hand, counting pairs after each merge; "tie" marks a tie settled by the smallest pair.
SENNRICH_MERGES = [
    ("e", "s"),  # 9, tie with (s, t) and (t, </w>)
    ("es", "t"),  # 9, tie with (t, </w>)
    ("est", "</w>"),  # 9
    ("l", "o"),  # 7, tie with (o, w)
    ("lo", "w"),  # 7
    ("e", "w"),  # 6, tie with (n, e) and (w, est</w>)
    ("ew", "est</w>"),  # 6, tie with (n, ew)
    ("n", "ewest</w>"),  # 6
    ("low", "</w>"),  # 5
    ("d", "est</w>"),  # 3, tie with (i, d) and (w, i)
]


def sennrich_reference(vocab: dict[str, int], num_merges: int) -> list[tuple[str, str]]:
    """The paper's Figure 1 code (words as space-separated strings, regex replacement), kept
    verbatim except for the tie-break, which follows the library's documented rule."""

    def get_stats(vocab):
        pairs = Counter()
        for word, freq in vocab.items():
            symbols = word.split()
            for i in range(len(symbols) - 1):
                pairs[symbols[i], symbols[i + 1]] += freq
        return pairs

    def merge_vocab(pair, v_in):
        v_out = {}
        bigram = re.escape(" ".join(pair))
        p = re.compile(r"(?<!\S)" + bigram + r"(?!\S)")
        for word in v_in:
            w_out = p.sub("".join(pair), word)
            v_out[w_out] = v_out.get(w_out, 0) + v_in[word]
        return v_out

    merges = []
    for _ in range(num_merges):
        pairs = get_stats(vocab)
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))  # was: max(pairs, key=pairs.get)
        vocab = merge_vocab(best, vocab)
        merges.append(best)
    return merges


def apply_in_learned_order(word: tuple[str, ...], merges: list[tuple[str, str]]) -> tuple[str, ...]:
    """Segment by applying every merge once, in the order learned (subword-nmt's first apply script)."""
    for pair in merges:
        word = merge_word(word, pair)
    return word


# Small random corpora: a few letters so that pairs repeat and ties are common.
words_strategy = st.dictionaries(
    st.text(alphabet="abcde", min_size=1, max_size=7).map(lambda w: tuple(w) + ("</w>",)),
    st.integers(min_value=1, max_value=5),
    min_size=1,
    max_size=12,
)


# --------------------------------------------------------------------------- the pure steps


def test_pair_counts_weight_each_word_by_its_frequency():
    counts = get_pair_counts(SENNRICH_VOCAB)
    assert counts[("e", "s")] == 6 + 3
    assert counts[("l", "o")] == 5 + 2
    assert counts[("w", "e")] == 2 + 6
    assert sum(counts.values()) == sum((len(w) - 1) * f for w, f in SENNRICH_VOCAB.items())


def test_merge_pair_merges_left_to_right_without_overlap():
    assert merge_word(("a", "a", "a"), ("a", "a")) == ("aa", "a")
    assert merge_word(("a", "a", "a", "a"), ("a", "a")) == ("aa", "aa")
    merged = merge_pair({("a", "b", "a", "b"): 2, ("b", "a"): 1}, ("a", "b"))
    assert merged == {("ab", "ab"): 2, ("b", "a"): 1}


def test_merge_pair_adds_the_counts_of_words_that_become_equal():
    assert merge_pair({("a", "b"): 2, ("ab",): 3}, ("a", "b")) == {("ab",): 5}


def test_merge_step_walks_through_the_paper_example():
    counts = dict(SENNRICH_VOCAB)
    for expected in SENNRICH_MERGES[:3]:
        pair, counts = merge_step(counts)
        assert pair == expected
    assert counts[("n", "e", "w", "est</w>")] == 6
    assert counts[("l", "o", "w", "e", "r", "</w>")] == 2


def test_merge_step_does_not_change_its_input():
    before = dict(SENNRICH_VOCAB)
    merge_step(SENNRICH_VOCAB)
    assert SENNRICH_VOCAB == before


def test_known_merges_of_the_paper_example():
    assert train_char_bpe(SENNRICH_VOCAB, 10) == SENNRICH_MERGES
    assert train_incremental(SENNRICH_VOCAB, 10) == SENNRICH_MERGES


def test_the_paper_code_agrees_on_its_example():
    vocab = {" ".join(word): count for word, count in SENNRICH_VOCAB.items()}
    assert sennrich_reference(vocab, 10) == SENNRICH_MERGES


def test_word_counts_from_text_builds_the_dictionary():
    text = "low " * 5 + "lower " * 2 + "newest\n" * 6 + "widest\t" * 3
    assert word_counts_from_text(text) == SENNRICH_VOCAB
    assert word_counts_from_text(["low low", "lower"]) == {("l", "o", "w", "</w>"): 2, ("l", "o", "w", "e", "r", "</w>"): 1}


# --------------------------------------------------------------------------- the tie-break


def test_ties_go_to_the_lexicographically_smallest_pair_whatever_the_order_of_words():
    # (b, a) is seen first, (a, b) equally often: the smaller pair (a, b) wins.
    crafted = {("b", "a"): 3, ("a", "b"): 3}
    assert best_pair(get_pair_counts(crafted)) == ("a", "b")
    for trainer in (train_naive, train_incremental):
        assert trainer(crafted, 1) == [("a", "b")]
        assert trainer(dict(reversed(list(crafted.items()))), 1) == [("a", "b")]
    # Same left symbol: the right one decides.
    assert best_pair({("a", "c"): 2, ("a", "b"): 2, ("z", "z"): 1}) == ("a", "b")
    # Count beats order.
    assert best_pair({("a", "b"): 1, ("z", "z"): 2}) == ("z", "z")


def test_ties_between_byte_pairs_compare_bytes():
    crafted = {(b"\xff", b"a"): 2, (b" ", b"t"): 2, (b"t", b" "): 2}
    assert train_incremental(crafted, 1) == train_naive(crafted, 1) == [(b" ", b"t")]


# --------------------------------------------------------------------------- both trainers agree


@settings(max_examples=150, deadline=None)
@given(word_counts=words_strategy, num_merges=st.integers(min_value=0, max_value=30))
def test_incremental_and_naive_learn_identical_merges(word_counts, num_merges):
    expected = train_naive(word_counts, num_merges)
    assert train_incremental(word_counts, num_merges) == expected
    reference = sennrich_reference({" ".join(w): c for w, c in word_counts.items()}, num_merges)
    assert expected == reference


@settings(max_examples=60, deadline=None)
@given(word_counts=words_strategy, num_merges=st.integers(min_value=0, max_value=30), data=st.data())
def test_applying_merges_by_rank_equals_applying_them_in_learned_order(word_counts, num_merges, data):
    merges = train_char_bpe(word_counts, num_merges)
    for word in list(word_counts) + [tuple(data.draw(st.text(alphabet="abcdef", max_size=9))) + ("</w>",)]:
        assert apply_merges(word, merges) == apply_in_learned_order(word, merges)


@settings(max_examples=60, deadline=None)
@given(word_counts=words_strategy, num_merges=st.integers(min_value=0, max_value=30))
def test_the_merge_routine_on_ids_equals_it_on_symbols(word_counts, num_merges):
    # ByteBPE merges token ids through the same apply_ranks, with a table of what each pair becomes.
    merges = train_char_bpe(word_counts, num_merges)
    ids = {symbol: index for index, symbol in enumerate(sorted({s for word in word_counts for s in word}))}
    for left, right in merges:
        ids.setdefault(left + right, len(ids))
    ranks = merge_ranks(merges)
    id_ranks = {(ids[left], ids[right]): rank for (left, right), rank in ranks.items()}
    merged = {(ids[left], ids[right]): ids[left + right] for left, right in ranks}
    for word in word_counts:
        by_symbols = apply_ranks(word, ranks)
        assert apply_ranks([ids[s] for s in word], id_ranks, merged) == tuple(ids[s] for s in by_symbols)


def test_a_byte_bpe_segments_each_piece_as_the_merge_routine_does_on_its_bytes(story_text):
    tokenizer = ByteBPE().train(story_text, vocab_size=400)
    ranks = merge_ranks(tokenizer.merges)
    for piece in sorted(set(regex.findall(GPT2_SPLIT_PATTERN, story_text)))[:300]:
        symbols = apply_ranks([bytes([byte]) for byte in piece.encode("utf-8")], ranks)
        assert b"".join(tokenizer.vocab[i] for i in tokenizer.encode(piece)) == piece.encode("utf-8")
        assert [tokenizer.vocab[i] for i in tokenizer.encode(piece)] == list(symbols)


def test_training_stops_early_when_every_word_is_one_symbol():
    merges = train_incremental({("a", "b"): 1, ("c",): 4}, 10)
    assert merges == train_naive({("a", "b"): 1, ("c",): 4}, 10) == [("a", "b")]


@pytest.fixture(scope="module")
def story_text() -> str:
    from course_lib.data.stories import generate_stories

    return "\n".join(story.text for story in generate_stories(60, seed=3))


def test_trainers_agree_on_the_story_corpus(story_text):
    byte_words = ByteBPE().word_counts(story_text)
    assert train_incremental(byte_words, 300) == train_naive(byte_words, 300)
    char_words = word_counts_from_text(story_text)
    assert train_incremental(char_words, 300) == train_naive(char_words, 300)


def test_verbose_training_reports_each_merge(capsys):
    train_incremental(SENNRICH_VOCAB, 2, verbose=True)
    train_naive(SENNRICH_VOCAB, 2, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == lines[2] == "merge 1/2: 'e' + 's' -> 'es' (9 occurrences)"
    assert lines[1] == lines[3]


@pytest.mark.parametrize("module_name", ["training", "char_bpe", "byte_bpe", "gpt2_files"])
def test_docstring_examples_hold(module_name):
    import importlib

    module = importlib.import_module(f"course_lib.bpe.{module_name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------- bad input


def test_bad_word_counts_get_clear_errors():
    with pytest.raises(TypeError, match="tuples of symbols"):
        get_pair_counts({"low": 5})
    with pytest.raises(ValueError, match="positive integers"):
        merge_pair({("l", "o"): 0}, ("l", "o"))
    with pytest.raises(TypeError, match="dict"):
        train_char_bpe([("l", "o")], 3)
    with pytest.raises(TypeError, match="one type"):
        train_incremental({("l", b"o"): 1}, 3)
    with pytest.raises(ValueError, match="num_merges"):
        train_naive(SENNRICH_VOCAB, -1)
    with pytest.raises(TypeError, match="two symbols"):
        merge_pair(SENNRICH_VOCAB, ("e", "s", "t"))
    with pytest.raises(ValueError, match="single symbol"):
        merge_step({("low",): 3})
    with pytest.raises(TypeError, match="tuple of symbols"):
        apply_merges("lower", [("l", "o")])
