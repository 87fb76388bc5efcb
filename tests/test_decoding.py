"""Chapter 8's decoding: processors against transformers', beam search against exhaustive search,
sampling against the distribution, and every model kind of the course decoding through the protocol."""
import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
                          TopPLogitsWarper)

from course_lib.decoding import (FrequencyPresencePenalty, RepetitionPenalty, Stopping, Temperature, TopK, TopP,
                                 beam_search, generate, greedy, most_probable_continuation, process, sample,
                                 sampling_processors)
from course_lib.language_model import LanguageModel
from course_lib.language_model import sample as ancestral_sample
from course_lib.lstm import LSTM, recurrent_layer
from course_lib.ngram import BOS_ID, EOS_ID, NGramLM
from course_lib.rnn import RecurrentLM
from course_lib.seq2seq import Encoder, Seq2Seq
from course_lib.transformer import TransformerLM, TransformerLMConfig

NO_IDS = torch.zeros(1, 0, dtype=torch.long)


class HistoryLM(LanguageModel):
    """A toy protocol model whose next-token distribution is any function of the whole history
    (start symbol included): its state is the history ``(batch, t)``."""

    def __init__(self, vocab_size: int, next_log_probs) -> None:
        self.vocab_size = vocab_size
        self.next_log_probs = next_log_probs          # tuple of ids -> (vocab,) float64 log-probs

    def initial_state(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, 0, dtype=torch.long)

    def step(self, tokens, state):
        history = torch.cat([state, tokens[:, None]], dim=1)
        return torch.stack([self.next_log_probs(tuple(row)) for row in history.tolist()]), history


def random_history_lm(vocab_size: int, seed: int) -> HistoryLM:
    """Every history gets its own random distribution, fixed by ``seed`` (ties have probability 0)."""
    cache = {}

    def next_log_probs(history):
        if history not in cache:
            generator = torch.Generator().manual_seed(hash((seed, history)) % 2**31)
            cache[history] = torch.log_softmax(2 * torch.randn(vocab_size, generator=generator, dtype=torch.float64), 0)
        return cache[history]
    return HistoryLM(vocab_size, next_log_probs)


@torch.no_grad()
def sequence_log_prob(model: LanguageModel, prompt: list[int], tokens) -> float:
    log_probs = model.token_log_probs(torch.tensor([[*prompt, *tokens]]))[0, len(prompt) - 1:]
    return float(log_probs.double().sum())


# ---------------------------------------------------------------------------------------------
# Processors against transformers'
# ---------------------------------------------------------------------------------------------
def _random_logits(seed=0, batch=4, vocab=50):
    return torch.randn(batch, vocab, generator=torch.Generator().manual_seed(seed)) * 3


ADVERSARIAL = {
    "random": _random_logits(),
    "ties at the boundary": torch.tensor([[3.0, 2.0, 2.0, 2.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]),
    "minus infinity": torch.tensor([[2.0, -math.inf, 0.5, -math.inf, 1.0, 0.5]]),
    "one token": torch.tensor([[0.7], [-2.0]]),
    "two equal tokens": torch.tensor([[0.0, 0.0]]),
}


def _same_and_untouched(ours, theirs, logits, generated=NO_IDS):
    generated = generated.expand(logits.shape[0], -1) if generated.shape[0] == 1 else generated
    before = logits.clone()
    expected = theirs(generated, logits.clone())
    got = ours(logits, generated)
    assert torch.equal(logits, before), "a processor modified its input in place"
    assert torch.equal(got, expected)


@pytest.mark.parametrize("case", ADVERSARIAL)
@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.5])
def test_temperature_equals_transformers(case, temperature):
    _same_and_untouched(Temperature(temperature), TemperatureLogitsWarper(temperature), ADVERSARIAL[case])


@pytest.mark.parametrize("case", ADVERSARIAL)
@pytest.mark.parametrize("k, keep", [(1, 1), (2, 1), (3, 1), (5, 1), (1000, 1), (1, 3)])
def test_top_k_equals_transformers(case, k, keep):
    _same_and_untouched(TopK(k, keep), TopKLogitsWarper(k, min_tokens_to_keep=keep), ADVERSARIAL[case])


def test_top_k_keeps_every_token_tied_with_the_kth():
    kept = TopK(2)(ADVERSARIAL["ties at the boundary"][:1], NO_IDS)
    assert torch.isfinite(kept).tolist() == [[True, True, True, True, False, False]]


