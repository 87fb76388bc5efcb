"""The language-model protocol: what every model of the course gives, from n-grams to GPT.

A language model assigns a probability to every sequence through the chain rule,

    log P(x_1 ... x_T) = sum_t log P(x_{t+1} | x_1 ... x_t),

so all a model has to provide is the next-token distribution after any prefix. The course asks
for it in two forms, both as **natural-log probabilities over token ids** ``0 .. vocab_size - 1``:

* the incremental form, one token at a time: ``step(tokens (batch,), state) -> (log_probs (batch,
  vocab), state)``. The state is whatever the model carries from one token to the next: the last
  n-1 ids of a fixed-window or n-gram model, the hidden state of a recurrent network, the key-value
  cache of a Transformer (``course_lib.transformer.TransformerLM``'s, the one cache of the package).
  ``initial_state(batch_size)`` is the state before any token.
* the whole-sequence form, ``sequence_log_probs(ids (batch, time)) -> (batch, time, vocab)``: entry
  ``[b, t]`` is ``log P(. | ids[b, :t+1])``. By default it is the loop over ``step``; a model that
  can compute every position at once (a fixed window, a recurrent layer over a whole sequence, a
  Transformer with its causal mask) overrides :meth:`LanguageModel.read` and gets it in parallel.

Conventions
-----------
* **The first input token is the start symbol** (``<s>``, or the newline of Chapter 4's stories):
  ``sequence_log_probs(ids)[:, 0]`` is the distribution of the first real token. Windowed models
  pad a context shorter than their window on the left with that first token.
* **Where the batch lives in a state.** A state is a tensor, or a tuple of tensors, whose
  dimension ``state_batch_dim`` (0 unless a model says otherwise) indexes the batch. Recurrent
  layers keep PyTorch's ``(num_layers, batch, d_hidden)``, so their models set it to 1.
  :meth:`LanguageModel.select_state` picks or reorders rows of a state, as beam search
  (Chapter 8) does when it keeps the best hypotheses; a model with another kind of state overrides it.
* Log-probabilities are in the model's floating dtype (float64 for the n-gram models); sums over
  many tokens should be taken in float64 (:mod:`course_lib.evaluate` does).

:func:`continue_sequences` is the generation loop written once against this protocol;
:func:`sample`, ancestral sampling, runs on it, as do greedy search and sampling with logits
processors (:mod:`course_lib.decoding`, Chapter 8). Evaluation (nats, perplexity, probes) lives
in :mod:`course_lib.evaluate`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from course_lib.checks import integer, non_negative_int, positive_int, positive_number
from course_lib.runtime import evaluation_mode

__all__ = ["LanguageModel", "State", "WindowLanguageModel", "continue_sequences", "multinomial_draw", "sample"]

State = Any  # a tensor, or a tuple of tensors, with the batch along ``state_batch_dim``


class LanguageModel(ABC):
    """The protocol (see the module docstring). Subclasses write :meth:`initial_state` and
    :meth:`step`; the rest has defaults written in terms of those two."""

    vocab_size: int
    state_batch_dim: int = 0

    @abstractmethod
    def initial_state(self, batch_size: int) -> State:
        """The state before any token, for ``batch_size`` sequences."""

    @abstractmethod
    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """Read one token per sequence: ``tokens (batch,)`` -> ``(log_probs (batch, vocab), state)``;
        ``log_probs[b]`` is log P(next token | everything read so far in sequence b)."""

    def read(self, ids: Tensor, state: State) -> tuple[Tensor, State]:
        """Read a chunk ``ids (batch, time)`` from ``state``: ``(log_probs (batch, time, vocab),
        state after the chunk)``. By default one :meth:`step` per position."""
        ids = self.check_ids(ids)
        log_probs = []
        for tokens in ids.unbind(dim=1):
            step_log_probs, state = self.step(tokens, state)
            log_probs.append(step_log_probs)
        return torch.stack(log_probs, dim=1), state

    def sequence_log_probs(self, ids: Tensor) -> Tensor:
        """``log P(. | ids[:, :t+1])`` at every position t: ``(batch, time)`` -> ``(batch, time, vocab)``;
        ``ids[:, 0]`` is the start symbol."""
        ids = self.check_ids(ids)
        return self.read(ids, self.initial_state(ids.shape[0]))[0]

    def token_log_probs(self, ids: Tensor) -> Tensor:
        """``log P(ids[:, t+1] | ids[:, :t+1])``: the log-probability of each next token of the
        sequences, ``(batch, time)`` -> ``(batch, time - 1)``."""
        ids = self.check_ids(ids)
        log_probs = self.sequence_log_probs(ids[:, :-1])
        return log_probs.gather(-1, ids[:, 1:, None].to(log_probs.device)).squeeze(-1)

    def next_token_log_probs(self, contexts: Tensor) -> Tensor:
        """``log P(. | context)`` after each whole context: ``(batch, time)`` -> ``(batch, vocab)``."""
        return self.sequence_log_probs(contexts)[:, -1]

    def select_state(self, state: State, index: Tensor) -> State:
        """The rows ``index (k,)`` of a batched state, in that order (repeats allowed)."""
        if isinstance(state, Tensor):
            return state.index_select(self.state_batch_dim, index.to(state.device))
        if isinstance(state, tuple):
            return tuple(self.select_state(part, index) for part in state)
        raise TypeError(f"{type(self).__name__} has a state of type {type(state).__name__}; "
                        "override select_state to pick rows of it")

    def check_ids(self, ids: object) -> Tensor:
        """``ids`` if it is a ``(batch, time)`` integer tensor of ids in ``[0, vocab_size)``."""
        if not isinstance(ids, Tensor) or ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            got = ids.dtype if isinstance(ids, Tensor) else type(ids).__name__
            raise TypeError(f"ids must be an integer tensor (torch.long) of token ids, got {got}")
        if ids.dim() != 2 or ids.shape[1] == 0:
            raise ValueError(f"ids must have shape (batch, time) with time >= 1, got {tuple(ids.shape)}"
                             " (for one sequence, add a batch dimension with ids.unsqueeze(0))")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise ValueError(f"ids must lie in [0, vocab_size) = [0, {self.vocab_size}),"
                             f" got values in [{int(ids.min())}, {int(ids.max())}]")
        return ids.long()


class WindowLanguageModel(LanguageModel):
    """A model that sees only the last ``context_size`` tokens (n-gram, fixed-window): its state is
    that window, ``(batch, context_size)`` ids, oldest first.

    Subclasses write :meth:`window_log_probs`. Before the window has filled, it is padded on the
    left with the first token read, the start symbol, as Chapter 1 pads with n-1 ``<s>``.
    """

    context_size: int

    @abstractmethod
    def window_log_probs(self, windows: Tensor) -> Tensor:
        """``log P(. | window)``: ``(positions, context_size)`` ids -> ``(positions, vocab)``."""

    def initial_state(self, batch_size: int) -> Tensor:
        """An empty window ``(batch, 0)``: nothing read yet."""
        return torch.zeros(positive_int("batch_size", batch_size), 0, dtype=torch.long)

    def step(self, tokens: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        log_probs, state = self.read(tokens.reshape(-1, 1), state)
        return log_probs[:, 0], state

    def windows(self, ids: Tensor, state: Tensor, width: int) -> Tensor:
        """The ``width`` ids ending at each position of ``ids (batch, time)``, read after ``state``:
        ``(batch, time, width)``. Before the first token, the history is padded on the left with that
        token, the start symbol (as Chapter 1 pads with n-1 ``<s>``)."""
        batch, time = ids.shape
        history = torch.cat([state.to(ids.device), ids], dim=1)
        missing = width + time - 1 - history.shape[1]
        if missing > 0:
            history = torch.cat([history[:, :1].expand(-1, missing), history], dim=1)
        if width == 0:
            return history.new_zeros(batch, time, 0)
        return history.unfold(1, width, 1)[:, -time:]

    def read(self, ids: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """Every window of the chunk at once: position t sees the ``context_size`` ids ending at t."""
        ids = self.check_ids(ids)
        batch, time, width = ids.shape[0], ids.shape[1], self.context_size
        windows = self.windows(ids, state, width)  # (batch, time, context_size)
        log_probs = self.window_log_probs(windows.reshape(batch * time, width))
        next_state = windows[:, -1] if width else ids[:, :0]
        return log_probs.reshape(batch, time, -1), next_state


# ---------------------------------------------------------------------------------------------
# The generation loop, and ancestral sampling on it
# ---------------------------------------------------------------------------------------------
Draw = Callable[[Tensor], int]
Choose = Callable[[Tensor, Tensor], Tensor]


def continue_sequences(model: LanguageModel, prompt: Tensor, choose: Choose, *, max_tokens: int,
                       stop_ids: Sequence[int] = (),
                       ends: Callable[[list[int]], bool] | None = None) -> list[list[int]]:
    """The generation loop every decoder of the course shares: read ``prompt (batch, time)``, then,
    token after token, ``x_{t+1} = choose(log P(. | x_1 .. x_t) (batch, vocab), chosen (batch, t))``
    and read it with :meth:`LanguageModel.step`.

    ``chosen`` holds the tokens chosen so far after the prompt (a row that has ended keeps being
    given tokens, which are ignored). A row ends at a token of ``stop_ids`` (not returned), after
    ``max_tokens`` tokens, or once ``ends(its tokens)`` is true. Returns each row's tokens.
    """
    batch = prompt.shape[0]
    generated: list[list[int]] = [[] for _ in range(batch)]
    finished = [max_tokens == 0] * batch
    chosen = prompt.new_zeros(batch, 0)
    with evaluation_mode(model):
        log_probs, state = model.read(prompt, model.initial_state(batch))
        log_probs = log_probs[:, -1]
        while not all(finished):
            tokens = choose(log_probs, chosen)                              # (batch,)
            for row, token in enumerate(tokens.tolist()):
                if finished[row]:
                    continue
                if token in stop_ids:
                    finished[row] = True
                    continue
                generated[row].append(token)
                finished[row] = len(generated[row]) >= max_tokens or (ends is not None and ends(generated[row]))
            if all(finished):
                break
            chosen = torch.cat([chosen, tokens[:, None].to(chosen.device)], dim=1)
            log_probs, state = model.step(tokens, state)
    return generated


def multinomial_draw(generator: torch.Generator) -> Draw:
    """Draw one id from probabilities ``(vocab,)`` with ``torch.multinomial`` and ``generator``."""
    return lambda probabilities: int(torch.multinomial(probabilities, 1, generator=generator))


def sample(model: LanguageModel, prompt: Sequence[int], *, max_tokens: int, stop_id: int | None = None,
           temperature: float = 1.0, seed: int = 0, draw: Draw | None = None) -> list[int]:
    """Ancestral sampling: ``x_{t+1} ~ P(. | x_1 .. x_t)^(1/temperature)``, renormalised, token by token.

    ``prompt`` holds the ids read first, starting with the start symbol. Returns the drawn ids
    after the prompt; stops before ``stop_id`` (which is not returned) or after ``max_tokens`` ids.
    The draws come from a ``torch.Generator`` seeded with ``seed`` (the same arguments give the
    same ids); ``draw`` replaces how one id is drawn from the probabilities ``(vocab,)``, float64.
    """
    if isinstance(prompt, (str, Tensor)) or not isinstance(prompt, Sequence) or not prompt:
        raise TypeError("prompt must be a non-empty list of token ids, starting with the start symbol")
    prompt_ids = [integer("a prompt id", token, minimum=0, maximum=model.vocab_size - 1) for token in prompt]
    max_tokens = non_negative_int("max_tokens", max_tokens)
    temperature = positive_number("temperature", temperature)
    if stop_id is not None:
        stop_id = integer("stop_id", stop_id, minimum=0, maximum=model.vocab_size - 1)
    draw = draw or multinomial_draw(torch.Generator().manual_seed(non_negative_int("seed", seed)))

    def draw_one(log_probs: Tensor, chosen: Tensor) -> Tensor:
        scaled = log_probs[0].double() if temperature == 1.0 else log_probs[0].double() / temperature
        probabilities = torch.softmax(scaled, dim=-1)
        if not torch.isfinite(probabilities).all():
            raise ValueError(f"the model gives no probability to any token after {prompt_ids + chosen[0].tolist()},"
                             " so nothing can be drawn (an n-gram model without smoothing, in a context never"
                             " seen in training? use a smoothing such as 'kneser_ney')")
        return torch.tensor([draw(probabilities)])

    stop_ids = () if stop_id is None else (stop_id,)
    return continue_sequences(model, torch.tensor([prompt_ids]), draw_one, max_tokens=max_tokens,
                              stop_ids=stop_ids)[0]
