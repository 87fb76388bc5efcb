"""Sequence to sequence (Chapter 6): an encoder reads the source, a decoder writes the target.

The encoder-decoder of Sutskever, Vinyals and Le (2014) with the recurrent layers of Chapters 4
and 5. The encoder reads the source ``x_1 .. x_S`` (ending in EOS)::

    h_i = f(h_{i-1}, E_src x_i)               encoder states H^enc = [h_1 .. h_S]
    s_0 = h_S                                 the context vector: all the decoder is told

and the decoder writes ``y_1 .. y_T`` one token at a time, starting from BOS::

    s_t = g(s_{t-1}, E_tgt y_{t-1})           y_0 = BOS
    p(y_t | y_<t, x) = softmax(W_o s_t + b_o)

With attention (Bahdanau, Cho and Bengio, 2015; Luong, Pham and Manning, 2015) every step also
looks at *every* encoder state (:mod:`course_lib.attention`)::

    c_t = Σ_i α_{i,t} h_i,   α_{·,t} = softmax_i(score(q_t, h_i))

and the two papers differ in the query and in where ``c_t`` enters:

``"bahdanau"``  query = the previous state ``s_{t-1}``; the context is fed to the recurrent step:
                ``s_t = g(s_{t-1}, [E_tgt y_{t-1}; c_t])``, then ``p = softmax(W_o [s_t; c_t] + b_o)``
``"luong"``     query = the current state ``s_t = g(s_{t-1}, E_tgt y_{t-1})``; then
                ``s̃_t = tanh(W_c [c_t; s_t])`` and ``p = softmax(W_o s̃_t + b_o)``

Training is teacher-forced: the decoder reads the reference shifted right by one (BOS, y_1 ..
y_{T-1}) and predicts y_1 .. y_T (ending in EOS). At inference it reads its own predictions,
through :meth:`Seq2Seq.start` and :meth:`Seq2Seq.step`, the incremental form of the course's
language-model protocol (a decoder is a language model of the target, conditioned on the source).

The query of a multi-layer decoder is the top layer's hidden state ``h`` (for the LSTM, not the
memory cell). A batch of sources of different lengths is right-padded; the encoder's final state
is taken at each source's own last token, and attention masks the padding.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_lib import checks
from course_lib.attention import Attention, attend, padding_mask
from course_lib.language_model import LanguageModel
from course_lib.rnn import RecurrentLayer

__all__ = ["ATTENTION_STYLES", "IGNORE_INDEX", "ConditionedDecoder", "DecoderState", "Encoder", "Seq2Seq", "Translation", "encode_padded",
           "forced_attention", "greedy_search", "make_batch", "special_ids", "top_hidden", "translate"]

ATTENTION_STYLES = (None, "bahdanau", "luong")
IGNORE_INDEX = -100  # a padded target position: no loss (PyTorch's ignore_index)

State = Tensor | tuple[Tensor, ...]


def top_hidden(state: State) -> Tensor:
    """The top layer's hidden state ``(batch, d_hidden)`` of a layer state (``h`` of an LSTM's ``(h, C)``)."""
    h = state[0] if isinstance(state, tuple) else state
    return h[-1]


def _where(mask: Tensor, new: State, old: State) -> State:
    """Per example, the new state where ``mask`` (batch,) is True, the old one elsewhere."""
    if isinstance(new, tuple):
        return tuple(_where(mask, n, o) for n, o in zip(new, old))
    return torch.where(mask[None, :, None], new, old)


def encode_padded(layer: RecurrentLayer, inputs: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
    """Run ``layer`` over right-padded ``inputs (batch, S, d_in)``; ``lengths (batch,)`` are the true lengths.

    Returns the outputs ``(batch, S, d_hidden)`` (zero at padding) and the final state taken at
    each sequence's own last step. From scratch the padded steps leave the state unchanged; fused,
    PyTorch's packed sequences skip them. Both give the same numbers (tested).
    """
    batch, S, _ = inputs.shape
    if lengths.shape != (batch,):
        raise checks.ArgumentError(f"lengths must have shape ({batch},), one per source, got {tuple(lengths.shape)}")
    if int(lengths.min()) < 1 or int(lengths.max()) > S:
        raise checks.ArgumentError(f"every source length must be from 1 to {S}, got {lengths.tolist()}")
    if layer.fused:
        packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, state = functional_call(layer.torch_module(), dict(layer.named_parameters()), (packed,))
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=S)
        return outputs, state
    mask = padding_mask(lengths, S)
    state, outputs = None, []
    for t in range(S):
        output, new_state = layer(inputs[:, t:t + 1], state)
        state = new_state if state is None else _where(mask[:, t], new_state, state)
        outputs.append(output[:, 0] * mask[:, t, None])
    return torch.stack(outputs, dim=1), state


class Encoder(nn.Module):
    """Source embedding and any recurrent layer: ``(ids (batch, S), lengths) -> (H^enc, final state)``."""

    def __init__(self, vocab_size: int, d_embed: int, layer: RecurrentLayer, pad_id: int = 0) -> None:
        super().__init__()
        _check_layer(layer, d_embed, "encoder")
        self.embedding = nn.Embedding(checks.positive_int("vocab_size", vocab_size), d_embed, padding_idx=pad_id)
        self.layer = layer

    def forward(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
        return encode_padded(self.layer, self.embedding(ids), lengths)


def _check_layer(layer: object, d_in: int, where: str) -> None:
    if not isinstance(layer, RecurrentLayer):
        raise checks.ArgumentError(f"the {where} layer must be a course_lib recurrent layer (RNN, LSTM or GRU), "
                                   f"got {type(layer).__name__}")
    if layer.d_in != d_in:
        raise checks.ArgumentError(f"the {where} layer reads d_in = {layer.d_in} features, but it is fed {d_in}")


@dataclass
class DecoderState:
    """What the decoder carries from step to step: its layer state and the encoded source."""

    layer_state: State
    memory: Tensor            # H^enc (batch, S, d_enc)
    memory_mask: Tensor       # (batch, S), True at real source tokens
    projected_memory: Tensor | None = None  # the additive score's W_k h_i, computed once per source
    weights: Tensor | None = None  # the attention weights (batch, S) of the step that made this state

    def select(self, index: Tensor) -> "DecoderState":
        """The states of the examples ``index`` (for beam search): batch is axis 1 of layer states, 0 of memory."""
        layer_state = (tuple(s.index_select(1, index) for s in self.layer_state)
                       if isinstance(self.layer_state, tuple) else self.layer_state.index_select(1, index))
        projected = None if self.projected_memory is None else self.projected_memory.index_select(0, index)
        weights = None if self.weights is None else self.weights.index_select(0, index)
        return DecoderState(layer_state, self.memory.index_select(0, index), self.memory_mask.index_select(0, index),
                            projected, weights)


class Seq2Seq(nn.Module):
    """An encoder, a decoder and (optionally) attention between them.

    ``Seq2Seq(encoder, decoder_layer, target_vocab_size, d_embed, attention=None | "bahdanau" | "luong",
    score="dot" | "general" | "additive")``. The decoder layer must have the encoder's depth and
    width (its first state is the encoder's last), and reads ``d_embed`` inputs, plus ``d_enc``
    with Bahdanau's attention (the context vector is fed in).
    """

    def __init__(self, encoder: Encoder, decoder_layer: RecurrentLayer, target_vocab_size: int, d_embed: int, *,
                 attention: str | None = None, score: str = "dot", d_attention: int | None = None,
                 pad_id: int = 0) -> None:
        super().__init__()
        self.attention_style = checks.one_of("attention", attention, ATTENTION_STYLES)
        d_enc, d_dec = encoder.layer.d_hidden, decoder_layer.d_hidden
        if (type(decoder_layer), decoder_layer.num_layers, d_dec) != (type(encoder.layer), encoder.layer.num_layers,
                                                                      d_enc):
            raise checks.ArgumentError("the decoder's layer must be of the encoder's kind, depth and width: its "
                                       "first state is the encoder's last (the context vector)")
        _check_layer(decoder_layer, d_embed + (d_enc if attention == "bahdanau" else 0), "decoder")
        self.encoder = encoder
        self.embedding = nn.Embedding(checks.positive_int("target_vocab_size", target_vocab_size), d_embed,
                                      padding_idx=pad_id)
        self.decoder_layer = decoder_layer
        if attention is None:
            self.attention = None
            self.readout = nn.Linear(d_dec, target_vocab_size)
        else:
            self.attention = Attention(score, d_dec, d_enc, d_attention or d_dec)
            if attention == "bahdanau":
                self.readout = nn.Linear(d_dec + d_enc, target_vocab_size)
            else:
                self.combine = nn.Linear(d_enc + d_dec, d_dec, bias=False)  # W_c
                self.readout = nn.Linear(d_dec, target_vocab_size)

    @property
    def vocab_size(self) -> int:
        return self.readout.out_features

    # --------------------------------------------------------------------------- incremental form
    def start(self, source: Tensor, source_lengths: Tensor) -> DecoderState:
        """Encode the source; the decoder's first state is the encoder's last (the context vector)."""
        source, source_lengths = _check_source(source, source_lengths)
        memory, final_state = self.encoder(source, source_lengths)
        projected = None
        if self.attention is not None and self.attention.score_name == "additive":
            projected = self.attention.score.project_keys(memory)
        return DecoderState(final_state, memory, padding_mask(source_lengths, source.shape[1]), projected)

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One decoder step: ``tokens (batch,)`` (the previous target token) ->
        ``(log_probs (batch, V), next state, attention weights (batch, S) or None)``."""
        embedded = self.embedding(tokens)[:, None, :]                      # (batch, 1, d_embed)
        weights = None
        if self.attention_style == "bahdanau":
            context, weights = self._attend(top_hidden(state.layer_state), state)   # query s_{t-1}
            output, layer_state = self.decoder_layer(torch.cat([embedded, context[:, None]], dim=-1),
                                                     state.layer_state)
            logits = self.readout(torch.cat([output[:, 0], context], dim=-1))
        else:
            output, layer_state = self.decoder_layer(embedded, state.layer_state)
            s_t = output[:, 0]
            if self.attention_style == "luong":
                context, weights = self._attend(s_t, state)                          # query s_t
                s_t = torch.tanh(self.combine(torch.cat([context, s_t], dim=-1)))   # s̃_t
            logits = self.readout(s_t)
        next_state = DecoderState(layer_state, state.memory, state.memory_mask, state.projected_memory, weights)
        return F.log_softmax(logits, dim=-1), next_state, weights

    def conditioned_on(self, source: Tensor, source_lengths: Tensor) -> "ConditionedDecoder":
        """The decoder as a language model of the target given these sources (the course's protocol)."""
        return ConditionedDecoder(self, source, source_lengths)

    def _attend(self, query: Tensor, state: DecoderState) -> tuple[Tensor, Tensor]:
        mask = state.memory_mask[:, None, :]
        if state.projected_memory is not None:
            scores = self.attention.score(query[:, None, :], state.memory, state.projected_memory)
            context, weights = attend(scores, state.memory, mask)
        else:
            context, weights = self.attention(query[:, None, :], state.memory, mask=mask)
        return context[:, 0], weights[:, 0]

    # --------------------------------------------------------------------------- teacher forcing
    def forward(self, source: Tensor, source_lengths: Tensor, target_in: Tensor) -> tuple[Tensor, Tensor | None]:
        """Teacher-forced: ``target_in (batch, T)`` = BOS, y_1 .. y_{T-1} ->
        ``(log_probs (batch, T, V), attention weights (batch, T, S) or None)``.

        Without attention and with Luong's, the decoder's states do not depend on the context
        vectors, so all ``T`` steps run in one call of the recurrent layer and one attention over
        ``T`` queries: the same numbers as ``T`` calls of :meth:`step` (tested), much faster.
        Bahdanau's decoder feeds ``c_t`` into step ``t``, so it must go step by step.
        """
        target_in = _check_ids("target_in", target_in)
        if target_in.shape[0] != source.shape[0]:
            raise checks.ArgumentError(f"{source.shape[0]} sources but {target_in.shape[0]} target rows")
        state = self.start(source, source_lengths)
        if self.attention_style == "bahdanau":
            return self._forward_step_by_step(target_in, state)
        states, _ = self.decoder_layer(self.embedding(target_in), state.layer_state)   # (batch, T, d_dec)
        if self.attention is None:
            return F.log_softmax(self.readout(states), dim=-1), None
        mask = state.memory_mask[:, None, :]
        if state.projected_memory is not None:
            context, weights = attend(self.attention.score(states, state.memory, state.projected_memory),
                                      state.memory, mask)
        else:
            context, weights = self.attention(states, state.memory, mask=mask)          # (batch, T, d_enc)
        combined = torch.tanh(self.combine(torch.cat([context, states], dim=-1)))        # s̃_t
        return F.log_softmax(self.readout(combined), dim=-1), weights

    def _forward_step_by_step(self, target_in: Tensor, state: DecoderState) -> tuple[Tensor, Tensor | None]:
        log_probs, weights = [], []
        for tokens in target_in.unbind(dim=1):
            step_log_probs, state, step_weights = self.step(tokens, state)
            log_probs.append(step_log_probs)
            weights.append(step_weights)
        stacked_weights = None if self.attention is None else torch.stack(weights, dim=1)
        return torch.stack(log_probs, dim=1), stacked_weights

    def loss(self, source: Tensor, source_lengths: Tensor, target_in: Tensor, target_out: Tensor,
             ignore_index: int = -100) -> Tensor:
        """Mean cross-entropy (nats) over the target tokens that are not ``ignore_index``."""
        log_probs, _ = self(source, source_lengths, target_in)
        return F.nll_loss(log_probs.flatten(0, 1), target_out.flatten(), ignore_index=ignore_index)

    @torch.no_grad()
    def greedy(self, source: Tensor, source_lengths: Tensor, bos_id: int, eos_id: int,
               max_length: int) -> tuple[list[list[int]], Tensor | None]:
        """Arg-max decoding from BOS until EOS (not included) or ``max_length`` tokens (:func:`greedy_search`).

        Returns the token lists and the attention weights ``(batch, steps, S)`` (None without attention).
        """
        outputs, states = greedy_search(self.conditioned_on(source, source_lengths), source.shape[0], bos_id,
                                        eos_id, max_length)
        return outputs, (None if self.attention is None else torch.stack([state.weights for state in states], dim=1))


@torch.no_grad()
def greedy_search(decoder: LanguageModel, batch_size: int, bos_id: int, eos_id: int,
                  max_length: int) -> tuple[list[list[int]], list]:
    """Greedy decoding of a conditioned decoder (the course's protocol), every row at once::

        y_0 = BOS,   y_t = argmax_v p(v | y_<t, x)       until y_t = EOS (not kept) or t = max_length

    Returns the token lists and the decoder's state after every step (``steps`` states, where
    ``steps`` is the step at which the last row ended): each model reads its attention from them.
    A row that has ended keeps being fed its arg-max, which no other row sees.
    """
    max_length = checks.positive_int("max_length", max_length)
    state = decoder.initial_state(batch_size)
    tokens = torch.full((batch_size,), checks.non_negative_int("bos_id", bos_id), dtype=torch.long)
    outputs: list[list[int]] = [[] for _ in range(batch_size)]
    finished = torch.zeros(batch_size, dtype=torch.bool)
    states = []
    for _ in range(max_length):
        log_probs, state = decoder.step(tokens, state)
        tokens = log_probs.argmax(dim=-1)
        states.append(state)
        for b in (~finished).nonzero().flatten().tolist():
            if tokens[b] != eos_id:
                outputs[b].append(int(tokens[b]))
        finished |= tokens == eos_id
        if bool(finished.all()):
            break
    return outputs, states


class ConditionedDecoder(LanguageModel):
    """A :class:`Seq2Seq` decoder as a language model of the target, conditioned on fixed sources.

    The course's protocol (:mod:`course_lib.language_model`): ``initial_state`` encodes the sources
    (so ``batch_size`` must be their number), ``step`` is one decoder step, and the state, a
    :class:`DecoderState`, also carries the step's attention weights. Whatever decodes a language
    model (greedy search here, sampling and beam search in Chapter 8) decodes a translation.
    """

    def __init__(self, model: "Seq2Seq", source: Tensor, source_lengths: Tensor) -> None:
        self.model = model
        self.source, self.source_lengths = _check_source(source, source_lengths)
        self.vocab_size = model.vocab_size

    def initial_state(self, batch_size: int) -> DecoderState:
        if checks.positive_int("batch_size", batch_size) != self.source.shape[0]:
            raise checks.ArgumentError(f"this decoder is conditioned on {self.source.shape[0]} sources, "
                                       f"so its batch has {self.source.shape[0]} rows, not {batch_size}")
        return self.model.start(self.source, self.source_lengths)

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        log_probs, state, _ = self.model.step(tokens, state)
        return log_probs, state

    def select_state(self, state: DecoderState, index: Tensor) -> DecoderState:
        return state.select(index)


def _check_ids(name: str, ids: object) -> Tensor:
    if not isinstance(ids, Tensor) or ids.dtype != torch.long or ids.dim() != 2:
        shape = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
        raise checks.ArgumentError(f"{name} must be a (batch, time) tensor of token ids (torch.long), got {shape}")
    return ids


def _check_source(source: object, lengths: object) -> tuple[Tensor, Tensor]:
    source = _check_ids("source", source)
    lengths = torch.as_tensor(lengths)
    if lengths.dtype not in (torch.int32, torch.int64):
        raise checks.ArgumentError(f"source_lengths must be integers, got dtype {lengths.dtype}")
    return source, lengths


def make_batch(sources: list[list[int]], targets: list[list[int]], *, pad_id: int, bos_id: int,
               eos_id: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(source, source_lengths, target_in, target_out)`` for teacher forcing, right-padded.

    Each source gets EOS appended (it ends the input); the decoder reads ``BOS y_1 .. y_T`` and
    predicts ``y_1 .. y_T EOS`` (the target shifted by one); padded targets are ``IGNORE_INDEX``.
    """
    if len(sources) != len(targets) or not sources:
        raise checks.ArgumentError(f"give one target per source and at least one pair; got {len(sources)} sources "
                                   f"and {len(targets)} targets")
    source_rows = [list(row) + [eos_id] for row in sources]
    target_rows = [list(row) for row in targets]
    S, T = max(map(len, source_rows)), max(map(len, target_rows)) + 1
    source = torch.full((len(sources), S), pad_id, dtype=torch.long)
    target_in = torch.full((len(sources), T), pad_id, dtype=torch.long)
    target_out = torch.full((len(sources), T), IGNORE_INDEX, dtype=torch.long)
    for b, (src, tgt) in enumerate(zip(source_rows, target_rows)):
        source[b, :len(src)] = torch.tensor(src)
        target_in[b, :len(tgt) + 1] = torch.tensor([bos_id] + tgt)
        target_out[b, :len(tgt) + 1] = torch.tensor(tgt + [eos_id])
    return source, torch.tensor([len(row) for row in source_rows]), target_in, target_out


# ---------------------------------------------------------------------------------------------
# Sentences in, sentences out
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Translation:
    """A greedy translation and, with attention, its weights ``(len(tokens) + 1, len(source) + 1)``:
    one row per produced token and the EOS step, one column per source token and the source's EOS."""

    tokens: list[str]
    weights: Tensor | None


def special_ids(source_vocabulary, target_vocabulary) -> tuple[int, int, int]:
    """``(pad, bos, eos)``, which the batch uses on both sides: the two vocabularies must agree on them."""
    ids = [tuple(vocabulary.special_id(token) for token in ("<pad>", "<s>", "</s>"))
           for vocabulary in (source_vocabulary, target_vocabulary)]
    if ids[0] != ids[1]:
        raise checks.ArgumentError(f"the source and target vocabularies give <pad>, <s>, </s> different ids "
                                   f"({ids[0]} and {ids[1]}); build both with the same specials, in one order")
    return ids[1]


def _encoded_sources(sentences, source_vocabulary, reverse_source: bool) -> list[list[int]]:
    encoded = []
    for i, sentence in enumerate(sentences):
        if isinstance(sentence, str) or not sentence:
            raise checks.ArgumentError(f"sentence {i} must be a non-empty list of tokens")
        unknown = [token for token in sentence if token not in source_vocabulary]
        if unknown:
            raise checks.ArgumentError(f"sentence {i} has words the model does not know: {unknown}")
        ids = source_vocabulary.encode(list(sentence))
        encoded.append(ids[::-1] if reverse_source else ids)
    return encoded


@torch.no_grad()
def translate(model: Seq2Seq, sentences, source_vocabulary, target_vocabulary, *, reverse_source: bool = False,
              max_length: int | None = None, batch_size: int = 100) -> list[Translation]:
    """Greedy translations of tokenised ``sentences`` (lists of words), in batches.

    ``model`` is a :class:`Seq2Seq` or any model with its ``greedy`` (Chapter 7's
    :class:`~course_lib.transformer.TransformerSeq2Seq`).

    ``max_length`` defaults to twice the longest source plus 10 target tokens. With
    ``reverse_source`` the model reads each sentence backwards (its weights' columns then run
    backwards too).
    """
    pad, bos, eos = special_ids(source_vocabulary, target_vocabulary)
    encoded = _encoded_sources(sentences, source_vocabulary, reverse_source)
    limit = max_length or 2 * max(map(len, encoded)) + 10
    results: list[Translation] = []
    for start in range(0, len(encoded), checks.positive_int("batch_size", batch_size)):
        rows = encoded[start:start + batch_size]
        source, lengths, _, _ = make_batch(rows, [[]] * len(rows), pad_id=pad, bos_id=bos, eos_id=eos)
        outputs, weights = model.greedy(source, lengths, bos, eos, limit)
        for b, ids in enumerate(outputs):
            steps = len(ids) + 1 if weights is None else min(len(ids) + 1, weights.shape[1])
            row_weights = None if weights is None else weights[b, :steps, :int(lengths[b])].clone()
            results.append(Translation(target_vocabulary.decode(ids), row_weights))
    return results


@torch.no_grad()
def forced_attention(model: Seq2Seq, sources, targets, source_vocabulary, target_vocabulary, *,
                     batch_size: int = 100) -> list[Tensor]:
    """Teacher-forced attention weights, one ``(len(target), len(source))`` matrix per pair.

    The decoder reads the reference translation (not its own guesses), so row ``t`` is where
    the model looks while producing the true ``t``-th target word: the matrix to compare with
    the true alignment. The EOS step and the source's EOS column are cut off.
    """
    if model.attention is None:
        raise checks.ArgumentError("this model has no attention, so there are no weights to read")
    if len(sources) != len(targets):
        raise checks.ArgumentError(f"{len(sources)} sources but {len(targets)} targets")
    pad, bos, eos = special_ids(source_vocabulary, target_vocabulary)
    encoded = _encoded_sources(sources, source_vocabulary, reverse_source=False)
    matrices = []
    for start in range(0, len(encoded), checks.positive_int("batch_size", batch_size)):
        rows = encoded[start:start + batch_size]
        target_rows = [target_vocabulary.encode(list(target)) for target in targets[start:start + batch_size]]
        source, lengths, target_in, _ = make_batch(rows, target_rows, pad_id=pad, bos_id=bos, eos_id=eos)
        _, weights = model(source, lengths, target_in)
        for b, (src, tgt) in enumerate(zip(rows, target_rows)):
            matrices.append(weights[b, :len(tgt), :len(src)].clone())
    return matrices
