"""Every model of the course keeps the language-model protocol, and the sampler draws from it."""
from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
import torch

from course_lib.cnn_lm import CNNLM, CachedCNNLM, CNNLMConfig
from course_lib.gpt import GPT, GPTConfig
from course_lib.language_model import LanguageModel, continue_sequences, sample
from course_lib.lstm import CELLS, recurrent_layer
from course_lib.neural_lm import FixedWindowLM
from course_lib.ngram import BOS_ID, EOS_ID, SMOOTHINGS, NGramLM
from course_lib.rnn import RecurrentLM
from course_lib.transformer import TransformerLM, TransformerLMConfig

TOY = [["the", "cat", "sat"], ["the", "dog", "sat", "down"], ["a", "cat", "ran"], ["the", "cat", "ran", "down"]]


def _ngram(smoothing: str, order: int = 3) -> NGramLM:
    return NGramLM(order, smoothing).fit(TOY)


def _recurrent(cell: str, fused: bool) -> RecurrentLM:
    torch.manual_seed(1)
    return RecurrentLM(9, recurrent_layer(cell, 4, 6, num_layers=2, fused=fused)).double()


def _fixed_window() -> FixedWindowLM:
    torch.manual_seed(2)
    return FixedWindowLM(9, 3, 4, 8).double()


def _convolutional() -> CNNLM:
    torch.manual_seed(3)  # receptive field R = 4: the 7-token sequences overflow the window
    return CNNLM(CNNLMConfig(9, d_model=6, kernel_size=2, dilations=(1, 2))).double()


def _transformer(positions: str, fused: bool) -> TransformerLM:
    torch.manual_seed(3)
    return TransformerLM(TransformerLMConfig(9, d_model=8, num_heads=2, num_layers=2, positions=positions,
                                             max_context=16, fused=fused)).double()


MODELS = {
    **{f"ngram-{smoothing}": (lambda s=smoothing: _ngram(s)) for smoothing in SMOOTHINGS},
    "ngram-unigram": lambda: _ngram("kneser_ney", order=1),
    "fixed-window": _fixed_window,
    "cnn": _convolutional,
    "cnn-cached": lambda: CachedCNNLM(_convolutional()),
    **{f"{cell}{'-fused' if fused else ''}": (lambda c=cell, f=fused: _recurrent(c, f))
       for cell in CELLS for fused in (False, True)},
    "transformer-learned": lambda: _transformer("learned", fused=True),
    "transformer-sinusoidal-written-out": lambda: _transformer("sinusoidal", fused=False),
    "gpt": lambda: GPT(GPTConfig(9, d_model=8, num_heads=2, num_layers=2, max_context=16)).double(),
}


def _sequences(model: LanguageModel) -> torch.Tensor:
    """Three sequences of equal length that start with the start symbol; for an n-gram model,
    training sequences (so that even MLE has seen every context)."""
    if isinstance(model, NGramLM):
        rows = [[BOS_ID, *model.encode(tokens[:3]), EOS_ID] for tokens in (TOY[0], TOY[2], TOY[3])]
        return torch.tensor(rows)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.vocab_size, (3, 7), generator=generator)
    ids[:, 0] = 1  # the start symbol
    return ids


def _step_by_step(model: LanguageModel, ids: torch.Tensor, state=None) -> tuple[torch.Tensor, object]:
    state = model.initial_state(ids.shape[0]) if state is None else state
    rows = []
    for tokens in ids.unbind(dim=1):
        log_probs, state = model.step(tokens, state)
        rows.append(log_probs)
    return torch.stack(rows, dim=1), state


@pytest.fixture(params=list(MODELS), ids=list(MODELS))
def model(request) -> LanguageModel:
    return MODELS[request.param]()


def test_step_by_step_equals_the_whole_sequence_at_once(model):
    ids = _sequences(model)
    with torch.no_grad():
        whole = model.sequence_log_probs(ids)
        stepped, _ = _step_by_step(model, ids)
    assert whole.shape == (*ids.shape, model.vocab_size)
    assert torch.allclose(stepped, whole, atol=1e-6, rtol=0)


def test_every_row_is_a_distribution(model):
    with torch.no_grad():  # (nothing follows the n-gram's </s>: MLE has no distribution there)
        log_probs = model.sequence_log_probs(_sequences(model)[:, :-1])
    assert torch.allclose(torch.logsumexp(log_probs.double(), dim=-1), torch.zeros(log_probs.shape[:2],
                                                                                   dtype=torch.float64), atol=1e-9)