@pytest.mark.parametrize("case", ADVERSARIAL)
@pytest.mark.parametrize("p, keep", [(1.0, 1), (0.9, 1), (0.5, 1), (0.5, 3), (0.3, 1), (1e-9, 1), (1e-9, 2)])
def test_top_p_equals_transformers(case, p, keep):
    _same_and_untouched(TopP(p, keep), TopPLogitsWarper(p, min_tokens_to_keep=keep), ADVERSARIAL[case])


@pytest.mark.parametrize("case", ADVERSARIAL)
def test_top_p_near_zero_is_transformers_at_zero_which_we_refuse(case):
    """transformers accepts p = 0 (keep ``min_tokens_to_keep`` tokens); the smallest set of mass >= 0
    is empty, so we refuse it, and the limit p -> 0 gives transformers' answer at 0."""
    _same_and_untouched(TopP(1e-12), TopPLogitsWarper(0.0), ADVERSARIAL[case])
    with pytest.raises(ValueError, match="top_p"):
        TopP(0.0)


def test_top_p_keeps_the_smallest_set_reaching_p():
    probabilities = torch.tensor([[0.5, 0.25, 0.15, 0.1]])
    for p, size in [(0.5, 1), (0.51, 2), (0.75, 2), (0.76, 3), (0.9, 3), (0.91, 4), (1.0, 4)]:
        kept = torch.isfinite(TopP(p)(probabilities.log(), NO_IDS))
        assert kept.sum() == size and kept[0, :size].all(), p


GENERATED = torch.tensor([[0, 3, 3, 5, 5, 5], [1, 1, 1, 1, 1, 1], [2, 4, 0, 3, 1, 5], [5, 2, 5, 2, 5, 2]])


@pytest.mark.parametrize("theta", [0.5, 1.0, 1.3, 4.0])
def test_repetition_penalty_equals_transformers(theta):
    logits = torch.tensor([[1.5, -0.5, 0.0, 2.0, -math.inf, -3.0]]).repeat(4, 1)
    _same_and_untouched(RepetitionPenalty(theta), RepetitionPenaltyLogitsProcessor(theta), logits, GENERATED)
    _same_and_untouched(RepetitionPenalty(theta), RepetitionPenaltyLogitsProcessor(theta),
                        _random_logits(1, 4, 6), GENERATED)


def test_repetition_penalty_follows_ctrl_on_a_known_case():
    penalised = RepetitionPenalty(2.0)(torch.tensor([[4.0, -1.0, 3.0]]), torch.tensor([[0, 1, 1]]))
    assert penalised.tolist() == [[2.0, -2.0, 3.0]]


@pytest.mark.parametrize("frequency, presence", [(0.0, 0.0), (0.7, 0.0), (0.0, 1.5), (0.4, 0.9), (-0.3, 0.2)])
def test_frequency_and_presence_penalties_follow_the_formula(frequency, presence):
    logits = _random_logits(2, 4, 6).double()
    got = FrequencyPresencePenalty(frequency, presence)(logits, GENERATED)
    for row in range(4):
        for token in range(6):
            count = GENERATED[row].tolist().count(token)
            expected = float(logits[row, token]) - count * frequency - (count > 0) * presence
            assert float(got[row, token]) == pytest.approx(expected, abs=1e-12)
    assert torch.equal(FrequencyPresencePenalty(0.5, 0.5)(logits, NO_IDS.expand(4, 0)), logits)


def test_the_chain_applies_left_to_right_and_leaves_its_input_alone():
    logits = _random_logits(3, 2, 20)
    before = logits.clone()
    chain = sampling_processors(temperature=0.7, top_k=8, top_p=0.8, frequency_penalty=0.3,
                                presence_penalty=0.2, repetition_penalty=1.2)
    generated = torch.tensor([[1, 2, 2], [3, 3, 3]])
    expected = logits
    for theirs in [FrequencyPresencePenalty(0.3, 0.2), RepetitionPenaltyLogitsProcessor(1.2),
                   TemperatureLogitsWarper(0.7), TopKLogitsWarper(8), TopPLogitsWarper(0.8)]:
        expected = theirs(expected, generated) if isinstance(theirs, FrequencyPresencePenalty) else theirs(
            generated, expected)
    assert torch.equal(process(logits, generated, chain), expected)
    assert torch.equal(logits, before)


