"""Evaluating language models: nats, bits and perplexity, probes of memory, and the entropy floor.

Every chapter measures its models the same way, on whole sequences that begin with the start
symbol, each read from the model's initial state::

    total nats   N = -sum_sequences sum_t ln P(x_{t+1} | x_1 .. x_t)     (every predicted token)
    per token    H = N / T             (T = the number of predicted tokens, padding excluded)
    bits/token   H / ln 2,             perplexity  exp(H)

:func:`nats` computes ``N`` and ``T`` for any :class:`~course_lib.language_model.LanguageModel`
(n-gram, fixed window, recurrent, and the later chapters' Transformers), in float64, batch by
batch; a :class:`Score` holds them and gives the per-token figures. The corpus's entropy floor
(:func:`floor_score`) is the row every comparison table ends with: no model can beat it on average.

Memory probes (Chapter 5) ask for the next word after a story prefix whose answer was stated far
back: :func:`score_probes` gives each candidate's probability, :func:`probe_accuracy` the share
answered right, :func:`probe_accuracy_by_distance` that share at each distance.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from course_lib.checks import positive_int
from course_lib.data.probes import Probe, probe_answers
from course_lib.data.program import EntropyFloor
from course_lib.data.text import Vocabulary, word_tokenize
from course_lib.language_model import LanguageModel, WindowLanguageModel
from course_lib.runtime import evaluation_mode

__all__ = [
    "ProbeScore",
    "Score",
    "check_vocabulary",
    "cross_entropy",
    "floor_score",
    "last_token_log_probs",
    "nats",
    "padded",
    "probe_accuracy",
    "probe_accuracy_by_distance",
    "score_probes",
    "sequence_totals",
]


@dataclass(frozen=True)
class Score:
    """``total_nats`` = -sum of ln P over ``tokens`` predicted tokens."""

    total_nats: float
    tokens: int

    @property
    def nats_per_token(self) -> float:
        return self.total_nats / self.tokens

    @property
    def bits_per_token(self) -> float:
        return self.nats_per_token / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_token)

    def nats_per(self, units: int) -> float:
        """The total spread over other units: per character for a word model, per word for a
        character model (the same stories cost the same nats whatever they are cut into)."""
        return self.total_nats / positive_int("units", units)


def floor_score(floor: EntropyFloor) -> Score:
    """The entropy floor of a split as a :class:`Score`: the generator's own nats on it."""
    return Score(floor.nats * floor.units, floor.units)


def check_vocabulary(model: LanguageModel, vocabulary: Vocabulary) -> None:
    """Refuse a vocabulary that is not the one ``model`` predicts over."""
    if not isinstance(model, LanguageModel):
        raise TypeError(f"model must be a LanguageModel (n-gram, FixedWindowLM, RecurrentLM, ...), "
                        f"got {type(model).__name__}")
    if not isinstance(vocabulary, Vocabulary):
        raise TypeError(f"vocabulary must be a Vocabulary, got {type(vocabulary).__name__}")
    if model.vocab_size != len(vocabulary):
        raise ValueError(f"the model predicts {model.vocab_size} tokens but the vocabulary has {len(vocabulary)}; "
                         "pass the vocabulary the model was trained with")


