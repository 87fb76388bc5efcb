"""Decoding: from the next-token distribution to text (Chapter 8).

A language model gives ``P(. | x_1 .. x_t)``; decoding chooses the tokens. Everything here runs
through the protocol's incremental form (:mod:`course_lib.language_model`: ``initial_state``,
``read``, ``step``, ``select_state``), so the n-gram models, the recurrent LMs, the Transformer LM
and Chapter 6's conditioned decoder (``Seq2Seq.conditioned_on``) all decode the same way.

* **Logits processors** reshape the next-token scores before a choice. Each is a small callable
  ``(logits (batch, vocab), generated (batch, t)) -> logits (batch, vocab)`` that never modifies
  its input in place; a list of them is applied left to right (:func:`process`). The scores they
  receive are the model's log-probabilities, which are logits up to a constant per row:
  temperature, top-k, top-p and the frequency and presence penalties do not see the difference;
  CTRL's repetition penalty does (on log-probabilities, all ``<= 0``, it always multiplies by θ).
* **Greedy and sampling** (:func:`generate`): ``argmax`` of the processed scores, or a draw from
  ``softmax`` of them with an explicit, seeded ``torch.Generator``. :func:`sample` builds the
  usual processors from their names; ``temperature=0`` is greedy.
* **Beam search** (:func:`beam_search`) keeps the ``b`` most probable partial sequences;
  :func:`most_probable_continuation` finds the most probable sequence of all, exactly, by
  best-first search (the yardstick for beam search's search error).
* **Stopping** (:class:`Stopping`): a maximum number of tokens, stop tokens, stop strings.

What the penalties count: ``generated`` holds the tokens produced after the prompt. The prompt is
the reader's text, whose words the continuation should be free to talk about; a penalty is there
to stop the model repeating *itself* (the OpenAI API's frequency and presence penalties count the
sampled tokens only). ``transformers`` counts the prompt in its repetition penalty by default:
``generate(..., penalise_prompt=True)`` does the same.
"""
from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from course_lib import checks
from course_lib.language_model import LanguageModel, continue_sequences
from course_lib.runtime import evaluation_mode

__all__ = [
    "FrequencyPresencePenalty", "Hypothesis", "Processor", "RepetitionPenalty", "Stopping", "Temperature",
    "TopK", "TopP", "beam_search", "generate", "greedy", "most_probable_continuation", "process",
    "rank_candidates", "sample", "sampling_processors",
]

Processor = Callable[[Tensor, Tensor], Tensor]
NEG_INF = -math.inf


# ---------------------------------------------------------------------------------------------
# Logits processors
# ---------------------------------------------------------------------------------------------
class Temperature:
    """``P_τ(w) = softmax(z / τ)_w``: τ < 1 sharpens the distribution, τ > 1 flattens it, τ -> 0
    tends to greedy (which :func:`sample` gives for ``temperature=0``; here τ must be > 0)."""

    def __init__(self, temperature: float) -> None:
        self.temperature = checks.number("temperature", temperature, above=0.0,
                                         what="a positive number (for greedy decoding use temperature=0 in "
                                              "sample, or greedy)")

    def __call__(self, logits: Tensor, generated: Tensor) -> Tensor:
        return logits / self.temperature


class TopK:
    """Top-k: keep the k highest scores, ``z'_w = z_w`` if ``z_w >= z_(k)`` (the k-th largest) else −∞.

    Tokens tied with the k-th score are all kept (no tie is broken arbitrarily), so more than k may
    remain; ``k`` larger than the vocabulary keeps everything. ``min_tokens_to_keep`` raises k.
    """

    def __init__(self, k: int, min_tokens_to_keep: int = 1) -> None:
        self.k = max(checks.positive_int("k", k), checks.positive_int("min_tokens_to_keep", min_tokens_to_keep))

    def __call__(self, logits: Tensor, generated: Tensor) -> Tensor:
        k = min(self.k, logits.shape[-1])
        kth_largest = logits.topk(k, dim=-1).values[..., -1:]          # (batch, 1)
        return logits.masked_fill(logits < kth_largest, NEG_INF)