@pytest.mark.parametrize("make, message", [
    (lambda: Temperature(0), "temperature"), (lambda: Temperature(-1.0), "temperature"),
    (lambda: TopP(0.0), "top_p"), (lambda: TopP(1.01), "top_p"), (lambda: TopP(-0.5), "top_p"),
    (lambda: TopK(0), "k"), (lambda: TopK(2.5), "k"), (lambda: TopK(True), "k"),
    (lambda: RepetitionPenalty(0.0), "theta"), (lambda: FrequencyPresencePenalty(math.nan), "frequency"),
    (lambda: Stopping(-1), "max_tokens"), (lambda: Stopping(5, stop_strings=("x",)), "detokenize"),
])
def test_bad_arguments_get_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_decoding_arguments_get_clear_errors():
    model = random_history_lm(3, 0)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(model, [0], beam_width=0, max_tokens=3)
    with pytest.raises(ValueError, match="length_penalty"):
        beam_search(model, [0], beam_width=2, max_tokens=3, length_penalty=-1)
    with pytest.raises(ValueError, match="temperature"):
        sample(model, [0], max_tokens=3, temperature=-0.5)
    with pytest.raises(ValueError, match="prompt"):
        sample(model, "abc", max_tokens=3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        greedy(model, [0, 7], max_tokens=3)


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------
CHI_SQUARE_CRITICAL_5_DOF_0_001 = 20.515  # the 99.9% quantile of chi-square with 5 degrees of freedom


def test_sampling_matches_the_processed_distribution():
    """Draw 20 000 first tokens with top-k 6 and temperature 0.8 and compare the counts with the
    processed distribution by Pearson's chi-square (5 degrees of freedom). A correct sampler fails
    with probability 0.1% (the false-alarm rate of the critical value 20.515); the seed is fixed,
    so the outcome is too. Tokens top-k removed must never be drawn."""
    table = torch.log_softmax(torch.linspace(-1.0, 1.5, 10, dtype=torch.float64) ** 2, 0)
    model = HistoryLM(10, lambda history: table)
    draws = 20_000
    drawn = sample(model, torch.zeros(draws, 1, dtype=torch.long), max_tokens=1, seed=7, top_k=6, temperature=0.8)
    counts = torch.bincount(torch.tensor([row[0] for row in drawn]), minlength=10).double()
    expected = draws * torch.softmax(process(table[None], NO_IDS, [TopK(6), Temperature(0.8)])[0], 0)
    kept = expected > 0
    assert int(kept.sum()) == 6 and counts[~kept].sum() == 0
    statistic = float(((counts[kept] - expected[kept]) ** 2 / expected[kept]).sum())
    assert statistic < CHI_SQUARE_CRITICAL_5_DOF_0_001


def test_sampling_without_processors_draws_what_the_ancestral_sampler_draws():
    model = _transformer()
    for seed in range(3):
        assert sample(model, [0, 3], max_tokens=12, seed=seed) == [ancestral_sample(model, [0, 3], max_tokens=12,
                                                                                    seed=seed)]


def test_the_same_seed_gives_the_same_text_and_temperature_zero_is_greedy():
    model = _transformer()
    first = sample(model, [0, 1], max_tokens=10, seed=4, top_p=0.9, temperature=1.3)
    assert first == sample(model, [0, 1], max_tokens=10, seed=4, top_p=0.9, temperature=1.3)
    assert first != sample(model, [0, 1], max_tokens=10, seed=5, top_p=0.9, temperature=1.3)
    assert sample(model, [0, 1], max_tokens=10, temperature=0) == greedy(model, [0, 1], max_tokens=10)


def test_removing_every_token_is_a_clear_error():
    model = HistoryLM(3, lambda history: torch.tensor([0.0, -math.inf, -math.inf]))
    with pytest.raises(ValueError, match="no token has any probability"):
        generate(model, [0], Stopping(3), processors=[lambda z, g: z - math.inf])


# ---------------------------------------------------------------------------------------------
# Stopping
# ---------------------------------------------------------------------------------------------
def test_stopping_by_count_stop_token_and_stop_string():
    counting = HistoryLM(6, lambda history: torch.log_softmax(
        torch.nn.functional.one_hot(torch.tensor((history[-1] + 1) % 6), 6).double() * 20, 0))
    assert greedy(counting, [0], max_tokens=4) == [[1, 2, 3, 4]]
    assert greedy(counting, [0], max_tokens=9, stop_ids=[4]) == [[1, 2, 3]]
    letters = "abcdef"
    stopping = Stopping(20, stop_strings=("cd",), detokenize=lambda ids: "".join(letters[i] for i in ids))
    assert generate(counting, [0], stopping) == [[1, 2, 3]]
    assert generate(counting, torch.tensor([[0], [3]]), Stopping(9, stop_ids=(5,))) == [[1, 2, 3, 4], [4]]
    assert greedy(counting, [0], max_tokens=0) == [[]]


def test_penalties_count_the_generated_tokens_unless_told_to_count_the_prompt():
    flat = HistoryLM(3, lambda history: torch.log(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)))
    presence = [FrequencyPresencePenalty(presence=10.0)]
    assert generate(flat, [0, 0], Stopping(3), processors=presence) == [[0, 1, 2]]
    assert generate(flat, [0, 0], Stopping(2), processors=presence, penalise_prompt=True) == [[1, 2]]