def padded(sequences: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Sequences of ids as one ``(batch, longest)`` tensor, padded on the right with id 0, and each
    sequence's length ``(batch,)``. A causal model reads left to right, so what follows a sequence's
    end changes nothing at its real positions."""
    if isinstance(sequences, (str, Tensor)) or not sequences:
        raise ValueError("sequences must be a non-empty list of id sequences")
    lengths = torch.tensor([len(sequence) for sequence in sequences])
    if int(lengths.min()) < 1:
        raise ValueError("every sequence needs at least its start symbol")
    ids = torch.zeros(len(sequences), int(lengths.max()), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.as_tensor(list(sequence), dtype=torch.long)
    return ids, lengths


def nats(model: LanguageModel, sequences: Sequence[Sequence[int]], batch_size: int = 50) -> Score:
    """-sum ln P(x_{t+1} | x_1 .. x_t) over every position after the first of every sequence.

    Each sequence starts with the start symbol and is read from the initial state; the sum is
    taken in float64. The model is evaluated in eval mode and left in the mode it came in.
    """
    batch_size = positive_int("batch_size", batch_size)
    if isinstance(sequences, (str, Tensor)) or not sequences:
        raise ValueError("sequences must be a non-empty list of id sequences")
    if any(len(sequence) < 2 for sequence in sequences):
        raise ValueError("every sequence needs at least two ids (an input and the token it predicts)")
    total, count = 0.0, 0
    with evaluation_mode(model):
        for start in range(0, len(sequences), batch_size):
            ids, lengths = padded(sequences[start : start + batch_size])
            log_probs = model.token_log_probs(ids).double()  # (batch, longest - 1)
            predicted = torch.arange(ids.shape[1] - 1)[None, :] < (lengths[:, None] - 1)
            total -= float(log_probs[predicted].sum())
            count += int(predicted.sum())
    return Score(total, count)


def sequence_totals(model: LanguageModel, sequences: Sequence[Sequence[int]], batch_size: int = 50) -> list[float]:
    """-ln P(sequence) for each sequence: the sum of -ln P(x_{t+1} | x_1 .. x_t) over its positions."""
    batch_size = positive_int("batch_size", batch_size)
    if isinstance(sequences, (str, Tensor)) or not sequences:
        raise ValueError("sequences must be a non-empty list of id sequences")
    totals: list[float] = []
    with evaluation_mode(model):
        for start in range(0, len(sequences), batch_size):
            ids, lengths = padded(sequences[start : start + batch_size])
            log_probs = model.token_log_probs(ids).double()  # (batch, longest - 1)
            predicted = torch.arange(ids.shape[1] - 1)[None, :] < (lengths[:, None] - 1)
            totals += (-(log_probs * predicted)).sum(dim=1).tolist()
    return totals


def cross_entropy(model: LanguageModel, sequences: Sequence[Sequence[int]], batch_size: int = 50) -> float:
    """Nats per predicted token over all the sequences (a mean over tokens, not over sequences)."""
    return nats(model, sequences, batch_size).nats_per_token


def last_token_log_probs(model: LanguageModel, contexts: Sequence[Sequence[int]], batch_size: int = 100) -> Tensor:
    """``ln P(. | context)`` after each whole context (of any lengths): ``(contexts, vocab)``.

    A model that sees only its last ``context_size`` tokens (:class:`WindowLanguageModel`) scores
    one window per context, the one that ends it, instead of every position on the way."""
    batch_size = positive_int("batch_size", batch_size)
    rows = []
    with evaluation_mode(model):
        for start in range(0, len(contexts), batch_size):
            ids, lengths = padded(contexts[start : start + batch_size])
            if isinstance(model, WindowLanguageModel):
                windows = model.windows(ids, model.initial_state(len(lengths)), model.context_size)
                log_probs = model.window_log_probs(windows[torch.arange(len(lengths)), lengths - 1])
                rows.append(log_probs.double())
                continue
            log_probs = model.sequence_log_probs(ids)  # (batch, longest, vocab)
            rows.append(log_probs[torch.arange(len(lengths)), lengths - 1].double())
    return torch.cat(rows)


# ---------------------------------------------------------------------------------------------
# Memory probes
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProbeScore:
    """A model's next-token probabilities after one probe's prompt, for the candidate answers.

    ``probabilities[i]`` is ``P(candidates[i] | prompt)`` under the model's distribution over the
    whole vocabulary; ``choice`` is the most probable candidate, so ``correct`` compares the answers
    of the right kind only and chance is ``1 / len(candidates)`` (``chance_accuracy``).
    """

    probe: Probe
    candidates: tuple[str, ...]
    probabilities: tuple[float, ...]

    @property
    def choice(self) -> str:
        return self.candidates[max(range(len(self.candidates)), key=self.probabilities.__getitem__)]

    @property
    def correct(self) -> bool:
        return self.choice == self.probe.answer

    @property
    def answer_probability(self) -> float:
        return self.probabilities[self.candidates.index(self.probe.answer)]


def score_probes(model: LanguageModel, vocabulary: Vocabulary, probes: Sequence[Probe],
                 batch_size: int = 100) -> list[ProbeScore]:
    """Read each probe's prompt after ``<s>`` and score the candidate answers of its kind."""
    if isinstance(probes, Probe):
        probes = [probes]
    check_vocabulary(model, vocabulary)
    unknown = sorted({answer for probe in probes for answer in probe_answers(probe.kind) if answer not in vocabulary})
    if unknown:
        raise ValueError(f"the vocabulary lacks the candidate answers {unknown}")
    bos = vocabulary.special_id("<s>")
    contexts = [[bos, *vocabulary.encode(word_tokenize(probe.prompt))] for probe in probes]
    probabilities = last_token_log_probs(model, contexts, batch_size).exp()
    scores = []
    for probe, row in zip(probes, probabilities):
        candidates = probe_answers(probe.kind)
        scores.append(ProbeScore(probe, candidates, tuple(row[vocabulary.encode(candidates)].tolist())))
    return scores


def probe_accuracy(scores: Sequence[ProbeScore]) -> float:
    """The share of probes whose most probable candidate is the answer."""
    if not scores:
        raise ValueError("probe_accuracy needs at least one scored probe")
    return sum(score.correct for score in scores) / len(scores)


def probe_accuracy_by_distance(scores: Sequence[ProbeScore], distances: Sequence[int]) -> list[float]:
    """The accuracy of the probes at each distance: entry ``i`` counts the probes whose fact lies
    at least ``distances[i]`` and less than ``distances[i + 1]`` words back (the last, at least
    ``distances[-1]``), as :func:`~course_lib.data.probes.make_probes` draws them."""
    bounds = [*distances, math.inf]
    if list(distances) != sorted(set(distances)) or not distances:
        raise ValueError(f"distances must be increasing, got {list(distances)!r}")
    accuracies = []
    for low, high in zip(bounds, bounds[1:]):
        inside = [score for score in scores if low <= score.probe.distance < high]
        if not inside:
            raise ValueError(f"no probe lies between {low} and {high} words back; "
                             "pass the distances the probes were made for")
        accuracies.append(probe_accuracy(inside))
    return accuracies