def test_the_log_probabilities_of_the_next_tokens_are_those_of_the_whole_distributions(model):
    ids = _sequences(model)
    with torch.no_grad():
        whole = model.sequence_log_probs(ids)[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
        assert torch.allclose(model.token_log_probs(ids), whole, atol=1e-9)
        assert torch.allclose(model.next_token_log_probs(ids[:, :4]), model.sequence_log_probs(ids)[:, 3], atol=1e-9)


def test_selecting_rows_of_a_state_equals_running_the_sub_batch(model):
    ids = _sequences(model)
    index = torch.tensor([2, 0, 2])  # reordered, with a repeat, as beam search does
    with torch.no_grad():
        _, state = _step_by_step(model, ids[:, :3])
        continued, _ = _step_by_step(model, ids[index, 3:], model.select_state(state, index))
        alone, _ = _step_by_step(model, ids[index])
    assert torch.allclose(continued, alone[:, 3:], atol=1e-6, rtol=0)


def test_the_ngram_id_view_gives_the_probabilities_of_the_string_view():
    model = _ngram("kneser_ney")
    tokens = ["the", "cat", "ran", "unicorn"]
    ids = torch.tensor([[BOS_ID, *model.encode(tokens), EOS_ID]])
    got = model.token_log_probs(ids)[0]
    expected = [model.logprob(w, tokens[:t]) for t, w in enumerate([*tokens, "</s>"])]
    assert torch.allclose(got, torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    assert math.isclose(float(got.sum()), model.sequence_logprob(tokens), abs_tol=1e-12)
    assert model.decode(model.encode(["the", "unicorn"])) == ["the", "<unk>"]


def test_the_fixed_window_protocol_pads_with_the_start_symbol_as_context_windows_does():
    from course_lib.neural_lm import context_windows, log_softmax

    model = _fixed_window()
    story = [4, 7, 2, 8, 5]
    contexts, targets = context_windows(story, 3, boundary_id=1)
    with torch.no_grad():
        expected = log_softmax(model(contexts)).gather(-1, targets[:, None]).squeeze(-1)
        got = model.token_log_probs(torch.tensor([[1, *story]]))[0]
    assert torch.allclose(got, expected, atol=1e-12)


def test_bad_ids_are_refused_with_the_shape_or_range_expected():
    model = _fixed_window()
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        model.sequence_log_probs(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"\[0, 9\)"):
        model.sequence_log_probs(torch.tensor([[1, 9]]))
    with pytest.raises(TypeError, match="integer tensor"):
        model.sequence_log_probs(torch.zeros(1, 2))


# ---------------------------------------------------------------------------------------------
# Ancestral sampling
# ---------------------------------------------------------------------------------------------
class MarkovChain(LanguageModel):
    """A first-order chain over ids 0..3 (0 = start, 3 = end) that gives only ``step``: the
    protocol's defaults do the rest."""

    vocab_size = 4
    TRANSITIONS = torch.tensor([[0.0, 0.5, 0.3, 0.2], [0.0, 0.1, 0.6, 0.3], [0.0, 0.7, 0.1, 0.2],
                                [0.25, 0.25, 0.25, 0.25]], dtype=torch.float64)

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, dtype=torch.long)

    def step(self, tokens, state):
        return self.TRANSITIONS[tokens].log(), tokens


def _exact_probability(sequence: tuple[int, ...], temperature: float, max_tokens: int) -> float:
    """P(the sampler returns ``sequence``), by the chain rule over the tempered transitions."""
    tempered = MarkovChain.TRANSITIONS ** (1 / temperature)
    tempered = tempered / tempered.sum(dim=1, keepdim=True)
    p, previous = 1.0, 0
    for token in sequence:
        p *= float(tempered[previous, token])
        previous = token
    return p * (float(tempered[previous, 3]) if len(sequence) < max_tokens else 1.0)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_samples_follow_the_tempered_chain_rule_by_brute_force(temperature):
    draws = 3000
    counts = Counter(tuple(sample(MarkovChain(), [0], max_tokens=3, stop_id=3, temperature=temperature, seed=seed))
                     for seed in range(draws))
    possible = [s for n in range(4) for s in itertools.product((1, 2), repeat=n)]
    assert math.isclose(sum(_exact_probability(s, temperature, 3) for s in possible), 1.0, abs_tol=1e-12)
    assert set(counts) <= set(possible)
    for sequence in possible:
        p = _exact_probability(sequence, temperature, 3)
        assert abs(counts[sequence] / draws - p) <= 4 * math.sqrt(p * (1 - p) / draws) + 1e-9, sequence


def test_sampling_is_seeded_stops_before_the_stop_token_and_after_max_tokens():
    chain = MarkovChain()
    assert sample(chain, [0], max_tokens=20, stop_id=3, seed=5) == sample(chain, [0], max_tokens=20, stop_id=3, seed=5)
    assert len({tuple(sample(chain, [0], max_tokens=20, stop_id=3, seed=s)) for s in range(10)}) > 1
    assert all(len(sample(chain, [0], max_tokens=2, seed=s)) == 2 for s in range(5))
    assert 3 not in sample(chain, [0], max_tokens=50, stop_id=3, seed=0)
    certain = NGramLM(2, "mle").fit([["a", "b", "c"]])
    assert certain.decode(sample(certain, [BOS_ID], max_tokens=10, stop_id=EOS_ID)) == ["a", "b", "c"]


def test_the_generation_loop_ends_each_row_on_its_own():
    """Row 0 picks 1, 2, 3 (3 is a stop id); row 1 picks 2 again and again until ``ends`` says so."""
    seen = []

    def choose(log_probs, chosen):
        seen.append(tuple(chosen.shape))
        return torch.tensor([chosen.shape[1] % 4 + 1, 2])

    rows = continue_sequences(MarkovChain(), torch.tensor([[0, 1], [0, 2]]), choose, max_tokens=9, stop_ids=(3,),
                              ends=lambda tokens: sum(tokens) >= 5)
    assert rows == [[1, 2], [2, 2, 2]]
    assert seen == [(2, 0), (2, 1), (2, 2)]
    assert continue_sequences(MarkovChain(), torch.tensor([[0]]), choose, max_tokens=0) == [[]]


@pytest.mark.parametrize("kwargs, error, words", [
    ({"prompt": []}, TypeError, "non-empty"),
    ({"prompt": [0, 4]}, ValueError, "prompt id"),
    ({"max_tokens": -1}, ValueError, "max_tokens"),
    ({"temperature": 0.0}, ValueError, "temperature"),
    ({"stop_id": 7}, ValueError, "stop_id"),
    ({"seed": -1}, ValueError, "seed"),
])
def test_the_sampler_rejects_bad_settings(kwargs, error, words):
    arguments = {"prompt": [0], "max_tokens": 3, **kwargs}
    with pytest.raises(error, match=words):
        sample(MarkovChain(), arguments.pop("prompt"), **arguments)