# ---------------------------------------------------------------------------------------------
# Beam search
# ---------------------------------------------------------------------------------------------
def exhaustive_search(model, prompt, vocab_size, max_tokens, eos_id, alpha):
    """The best ``log P(y) / |y|^α`` over every sequence: those ending at ``eos_id`` (at most
    ``max_tokens`` long, end included) and those of ``max_tokens`` without it."""
    best = -math.inf
    for length in range(1, max_tokens + 1):
        for tokens in itertools.product(range(vocab_size), repeat=length):
            if eos_id in tokens[:-1] or (length < max_tokens and tokens[-1] != eos_id):
                continue
            best = max(best, sequence_log_prob(model, prompt, tokens) / length ** alpha)
    return best


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), vocab_size=st.sampled_from([3, 4]), max_tokens=st.sampled_from([3, 4]),
       eos_id=st.sampled_from([None, 0]), alpha=st.sampled_from([0.0, 0.5, 1.0]))
def test_a_wide_enough_beam_finds_the_best_sequence(seed, vocab_size, max_tokens, eos_id, alpha):
    model = random_history_lm(vocab_size, seed)
    best = beam_search(model, [0], beam_width=vocab_size ** max_tokens, max_tokens=max_tokens, eos_id=eos_id,
                       length_penalty=alpha)[0][0]
    assert best.score == pytest.approx(exhaustive_search(model, [0], vocab_size, max_tokens, eos_id, alpha))
    assert best.log_prob == pytest.approx(sequence_log_prob(model, [0], best.tokens))
    assert best.score == pytest.approx(best.log_prob / len(best.tokens) ** alpha)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), vocab_size=st.sampled_from([3, 4]), max_tokens=st.sampled_from([3, 4]),
       eos_id=st.sampled_from([None, 1]))
def test_a_beam_of_one_is_greedy_search(seed, vocab_size, max_tokens, eos_id):
    model = random_history_lm(vocab_size, seed)
    stop_ids = () if eos_id is None else (eos_id,)
    greedy_tokens = greedy(model, [0], max_tokens=max_tokens, stop_ids=stop_ids)[0]
    best = beam_search(model, [0], beam_width=1, max_tokens=max_tokens, eos_id=eos_id)[0][0]
    assert list(best.tokens) == greedy_tokens + ([eos_id] if len(best.tokens) > len(greedy_tokens) else [])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), beam_width=st.integers(2, 5), max_tokens=st.sampled_from([3, 4]))
def test_the_beam_keeps_what_greedy_keeps_at_the_first_step(seed, beam_width, max_tokens):
    """One step: the beam holds the b most probable tokens, so it is never below greedy's first token;
    over the whole sequence, see the next test. Batched rows equal each row alone."""
    model = random_history_lm(4, seed)
    one = beam_search(model, [0], beam_width=beam_width, max_tokens=1)[0][0]
    assert one.log_prob >= sequence_log_prob(model, [0], greedy(model, [0], max_tokens=1)[0]) - 1e-12
    prompts = torch.tensor([[0, 1], [0, 2], [0, 3]])
    together = beam_search(model, prompts, beam_width=beam_width, max_tokens=max_tokens, eos_id=2, num_return=2)
    alone = [beam_search(model, row[None], beam_width=beam_width, max_tokens=max_tokens, eos_id=2, num_return=2)[0]
             for row in prompts]
    assert together == alone