class TopP:
    """Nucleus (top-p) sampling: keep the smallest set of most probable tokens whose mass reaches p,

        V_p = the fewest top tokens with  sum_{w in V_p} P(w) >= p,     z'_w = z_w if w in V_p else −∞.

    Computed from the other end, as ``transformers`` does: sort the probabilities in ascending
    order and drop every token whose cumulative mass (itself and all smaller ones) is ``<= 1 − p``;
    what remains has mass ``>= p``. Among tokens tied at the boundary, which survive follows that
    sort. The ``min_tokens_to_keep`` most probable tokens always survive. ``p = 1`` keeps every token
    of non-zero probability; p must be in (0, 1].
    """

    def __init__(self, p: float, min_tokens_to_keep: int = 1) -> None:
        self.p = checks.number("top_p", p, above=0.0, maximum=1.0, what="a number in (0, 1]")
        self.min_tokens_to_keep = checks.positive_int("min_tokens_to_keep", min_tokens_to_keep)

    def __call__(self, logits: Tensor, generated: Tensor) -> Tensor:
        ascending, order = torch.sort(logits, dim=-1)
        mass_up_to = ascending.softmax(dim=-1).cumsum(dim=-1)           # (batch, vocab)
        dropped = mass_up_to <= 1 - self.p
        dropped[..., -self.min_tokens_to_keep:] = False                 # the most probable stay
        return logits.masked_fill(dropped.scatter(-1, order, dropped), NEG_INF)


def _counts(generated: Tensor, vocab_size: int, dtype: torch.dtype) -> Tensor:
    """``c_w``: how often each token occurs in each row of ``generated (batch, t)`` -> ``(batch, vocab)``."""
    counts = torch.zeros(generated.shape[0], vocab_size, dtype=dtype, device=generated.device)
    return counts.scatter_add_(1, generated.long(), torch.ones_like(generated, dtype=dtype))


class FrequencyPresencePenalty:
    """Lower the scores of tokens already generated::

        z'_w = z_w − c_w · α_freq − [c_w > 0] · α_pres

    where ``c_w`` counts ``w`` in ``generated``: the frequency penalty grows with every repetition,
    the presence penalty is paid once a token has appeared at all. Negative α encourage repetition.
    """

    def __init__(self, frequency: float = 0.0, presence: float = 0.0) -> None:
        self.frequency = checks.finite_number("frequency", frequency)
        self.presence = checks.finite_number("presence", presence)

    def __call__(self, logits: Tensor, generated: Tensor) -> Tensor:
        counts = _counts(generated, logits.shape[-1], logits.dtype)
        return logits - counts * self.frequency - (counts > 0).to(logits.dtype) * self.presence


class RepetitionPenalty:
    """CTRL's repetition penalty (Keskar et al., 2019), for every token ``w`` already generated::

        z'_w = z_w / θ   if z_w > 0,     z'_w = z_w · θ   otherwise

    so θ > 1 makes a seen token less likely whatever the sign of its score (θ = 1: no change,
    θ < 1: a reward). Applied once per token, however often it occurred.
    """

    def __init__(self, theta: float) -> None:
        self.theta = checks.positive_number("theta", theta)

    def __call__(self, logits: Tensor, generated: Tensor) -> Tensor:
        seen = generated.long()                                         # (batch, t), repeats allowed
        scores = logits.gather(-1, seen)                                # z_w of each seen token
        penalised = torch.where(scores > 0, scores / self.theta, scores * self.theta)
        return logits.scatter(-1, seen, penalised)                      # a repeat writes the same value


def process(logits: Tensor, generated: Tensor, processors: Sequence[Processor] = ()) -> Tensor:
    """Apply ``processors`` left to right: ``(batch, vocab)``, ``(batch, t)`` -> ``(batch, vocab)``."""
    for processor in processors:
        logits = processor(logits, generated)
    return logits


def sampling_processors(*, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                        frequency_penalty: float = 0.0, presence_penalty: float = 0.0,
                        repetition_penalty: float = 1.0, min_tokens_to_keep: int = 1) -> list[Processor]:
    """The usual chain: penalties first (they act on the model's scores), then temperature, then
    the truncations top-k and top-p (on the tempered distribution). Neutral settings are left out."""
    processors: list[Processor] = []
    if frequency_penalty or presence_penalty:
        processors.append(FrequencyPresencePenalty(frequency_penalty, presence_penalty))
    if checks.positive_number("repetition_penalty", repetition_penalty) != 1.0:
        processors.append(RepetitionPenalty(repetition_penalty))
    if checks.positive_number("temperature", temperature) != 1.0:
        processors.append(Temperature(temperature))
    if top_k is not None:
        processors.append(TopK(top_k, min_tokens_to_keep))
    if top_p is not None:
        processors.append(TopP(top_p, min_tokens_to_keep))
    return processors


