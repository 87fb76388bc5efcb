"""course_lib.evaluate: nats, perplexity and the floor row for any protocol model, checked against a
token-by-token brute-force sum; padding adds nothing; the model's mode is restored."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_lib.data.program import EntropyFloor
from course_lib.data.probes import Probe
from course_lib.evaluate import (ProbeScore, Score, cross_entropy, floor_score, last_token_log_probs, nats,
                                 probe_accuracy, probe_accuracy_by_distance, sequence_totals)
from course_lib.language_model import LanguageModel, WindowLanguageModel
from course_lib.lstm import CELLS, recurrent_layer
from course_lib.neural_lm import FixedWindowLM
from course_lib.ngram import BOS_ID, EOS_ID, SMOOTHINGS, NGramLM
from course_lib.rnn import RecurrentLM
from course_lib.runtime import evaluation_mode

TOY = [["the", "cat", "sat"], ["the", "dog", "sat", "down"], ["a", "cat", "ran"], ["the", "cat", "ran", "down"]]


class TableLM(nn.Module, WindowLanguageModel):
    """Logits from the current token alone (a bigram table): the total is easy to compute by hand."""

    context_size = 1

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.table = nn.Embedding(vocab_size, vocab_size).double()

    def window_log_probs(self, windows):
        return torch.log_softmax(self.table(windows[:, 0]), dim=-1)


def test_nats_is_the_sum_over_every_predicted_token_of_every_sequence():
    torch.manual_seed(0)
    model = TableLM(6).train()
    sequences = [[1, 2, 3, 4, 5], [2, 1], [5, 4, 3], [0, 1, 2, 3]]
    log_p = torch.log_softmax(model.table.weight.detach().double(), dim=-1)
    expected = -sum(float(log_p[a, b]) for sequence in sequences for a, b in zip(sequence, sequence[1:]))
    for batch_size in (1, 3, 50):  # batches of unequal lengths are padded, and padding adds nothing
        score = nats(model, sequences, batch_size=batch_size)
        assert score.total_nats == pytest.approx(expected, rel=1e-12)
        assert score.tokens == sum(len(sequence) - 1 for sequence in sequences)
    assert model.training  # back in the mode it came in


def test_nats_errors():
    with pytest.raises(ValueError, match="non-empty"):
        nats(TableLM(3), [])
    with pytest.raises(ValueError, match="batch_size"):
        nats(TableLM(3), [[1, 2]], batch_size=0)
    with pytest.raises(ValueError, match="at least two ids"):
        nats(TableLM(3), [[1, 2], [1]])


def _models() -> dict[str, LanguageModel]:
    torch.manual_seed(3)
    ngrams = {f"ngram-{s}": NGramLM(3, s).fit(TOY) for s in SMOOTHINGS if s != "mle"}
    recurrent = {cell: RecurrentLM(10, recurrent_layer(cell, 4, 5, fused=True)) for cell in CELLS}
    return {**ngrams, "fixed-window": FixedWindowLM(10, 3, 4, 6), **recurrent}


@pytest.mark.parametrize("name", list(_models()))
def test_nats_of_every_model_kind_equal_the_brute_force_sum_of_its_steps(name):
    model = _models()[name]
    sequences = [[BOS_ID, 4, 7, 3, EOS_ID], [BOS_ID, 5, EOS_ID], [BOS_ID, 9, 9, 8, 4, 3, 6, EOS_ID]]
    expected = 0.0
    with torch.no_grad():
        for sequence in sequences:  # one token at a time, from the initial state, no padding
            state = model.initial_state(1)
            for token, following in zip(sequence, sequence[1:]):
                log_probs, state = model.step(torch.tensor([token]), state)
                expected -= float(log_probs[0, following])
    score = nats(model, sequences, batch_size=2)
    assert score.tokens == sum(len(s) - 1 for s in sequences)
    assert score.total_nats == pytest.approx(expected, rel=1e-5)
    assert cross_entropy(model, sequences) == pytest.approx(expected / score.tokens, rel=1e-5)


def test_an_ngram_model_scores_its_stories_as_its_string_api_does():
    model = NGramLM(3, "kneser_ney").fit(TOY)
    stories = [["the", "cat", "ran"], ["a", "dog", "sat", "down", "unicorn"]]
    score = nats(model, [[BOS_ID, *model.encode(s), EOS_ID] for s in stories])
    assert score.nats_per_token == pytest.approx(model.cross_entropy(stories), rel=1e-12)
    assert score.perplexity == pytest.approx(model.perplexity(stories), rel=1e-12)


def test_a_score_gives_bits_perplexity_and_a_per_unit_figure():
    score = Score(total_nats=20 * math.log(2), tokens=10)
    assert score.nats_per_token == pytest.approx(2 * math.log(2))
    assert score.bits_per_token == pytest.approx(2.0)
    assert score.perplexity == pytest.approx(4.0)
    assert score.nats_per(40) == pytest.approx(score.total_nats / 40)
    floor = floor_score(EntropyFloor(nats=1.5, unit="token", units=200))
    assert (floor.total_nats, floor.tokens, floor.nats_per_token) == (300.0, 200, 1.5)


def test_last_token_log_probs_read_each_context_to_its_own_end():
    torch.manual_seed(4)
    model = RecurrentLM(8, recurrent_layer("gru", 3, 4))
    contexts = [[1, 2, 3, 4], [1, 5], [1, 7, 7]]
    got = last_token_log_probs(model, contexts, batch_size=2)
    with torch.no_grad():
        for row, context in zip(got, contexts):
            assert torch.allclose(row, model.next_token_log_probs(torch.tensor([context]))[0].double(), atol=1e-6)


def test_evaluation_mode_switches_dropout_and_gradients_off_and_restores_the_mode_even_on_error():
    model = nn.Sequential(nn.Dropout(0.5)).train()
    with pytest.raises(RuntimeError), evaluation_mode(model):
        assert not model.training and not torch.is_grad_enabled()
        raise RuntimeError("inside")
    assert model.training and torch.is_grad_enabled()
    with evaluation_mode(NGramLM(1, "laplace")):  # a model without modes: only gradients switch off
        assert not torch.is_grad_enabled()


def test_sequence_totals_are_each_sequences_share_of_the_nats():
    torch.manual_seed(5)
    model = TableLM(6)
    sequences = [[1, 2, 3, 4, 5], [2, 1], [5, 4, 3]]
    log_p = torch.log_softmax(model.table.weight.detach(), dim=-1)
    expected = [-sum(float(log_p[a, b]) for a, b in zip(s, s[1:])) for s in sequences]
    totals = sequence_totals(model, sequences, batch_size=2)
    assert totals == pytest.approx(expected, rel=1e-12)
    assert sum(totals) == pytest.approx(nats(model, sequences).total_nats, rel=1e-12)


def _score(distance: int, correct: bool) -> ProbeScore:
    probe = Probe(prompt="It was", answer="red", distance=distance, kind="colour")
    return ProbeScore(probe, ("red", "blue"), (0.9, 0.1) if correct else (0.1, 0.9))


def test_probe_accuracy_by_distance_bins_the_probes_from_each_distance_to_the_next():
    scores = [_score(16, True), _score(31, False), _score(32, True), _score(40, True), _score(200, False)]
    assert probe_accuracy_by_distance(scores, (16, 32, 64)) == [0.5, 1.0, 0.0]
    assert probe_accuracy(scores) == 0.6
    with pytest.raises(ValueError, match="no probe lies between 64 and 128"):
        probe_accuracy_by_distance(scores, (16, 64, 128, 192))
    with pytest.raises(ValueError, match="increasing"):
        probe_accuracy_by_distance(scores, (32, 16))


@pytest.mark.parametrize("make_model", [
    lambda: NGramLM(3, "kneser_ney").fit(TOY),
    lambda: FixedWindowLM(9, 3, 4, 5),
])
def test_a_window_models_last_token_log_probs_equal_reading_every_position(make_model):
    """The window path scores only each context's last window; reading the whole context gives
    the same row, for contexts shorter than, as long as and longer than the window."""
    torch.manual_seed(6)
    model = make_model()
    contexts = [[BOS_ID], [BOS_ID, 3], [BOS_ID, 3, 4], [BOS_ID, 4, 3, 5, 3, 4, 6], [BOS_ID, 5, 5, 5, 3]]
    got = last_token_log_probs(model, contexts, batch_size=2)
    with evaluation_mode(model):
        for row, context in zip(got, contexts):
            expected = model.sequence_log_probs(torch.tensor([context]))[0, -1].double()
            torch.testing.assert_close(row, expected, rtol=0, atol=1e-6)  # float32 sums in another order