def test_a_narrow_beam_can_end_below_greedy_search():
    """Beam search is a heuristic: with b = 2 the greedy prefix (A, a) is pruned at step 2 by two
    prefixes of B that lead to a flat distribution, while greedy goes on with certainty:
    greedy 0.4·0.34·1 = 0.136 against the beam's 0.35·0.5·(1/3) = 0.058."""
    A, B, C = 0, 1, 2
    table = {(): [0.4, 0.35, 0.25], (A,): [0.34, 0.33, 0.33], (B,): [1e-9, 0.5, 0.5], (A, A): [1.0, 0.0, 0.0]}
    model = HistoryLM(3, lambda history: torch.tensor(table.get(history[1:], [1 / 3] * 3), dtype=torch.float64).log())
    greedy_tokens = greedy(model, [C], max_tokens=3)[0]
    beam = beam_search(model, [C], beam_width=2, max_tokens=3)[0][0]
    assert greedy_tokens == [A, A, A] and sequence_log_prob(model, [C], greedy_tokens) == pytest.approx(math.log(0.136))
    assert beam.log_prob == pytest.approx(math.log(0.35 * 0.5 / 3))
    assert beam_search(model, [C], beam_width=27, max_tokens=3)[0][0].tokens == (A, A, A)


def test_beam_search_stops_once_no_live_sequence_can_win():
    """Certain end after one token: the pool fills at step 2 and the search stops long before 50 steps."""
    calls = []

    def next_log_probs(history):
        calls.append(history)
        return torch.tensor([0.6, 0.4, 1e-30] if len(history) == 1 else [1e-30, 1e-30, 1.0], dtype=torch.float64).log()
    model = HistoryLM(3, next_log_probs)
    pool = beam_search(model, [0], beam_width=2, max_tokens=50, eos_id=2, num_return=2)[0]
    assert [h.tokens for h in pool] == [(0, 2), (1, 2)]
    assert max(len(history) for history in calls) <= 3


def test_an_end_token_finishes_a_sequence_only_if_it_ranks_among_the_best_b():
    """b = 2. Step 2 ranks (0, 0) .30, (0, end) .20, (1, end) .18, (1, 1) .12: (0, end) ranks 2nd and
    finishes; (1, end) ranks 3rd and is dropped (as in transformers), so the pool's second place goes
    to (0, 0, 0) = .15 after the last step, not to (1, end)."""
    tiny, end = 1e-12, 2
    table = {(): [0.5, 0.3, 0.2], (0,): [0.6, tiny, 0.4], (1,): [tiny, 0.4, 0.6], (0, 0): [0.5, 0.3, 0.2],
             (1, 1): [0.6, 0.3, 0.1]}
    model = HistoryLM(3, lambda history: torch.tensor(table.get(history[1:], [1 / 3] * 3), dtype=torch.float64).log())
    pool = beam_search(model, [0], beam_width=2, max_tokens=3, eos_id=end, num_return=2)[0]
    assert [h.tokens for h in pool] == [(0, end), (0, 0, 0)]
    assert [math.exp(h.log_prob) for h in pool] == pytest.approx([0.2, 0.15])


def test_the_search_goes_on_while_a_live_sequence_can_beat_the_last_one_returned():
    """num_return = 2. After step 3 the pool holds (0, end) .2 and (0, 0, end) .075 while the live
    (0, 0, 0) has .15: it can still take second place, and does with (0, 0, 0, end) .15."""
    tiny, end = 1e-12, 2
    table = {(): [0.5, 0.3, 0.2], (0,): [0.5, 0.1, 0.4], (1,): [0.25, 0.15, 0.6], (0, 0): [0.6, 0.1, 0.3],
             (1, 0): [0.1, 0.1, 0.8], (0, 0, 0): [tiny, tiny, 1.0]}
    model = HistoryLM(3, lambda history: torch.tensor(table.get(history[1:], [1 / 3] * 3), dtype=torch.float64).log())
    pool = beam_search(model, [0], beam_width=2, max_tokens=6, eos_id=end, num_return=2)[0]
    assert [h.tokens for h in pool] == [(0, end), (0, 0, 0, end)]
    assert [math.exp(h.log_prob) for h in pool] == pytest.approx([0.2, 0.15])


