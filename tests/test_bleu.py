"""BLEU from its definition equals sacrebleu's corpus BLEU on the same tokenised text."""
import math

import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.bleu import brevity_penalty, clipped_matches, corpus_bleu

WORDS = list("abcdef")
sentence = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12)


def _sacrebleu(candidates, references, smoothing):
    reference_streams = [[" ".join(r) for r in references]]
    return sacrebleu.corpus_bleu([" ".join(c) for c in candidates], reference_streams,
                                 tokenize="none", smooth_method=smoothing, force=True)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(sentence, sentence), min_size=1, max_size=8), st.sampled_from(["none", "exp"]))
def test_equals_sacrebleu_on_random_corpora(pairs, smoothing):
    candidates, references = [c for c, _ in pairs], [r for _, r in pairs]
    ours = corpus_bleu(candidates, references, smoothing=smoothing)
    theirs = _sacrebleu(candidates, references, smoothing)
    assert math.isclose(ours.score, theirs.score, rel_tol=1e-9, abs_tol=1e-9)
    assert list(ours.matches) == theirs.counts and list(ours.totals) == theirs.totals
    assert math.isclose(ours.brevity_penalty, theirs.bp, rel_tol=1e-12)


def test_several_references_take_the_closest_length_and_the_most_generous_clip():
    candidates = [["the", "cat", "the", "cat", "on", "mat"]]
    references = [[["the", "cat", "is", "on", "the", "mat"], ["there", "is", "a", "cat", "on", "the", "mat"]]]
    ours = corpus_bleu(candidates, references, smoothing="exp")
    theirs = sacrebleu.corpus_bleu([" ".join(candidates[0])], [[" ".join(references[0][0])], [" ".join(references[0][1])]],
                                   tokenize="none", smooth_method="exp")
    assert math.isclose(ours.score, theirs.score, rel_tol=1e-9)
    assert ours.reference_length == 6


def test_clipping_by_hand():
    # Papineni et al.'s example: "the the the the the the the" against "the cat is on the mat" -> 2/7
    assert clipped_matches(["the"] * 7, [["the", "cat", "is", "on", "the", "mat"]], 1) == (2, 7)


def test_a_perfect_translation_scores_100_and_brevity_is_penalised():
    sentence_ = "the dog saw a red ball in the park".split()
    assert corpus_bleu([sentence_], [sentence_]).score == pytest.approx(100.0)
    assert brevity_penalty(5, 10) == pytest.approx(math.exp(-1.0))
    assert brevity_penalty(0, 10) == 0.0 and brevity_penalty(11, 10) == 1.0


def test_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match="not strings; tokenise first"):
        corpus_bleu("a b", "a b")
    with pytest.raises(ValueError, match="2 candidates but 1 references"):
        corpus_bleu([["a"], ["b"]], [["a"]])
    with pytest.raises(TypeError, match="candidate 0 must be a list of str tokens"):
        corpus_bleu([[1, 2]], [["a"]])
    with pytest.raises(ValueError, match="smoothing must be one of"):
        corpus_bleu([["a"]], [["a"]], smoothing="floor")