# ---------------------------------------------------------------------------------------------
# Stopping criteria
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stopping:
    """When a sequence is finished: after ``max_tokens`` generated tokens, after a token of
    ``stop_ids`` (which is not returned), or once the text of the generated tokens,
    ``detokenize(ids)``, contains one of ``stop_strings`` (the tokens up to and including the one
    that completed it are returned; a string may span several tokens)."""

    max_tokens: int
    stop_ids: tuple[int, ...] = ()
    stop_strings: tuple[str, ...] = ()
    detokenize: Callable[[list[int]], str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        checks.non_negative_int("max_tokens", self.max_tokens)
        object.__setattr__(self, "stop_ids", tuple(checks.non_negative_int("a stop id", i) for i in self.stop_ids))
        strings = (self.stop_strings,) if isinstance(self.stop_strings, str) else self.stop_strings
        object.__setattr__(self, "stop_strings", tuple(checks.text("a stop string", s) for s in strings))
        if self.stop_strings and not callable(self.detokenize):
            raise checks.ArgumentError("stop_strings need detokenize, a function from a list of ids to text")

    def reached_stop_string(self, generated: list[int]) -> bool:
        if not self.stop_strings:
            return False
        text = self.detokenize(generated)
        return any(stop in text for stop in self.stop_strings)


# ---------------------------------------------------------------------------------------------
# Greedy search and sampling
# ---------------------------------------------------------------------------------------------
def _prompt_tensor(model: LanguageModel, prompt: object) -> Tensor:
    """A ``(batch, time)`` id tensor from one list of ids or from a tensor of rows of equal length."""
    if isinstance(prompt, Tensor):
        ids = prompt if prompt.dim() == 2 else prompt.reshape(1, -1)
    elif isinstance(prompt, Sequence) and not isinstance(prompt, str):
        ids = checks.token_ids("prompt", list(prompt)).reshape(1, -1)
    else:
        raise checks.ArgumentError("prompt must be a list of ids (one sequence) or a (batch, time) tensor of ids, "
                                   f"starting with the start symbol; got {type(prompt).__name__}")
    return model.check_ids(ids)


def generate(model: LanguageModel, prompt: Sequence[int] | Tensor, stopping: Stopping, *,
             processors: Sequence[Processor] = (), generator: torch.Generator | None = None,
             penalise_prompt: bool = False) -> list[list[int]]:
    """Decode token by token: ``x_{t+1} = argmax_w z'_w`` (greedy, ``generator=None``) or
    ``x_{t+1} ~ softmax(z')`` drawn with ``generator``, where ``z' = process(log P(. | x_1..x_t))``.

    ``prompt`` is one list of ids or a ``(batch, time)`` tensor, starting with the start symbol.
    Returns, per row, the generated ids (without a stop id); each row stops by ``stopping``.
    ``penalise_prompt`` lets the processors count the prompt's tokens too (module docstring).
    The loop is the protocol's :func:`~course_lib.language_model.continue_sequences`, the one
    the ancestral sampler of the earlier chapters runs on.
    """
    if not isinstance(stopping, Stopping):
        raise checks.ArgumentError(f"stopping must be a Stopping, got {type(stopping).__name__}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise checks.ArgumentError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    prompt = _prompt_tensor(model, prompt)

    def choose(log_probs: Tensor, chosen: Tensor) -> Tensor:
        history = torch.cat([prompt.to(chosen.device), chosen], dim=1) if penalise_prompt else chosen
        return _choose(process(log_probs, history, processors), generator, history)

    ends = stopping.reached_stop_string if stopping.stop_strings else None
    return continue_sequences(model, prompt, choose, max_tokens=stopping.max_tokens,
                              stop_ids=stopping.stop_ids, ends=ends)


def _choose(scores: Tensor, generator: torch.Generator | None, history: Tensor) -> Tensor:
    """The argmax, or one draw from ``softmax(scores)``, per row: ``(batch, vocab)`` -> ``(batch,)``."""
    probabilities = torch.softmax(scores.double(), dim=-1)
    impossible = ~torch.isfinite(probabilities).all(dim=-1)
    if bool(impossible.any()):
        row = int(impossible.nonzero()[0])
        raise ValueError(f"no token has any probability left after {history[row].tolist()} (row {row}): the "
                         "model gives none (an n-gram model without smoothing in an unseen context?) or the "
                         "processors removed every token")
    if generator is None:
        return scores.argmax(dim=-1)
    return torch.multinomial(probabilities.cpu(), 1, generator=generator)[:, 0].to(scores.device)


def greedy(model: LanguageModel, prompt: Sequence[int] | Tensor, *, max_tokens: int,
           stop_ids: Sequence[int] = (), processors: Sequence[Processor] = ()) -> list[list[int]]:
    """Greedy search, ``x_{t+1} = argmax_w P(w | x_1..x_t)``: :func:`generate` without a generator."""
    return generate(model, prompt, Stopping(max_tokens, tuple(stop_ids)), processors=processors)


def sample(model: LanguageModel, prompt: Sequence[int] | Tensor, *, max_tokens: int, seed: int = 0,
           stop_ids: Sequence[int] = (), stop_strings: Sequence[str] = (),
           detokenize: Callable[[list[int]], str] | None = None, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, frequency_penalty: float = 0.0,
           presence_penalty: float = 0.0, repetition_penalty: float = 1.0,
           min_tokens_to_keep: int = 1) -> list[list[int]]:
    """Sample with the usual processors (:func:`sampling_processors`) from a generator seeded with
    ``seed``. ``temperature=0`` is the limit τ -> 0 of ``softmax(z/τ)``: greedy search.

    With no processor and one prompt, the draws are those of
    :func:`course_lib.language_model.sample` with the same seed (``torch.multinomial`` on the same
    generator), the ancestral sampler of the earlier chapters."""
    temperature = checks.number("temperature", temperature, minimum=0.0,
                                what="a number >= 0 (0 is greedy decoding)")
    stopping = Stopping(max_tokens, tuple(stop_ids), tuple(stop_strings), detokenize)
    settings = dict(top_k=top_k, top_p=top_p, frequency_penalty=frequency_penalty,
                    presence_penalty=presence_penalty, repetition_penalty=repetition_penalty,
                    min_tokens_to_keep=min_tokens_to_keep)
    if temperature == 0:
        processors = sampling_processors(**settings)   # argmax: the truncations change nothing, penalties do
        return generate(model, prompt, stopping, processors=processors)
    processors = sampling_processors(temperature=temperature, **settings)
    generator = torch.Generator().manual_seed(checks.non_negative_int("seed", seed))
    return generate(model, prompt, stopping, processors=processors, generator=generator)


# ---------------------------------------------------------------------------------------------
# Beam search
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hypothesis:
    """A finished sequence of beam search: its ``tokens`` (with the end token if it ended with
    one), ``log_prob = log P(tokens | prompt)`` and the ranking ``score = log_prob / |tokens|^α``."""

    tokens: tuple[int, ...]
    log_prob: float
    score: float


def rank_candidates(live_log_probs: Tensor, next_log_probs: Tensor, count: int) -> tuple[Tensor, Tensor, Tensor]:
    """One step of beam search: extend each live sequence by every token,

        log P(y_1 .. y_t) = log P(y_1 .. y_{t-1}) + log P(y_t | y_1 .. y_{t-1}),

    and rank the ``b·V`` candidates. ``live_log_probs (..., b)``, ``next_log_probs (..., b, V)`` ->
    the best ``count`` (at most ``b·V``), best first: ``(log P, parent slot, token)``, each
    ``(..., count)``. The candidate ``(parent, token)`` sits at ``parent·V + token`` of the
    flattened scores."""
    vocab = next_log_probs.shape[-1]
    candidates = (live_log_probs[..., None] + next_log_probs).flatten(-2)        # (..., b·V)
    best, index = candidates.topk(min(count, candidates.shape[-1]), dim=-1)
    return best, index // vocab, index % vocab


def beam_search(model: LanguageModel, prompt: Sequence[int] | Tensor, *, beam_width: int, max_tokens: int,
                eos_id: int | None = None, length_penalty: float = 0.0,
                num_return: int = 1) -> list[list[Hypothesis]]:
    """Beam search: keep the ``b = beam_width`` most probable partial sequences at every step.

    Step t extends each of the ``b`` live sequences by every token, ``log P(y_1..y_t) =
    log P(y_1..y_{t-1}) + log P(y_t | y_<t)``, and ranks the ``b·V`` candidates by it. A candidate
    ending in ``eos_id`` that ranks among the best ``b`` is **finished**: it joins a pool of the
    ``b`` best finished sequences, ranked by ``score(y) = log P(y) / |y|^α`` (α =
    ``length_penalty`` >= 0; |y| counts the end token; α = 0 ranks by probability, α = 1 by
    the mean log-probability per token, which favours longer outputs). The best ``b`` candidates
    that do not end there are the next live beam.

    Stopping: a row stops when no live sequence can still beat the ``num_return``-th best of its
    pool (the last one returned). Extending a sequence only lowers ``log P <= 0``, so the best any
    live sequence can reach is ``log P_live / max_tokens^α``: the test is exact, not a heuristic.
    After ``max_tokens`` steps the live sequences join the pool as they are. Returns, per prompt
    row, the ``num_return`` best hypotheses, best first. A beam at least as wide as the number of
    candidates finds the best sequence of all (tested against exhaustive search); a narrower one
    is a heuristic and can even end below greedy search (also tested).
    """
    beam = checks.positive_int("beam_width", beam_width)
    max_tokens = checks.positive_int("max_tokens", max_tokens)
    alpha = checks.number("length_penalty", length_penalty, minimum=0.0)
    num_return = checks.integer("num_return", num_return, minimum=1, maximum=beam)
    if eos_id is not None:
        eos_id = checks.integer("eos_id", eos_id, minimum=0, maximum=model.vocab_size - 1)

    def score(log_prob: float, length: int) -> float:
        return log_prob / length ** alpha

    with evaluation_mode(model):
        prompt = _prompt_tensor(model, prompt)
        batch, vocab = prompt.shape[0], model.vocab_size
        log_probs, state = model.read(prompt, model.initial_state(batch))
        # b copies of each row, flattened to (batch·b, ...); only the first copy is live at the
        # start (the others score −∞), so no candidate comes twice
        copies = torch.arange(batch).repeat_interleave(beam)
        state, log_probs = model.select_state(state, copies), log_probs[:, -1].index_select(0, copies.to(prompt.device))
        live_log_probs = torch.full((batch, beam), NEG_INF, dtype=torch.float64)
        live_log_probs[:, 0] = 0.0
        live_tokens = torch.zeros(batch, beam, 0, dtype=torch.long)                # (batch, b, t)
        pools: list[list[Hypothesis]] = [[] for _ in range(batch)]
        done = [False] * batch
        for length in range(1, max_tokens + 1):
            # with one end token, the best 2b candidates hold at least b that do not end
            best, parents, tokens = rank_candidates(live_log_probs, log_probs.double().cpu().view(batch, beam, vocab),
                                                    2 * beam)                                   # (batch, 2b)
            next_log_probs = torch.full((batch, beam), NEG_INF, dtype=torch.float64)
            next_parents = torch.zeros(batch, beam, dtype=torch.long)
            next_tokens = torch.zeros(batch, beam, dtype=torch.long)
            for row in range(batch):
                ending, going_on = _split(best[row].tolist(), parents[row].tolist(), tokens[row].tolist(), beam, eos_id)
                for log_prob, parent, token in ending if not done[row] else ():
                    sequence = (*live_tokens[row, parent].tolist(), token)
                    _add(pools[row], Hypothesis(sequence, log_prob, score(log_prob, length)), beam)
                for slot, (log_prob, parent, token) in enumerate(going_on):
                    next_log_probs[row, slot], next_parents[row, slot], next_tokens[row, slot] = log_prob, parent, token
                # the best a live sequence can still reach: its log P <= 0 only falls, over at most max_tokens
                reachable = score(float(next_log_probs[row, 0]), max_tokens)
                done[row] = done[row] or (len(pools[row]) >= num_return
                                          and pools[row][num_return - 1].score >= reachable)
            live_log_probs = next_log_probs
            history = live_tokens.gather(1, next_parents[:, :, None].expand(-1, -1, live_tokens.shape[2]))
            live_tokens = torch.cat([history, next_tokens[:, :, None]], dim=2)
            if all(done) or length == max_tokens:
                break
            state = model.select_state(state, (torch.arange(batch)[:, None] * beam + next_parents).flatten())
            log_probs, state = model.step(next_tokens.flatten().to(prompt.device), state)
        for row in range(batch):                  # after max_tokens, the live sequences are finished too
            for slot in range(beam) if not done[row] else ():
                log_prob = float(live_log_probs[row, slot])
                if log_prob > NEG_INF:
                    sequence = tuple(live_tokens[row, slot].tolist())
                    _add(pools[row], Hypothesis(sequence, log_prob, score(log_prob, len(sequence))), beam)
            if not pools[row]:
                raise ValueError(f"no sequence of row {row} has any probability under the model (an n-gram model "
                                 "without smoothing in an unseen context?)")
    return [pool[:num_return] for pool in pools]


def _split(log_probs: list[float], parents: list[int], tokens: list[int], beam: int,
           eos_id: int | None) -> tuple[list[tuple[float, int, int]], list[tuple[float, int, int]]]:
    """Candidates ranked best first -> (those ending in ``eos_id`` among the best ``beam``, the best
    ``beam`` of those going on), each ``(log P, parent slot, token)``; impossible ones are dropped."""
    ending, going_on = [], []
    for rank, candidate in enumerate(zip(log_probs, parents, tokens)):
        if candidate[0] == NEG_INF or len(going_on) == beam:
            break
        if candidate[2] == eos_id:
            if rank < beam:
                ending.append(candidate)
        else:
            going_on.append(candidate)
    return ending, going_on


def _add(pool: list[Hypothesis], hypothesis: Hypothesis, size: int) -> None:
    """Insert into a pool kept sorted by score, best first, and at most ``size`` long."""
    pool.append(hypothesis)
    pool.sort(key=lambda h: h.score, reverse=True)
    del pool[size:]


# ---------------------------------------------------------------------------------------------
# Exact search
# ---------------------------------------------------------------------------------------------
def most_probable_continuation(model: LanguageModel, prompt: Sequence[int], *, eos_id: int, max_tokens: int,
                               max_expansions: int = 100_000) -> Hypothesis:
    """The most probable continuation of ``prompt``, found exactly:
    ``argmax_y log P(y | prompt)`` over every sequence that ends in ``eos_id`` or reaches
    ``max_tokens`` tokens (the sequences beam search can return; ranked by probability, α = 0).

    Best-first (uniform-cost) search: partial sequences wait in a queue ordered by ``log P``; the
    first finished one taken from it is the best, because extending any other only lowers its
    ``log P <= 0``. Greedy search's result is a finished sequence, so no partial sequence less
    probable than it is ever queued. The cost depends on how sure the model is: each expansion is
    one step of the model. More than ``max_expansions`` raises an error instead of running on.
    """
    eos_id = checks.integer("eos_id", eos_id, minimum=0, maximum=model.vocab_size - 1)
    max_tokens = checks.positive_int("max_tokens", max_tokens)
    max_expansions = checks.positive_int("max_expansions", max_expansions)
    prompt_ids = _prompt_tensor(model, prompt)
    if prompt_ids.shape[0] != 1:
        raise checks.ArgumentError(f"most_probable_continuation searches for one prompt at a time, got "
                                   f"{prompt_ids.shape[0]} rows; call it once per prompt")
    bound = beam_search(model, prompt_ids, beam_width=1, max_tokens=max_tokens, eos_id=eos_id)[0][0].log_prob
    order = itertools.count()   # breaks ties between equal log P by age, never by comparing states
    with evaluation_mode(model):
        log_probs, state = model.read(prompt_ids, model.initial_state(1))
        queue = [(-0.0, next(order), (), log_probs[0, -1].double().cpu(), state)]
        expansions = 0
        while queue:
            negative_log_prob, _, tokens, next_log_probs, state = heapq.heappop(queue)
            if tokens and (tokens[-1] == eos_id or len(tokens) == max_tokens):
                return Hypothesis(tokens, -negative_log_prob, -negative_log_prob)
            expansions += 1
            if expansions > max_expansions:
                raise RuntimeError(f"most_probable_continuation expanded {max_expansions} partial sequences "
                                   "without finishing: shorten max_tokens or raise max_expansions")
            candidates = -negative_log_prob + next_log_probs
            # a small allowance for rounding: greedy's own path must stay in the queue
            for token in (candidates >= bound - 1e-9 * (1 + abs(bound))).nonzero()[:, 0].tolist():
                extended, log_prob = (*tokens, token), float(candidates[token])
                if token == eos_id or len(extended) == max_tokens:
                    heapq.heappush(queue, (-log_prob, next(order), extended, None, None))
                else:
                    step_log_probs, step_state = model.step(torch.tensor([token], device=prompt_ids.device), state)
                    heapq.heappush(queue, (-log_prob, next(order), extended, step_log_probs[0].double().cpu(),
                                           step_state))
    raise ValueError("no continuation of the prompt has any probability under the model (an n-gram model "
                     "without smoothing in an unseen context?)")