def test_with_a_length_penalty_a_live_sequence_can_still_overtake_a_full_pool():
    """At step 2 both finished sequences fill the pool (b = 2): (0, end) scores log 0.42 / 2 = -0.43.
    The live (0, 0) has log P = log 0.18 = -1.71, below the pool, but goes on with certainty to
    5 tokens: -1.71 / 5 = -0.34 wins with α = 1, so the search must not stop at step 2; with α = 0
    the pool's best wins."""
    tiny, end = 1e-12, 2
    table = {(): [0.6, 0.4, tiny], (0,): [0.3, tiny, 0.7], (1,): [0.1, tiny, 0.9]}
    model = HistoryLM(3, lambda history: torch.tensor(table.get(history[1:], [1.0, tiny, tiny]),
                                                      dtype=torch.float64).log())
    per_token = beam_search(model, [0], beam_width=2, max_tokens=5, eos_id=end, length_penalty=1.0)[0][0]
    assert per_token.tokens == (0, 0, 0, 0, 0) and per_token.score == pytest.approx(math.log(0.18) / 5)
    by_probability = beam_search(model, [0], beam_width=2, max_tokens=5, eos_id=end)[0][0]
    assert by_probability.tokens == (0, end) and by_probability.score == pytest.approx(math.log(0.42))


# ---------------------------------------------------------------------------------------------
# Every model kind of the course decodes through the protocol
# ---------------------------------------------------------------------------------------------
def _transformer():
    torch.manual_seed(0)
    return TransformerLM(TransformerLMConfig(vocab_size=20, d_model=16, num_heads=2, num_layers=2)).double()


def _recurrent():
    torch.manual_seed(1)
    return RecurrentLM(9, recurrent_layer("gru", 4, 6, num_layers=2)).double()


def _ngram():
    sentences = [["the", "cat", "sat"], ["the", "dog", "sat", "down"], ["a", "cat", "ran"], ["the", "cat", "ran"]]
    return NGramLM(3, "kneser_ney").fit(sentences)


def _conditioned_decoder():
    torch.manual_seed(0)
    encoder = Encoder(11, 8, LSTM(8, 8), pad_id=0)
    model = Seq2Seq(encoder, LSTM(8, 8), 11, 8, attention="luong", pad_id=0).double().eval()
    source, lengths = torch.tensor([[5, 6, 7, 2], [9, 4, 2, 0]]), torch.tensor([4, 3])
    return model, source, lengths


# ---------------------------------------------------------------------------------------------
# Exact search
# ---------------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), vocab_size=st.sampled_from([3, 4]), max_tokens=st.sampled_from([3, 4]),
       eos_id=st.sampled_from([0, 2]))
def test_the_exact_search_finds_what_exhaustive_search_finds(seed, vocab_size, max_tokens, eos_id):
    model = random_history_lm(vocab_size, seed)
    best = most_probable_continuation(model, [0], eos_id=eos_id, max_tokens=max_tokens)
    assert best.log_prob == pytest.approx(exhaustive_search(model, [0], vocab_size, max_tokens, eos_id, 0.0))
    assert best.log_prob == pytest.approx(sequence_log_prob(model, [0], best.tokens))
    assert best.tokens[-1] == eos_id or len(best.tokens) == max_tokens
    for width in (1, 2):        # a beam never beats the exact search
        beam = beam_search(model, [0], beam_width=width, max_tokens=max_tokens, eos_id=eos_id)[0][0]
        assert beam.log_prob <= best.log_prob + 1e-12


def test_the_exact_search_beats_a_beam_that_misses_the_best_sequence():
    """Token 1 is likely first and then leads to a flat distribution; token 2 is less likely first
    and then almost surely ends: beam search of width 1 takes token 1, the exact search finds 2, 0."""
    def next_log_probs(history):
        table = {(0,): [0.0, 0.6, 0.4], (0, 1): [0.34, 0.33, 0.33], (0, 2): [0.98, 0.01, 0.01]}
        return torch.tensor(table.get(history, [1 / 3] * 3), dtype=torch.float64).log()
    model = HistoryLM(3, next_log_probs)
    best = most_probable_continuation(model, [0], eos_id=0, max_tokens=3)
    assert best.tokens == (2, 0) and best.log_prob == pytest.approx(math.log(0.4 * 0.98))
    assert beam_search(model, [0], beam_width=1, max_tokens=3, eos_id=0)[0][0].log_prob < best.log_prob


def test_the_exact_search_refuses_what_it_cannot_do():
    model = random_history_lm(3, 0)
    with pytest.raises(ValueError, match="one prompt at a time"):
        most_probable_continuation(model, torch.zeros(2, 1, dtype=torch.long), eos_id=0, max_tokens=3)
    with pytest.raises(ValueError, match="eos_id"):
        most_probable_continuation(model, [0], eos_id=3, max_tokens=3)
    unending = torch.cat([torch.full((49,), (1 - 1e-9) / 49), torch.tensor([1e-9])]).double().log()
    flat = HistoryLM(50, lambda history: unending)     # every partial sequence of 5 is a candidate
    with pytest.raises(RuntimeError, match="raise max_expansions"):
        most_probable_continuation(flat, [0], eos_id=49, max_tokens=6, max_expansions=100)


def _arg_max_by_whole_contexts(model, prompt, max_tokens, stop_id=None):
    """Greedy written with ``next_token_log_probs`` on growing contexts (no state, no step)."""
    context = list(prompt)
    for _ in range(max_tokens):
        token = int(model.next_token_log_probs(torch.tensor([context])).argmax())
        if token == stop_id:
            break
        context.append(token)
    return context[len(prompt):]


@pytest.mark.parametrize("make, prompt, stop_id", [(_transformer, [0, 4, 5], None), (_recurrent, [0, 3], 8),
                                                   (_ngram, [BOS_ID], EOS_ID)])
def test_language_models_decode_through_the_protocol(make, prompt, stop_id):
    model = make()
    stop_ids = () if stop_id is None else (stop_id,)
    tokens = greedy(model, prompt, max_tokens=8, stop_ids=stop_ids)[0]
    with torch.no_grad():
        assert tokens == _arg_max_by_whole_contexts(model, prompt, 8, stop_id)
    best = beam_search(model, prompt, beam_width=3, max_tokens=8, eos_id=stop_id)[0][0]
    assert best.log_prob == pytest.approx(sequence_log_prob(model, prompt, best.tokens))
    narrowest = beam_search(model, prompt, beam_width=1, max_tokens=8, eos_id=stop_id)[0][0]
    assert list(narrowest.tokens) == tokens + list(stop_ids[:len(narrowest.tokens) - len(tokens)])
    if stop_id is not None:
        exact = most_probable_continuation(model, prompt, eos_id=stop_id, max_tokens=8)
        assert exact.log_prob >= best.log_prob - 1e-6
        assert exact.log_prob == pytest.approx(sequence_log_prob(model, prompt, exact.tokens), abs=1e-5)
    drawn = sample(model, prompt, max_tokens=8, stop_ids=stop_ids, top_p=0.9, seed=1)[0]
    assert all(0 <= token < model.vocab_size and token not in stop_ids for token in drawn)


def test_the_ngram_model_generates_its_training_sentences_greedily_and_by_beam():
    model = _ngram()
    text = model.decode(greedy(model, [BOS_ID], max_tokens=10, stop_ids=[EOS_ID])[0])
    assert text in (["the", "cat", "sat"], ["the", "cat", "ran"])
    best = beam_search(model, [BOS_ID], beam_width=4, max_tokens=10, eos_id=EOS_ID)[0][0]
    assert model.decode(best.tokens[:-1]) in (["the", "cat", "sat"], ["the", "cat", "ran"])


def test_a_conditioned_seq2seq_decoder_decodes_and_batches():
    model, source, lengths = _conditioned_decoder()
    decoder = model.conditioned_on(source, lengths)
    bos, eos = 1, 2
    prompt = torch.full((2, 1), bos)
    expected, _ = model.greedy(source, lengths, bos_id=bos, eos_id=eos, max_length=6)
    assert greedy(decoder, prompt, max_tokens=6, stop_ids=[eos]) == expected
    together = beam_search(decoder, prompt, beam_width=3, max_tokens=6, eos_id=eos)
    for row in range(2):
        alone = beam_search(model.conditioned_on(source[row:row + 1], lengths[row:row + 1]), prompt[row:row + 1],
                            beam_width=3, max_tokens=6, eos_id=eos)[0][0]
        assert together[row][0].tokens == alone.tokens
        assert together[row][0].log_prob == pytest.approx(alone.log_prob, abs=1e-9)
    first = beam_search(decoder, prompt, beam_width=1, max_tokens=6, eos_id=eos)
    assert [list(h[0].tokens) for h in first] == [e + [eos] * (len(e) < 6) for e in expected]
