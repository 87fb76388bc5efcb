"""BERT (Chapter 9): a bidirectional Transformer encoder pretrained by masked language modelling
(Devlin et al., 2019), and RoBERTa as a configuration of the same code (Liu et al., 2019).

BERT is Chapter 7's post-norm :class:`~course_lib.transformer.EncoderLayer` stacked, with BERT's
choices::

    e_i = LayerNorm(E_token[x_i] + E_position[p_i] + E_segment[s_i])     the embeddings, (batch, T, H)
    h^l = EncoderLayer_l(h^{l-1}),  h^0 = e                               post-norm, GELU (exact erf)
    last_hidden_state = h^L                                               (batch, T, H)
    pooler_output     = tanh(W_p h^L_[CLS] + b_p)                         (batch, H), the first token

Heads on top:

* masked LM: ``logits = LayerNorm(GELU(h W_t + b_t)) E_tokenᵀ + b``: the decoder is the word
  embedding matrix itself (tied; same storage) with its own bias ``b`` (:class:`MaskedLMHead`);
* next-sentence prediction: ``W_nsp pooler_output + b_nsp``, 2 classes (:class:`BertForPreTraining`);
* extractive question answering: ``[start, end] = h W_qa + b_qa``, one start and one end logit per
  token, no pooler; loss = mean of the start and end cross-entropies (:class:`BertForQuestionAnswering`).

RoBERTa is the same network with other settings (:meth:`BertConfig.roberta_base`): one segment
(``type_vocab_size=1``), layer-norm ε 1e-5, and positions that start after the padding id and skip
padding, ``p_i = padding_id + Σ_{j ≤ i} [x_j ≠ pad]`` for real tokens and ``padding_id`` on
padding (Hugging Face's ``create_position_ids_from_input_ids``); so 514 position vectors serve
512 tokens.

``attention_mask`` is ``(batch, T)`` with 1 at real tokens and 0 at padding, as Hugging Face's;
inside, it becomes Chapter 7's boolean key mask. Both attention paths of Chapter 7 serve:
``transformer.set_fused(model, False)`` switches to the written-out one (same parameters).

Hugging Face's state dicts load by name (:func:`from_hf_state_dict`, :func:`to_hf_state_dict`,
``model.load_hf_state_dict``); BERT needs no transposes, only the three projections ``query``,
``key``, ``value`` stacked into Chapter 7's ``in_proj_weight`` (``bert.`` or ``roberta.`` in
front of the encoder's names in the models with a head)::

    Hugging Face                                      course
    embeddings.word_embeddings                        embeddings.token
    embeddings.position_embeddings                    embeddings.position
    embeddings.token_type_embeddings                  embeddings.segment
    embeddings.LayerNorm                              embeddings.norm
    encoder.layer.{l}.attention.self.{query,key,value}  encoder.layers.{l}.self_attention.in_proj_*
    encoder.layer.{l}.attention.output.dense          encoder.layers.{l}.self_attention.out_proj
    encoder.layer.{l}.attention.output.LayerNorm      encoder.layers.{l}.norm1
    encoder.layer.{l}.intermediate.dense              encoder.layers.{l}.feed_forward.linear1
    encoder.layer.{l}.output.dense                    encoder.layers.{l}.feed_forward.linear2
    encoder.layer.{l}.output.LayerNorm                encoder.layers.{l}.norm2
    pooler.dense                                      pooler.dense
    cls.predictions.transform.dense    lm_head.dense        mlm_head.dense
    cls.predictions.transform.LayerNorm  lm_head.layer_norm  mlm_head.norm
    cls.predictions.decoder.weight     lm_head.decoder.weight  mlm_head.decoder.weight (tied)
    cls.predictions.bias               lm_head.bias         mlm_head.decoder.bias
    cls.seq_relationship                                  nsp_head
    qa_outputs                                            qa_outputs

:func:`parameter_count_formula` writes the count out component by component (BERT-base:
109,482,240; BERT-large: 335,141,888), :func:`count_parameters` counts a model's tensors and
:func:`parameter_memory_bytes` gives their memory.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib import checks
from course_lib.objectives import IGNORE_INDEX
from course_lib.transformer import ACTIVATIONS, EncoderLayer, LayerNorm

__all__ = [
    "BertConfig",
    "BertEmbeddings",
    "BertEncoder",
    "BertForMaskedLM",
    "BertForPreTraining",
    "BertForQuestionAnswering",
    "BertModel",
    "BertOutput",
    "BertPooler",
    "MaskedLMHead",
    "MaskedLMOutput",
    "ParameterRow",
    "ParameterTable",
    "PreTrainingOutput",
    "QuestionAnsweringOutput",
    "best_answer_span",
    "count_parameters",
    "from_hf_state_dict",
    "mean_pooling",
    "parameter_count_formula",
    "parameter_memory_bytes",
    "position_ids",
    "question_answering_loss",
    "to_hf_state_dict",
]

MODEL_TYPES = ("bert", "roberta")


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
@dataclass
class BertConfig:
    """BERT's sizes and settings, under Hugging Face's names; the defaults are BERT-base's.

    ``position_offset``: ``None`` numbers the positions ``0 .. T-1`` (BERT); an integer ``o``
    numbers the real tokens ``o+1, o+2, ...`` and gives padding ``o`` (RoBERTa, ``o = pad_token_id``).
    ``model_type`` (``"bert"`` or ``"roberta"``) says whose state-dict names to read and write.
    ``hidden_act`` ``"gelu"`` is the exact ``x Φ(x)`` (erf), as BERT's and ``F.gelu``'s.
    ``fused`` picks the attention and layer-norm path (Chapter 7); the numbers are the same.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    pad_token_id: int = 0
    position_offset: int | None = None
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    initializer_range: float = 0.02
    model_type: str = "bert"
    fused: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):
            setattr(self, name, checks.positive_int(name, getattr(self, name)))
        if self.hidden_size % self.num_attention_heads:
            raise checks.ArgumentError(f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                                       f"({self.num_attention_heads}): each head gets hidden_size / heads features")
        self.layer_norm_eps = checks.positive_number("layer_norm_eps", self.layer_norm_eps)
        checks.one_of("hidden_act", self.hidden_act, ACTIVATIONS)
        self.pad_token_id = checks.integer("pad_token_id", self.pad_token_id, minimum=0, maximum=self.vocab_size - 1)
        if self.position_offset is not None:
            self.position_offset = checks.integer("position_offset", self.position_offset, minimum=0,
                                                  maximum=self.max_position_embeddings - 2)
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            setattr(self, name, checks.number(name, getattr(self, name), minimum=0.0, below=1.0))
        self.initializer_range = checks.positive_number("initializer_range", self.initializer_range)
        checks.one_of("model_type", self.model_type, MODEL_TYPES)
        self.fused = bool(self.fused)

    @property
    def max_sequence_length(self) -> int:
        """The longest input: every position id must have a vector."""
        offset = self.position_offset
        return self.max_position_embeddings if offset is None else self.max_position_embeddings - offset - 1

    @classmethod
    def base(cls, **changes) -> "BertConfig":
        """BERT-base (uncased): 12 layers, hidden 768, 12 heads, FFN 3072, 30,522 WordPiece tokens."""
        return cls(**changes)

    @classmethod
    def large(cls, **changes) -> "BertConfig":
        """BERT-large: 24 layers, hidden 1024, 16 heads, FFN 4096."""
        return cls(**{**dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                             intermediate_size=4096), **changes})

    @classmethod
    def roberta_base(cls, **changes) -> "BertConfig":
        """RoBERTa-base: BERT-base's shape, 50,265 byte-level BPE tokens, one segment, positions
        after the padding id 1 (514 vectors for 512 tokens), layer-norm ε 1e-5."""
        return cls(**{**dict(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                             pad_token_id=1, position_offset=1, model_type="roberta"), **changes})

    @classmethod
    def from_hf(cls, hf_config: object, **changes) -> "BertConfig":
        """From a ``transformers`` ``BertConfig`` / ``RobertaConfig`` or the dictionary of a
        ``config.json``; RoBERTa's positions follow from ``model_type == "roberta"``."""
        values = hf_config if isinstance(hf_config, Mapping) else hf_config.to_dict()
        if values.get("position_embedding_type", "absolute") != "absolute" or values.get("is_decoder", False):
            raise checks.ArgumentError("the course's BERT has absolute positions and bidirectional attention; this "
                                       "configuration asks for relative positions or a decoder")
        known = {f.name for f in fields(cls)} - {"position_offset", "fused"}
        arguments = {name: values[name] for name in known if values.get(name) is not None}
        arguments["model_type"] = values.get("model_type", "bert")
        if arguments["model_type"] == "roberta":
            arguments["position_offset"] = arguments.get("pad_token_id", 1)
        return cls(**{**arguments, **changes})


# ---------------------------------------------------------------------------------------------
# Embeddings, encoder, pooler
# ---------------------------------------------------------------------------------------------
def position_ids(input_ids: Tensor, config: BertConfig) -> Tensor:
    """``(batch, T)`` position of every token: ``0 .. T-1`` (BERT) or, with ``position_offset = o``,
    ``p_i = o + Σ_{j ≤ i} [x_j ≠ pad]`` at real tokens and ``o`` at padding (RoBERTa)."""
    batch, time = input_ids.shape
    if config.position_offset is None:
        return torch.arange(time, device=input_ids.device).expand(batch, time)
    real = (input_ids != config.pad_token_id).long()
    return torch.cumsum(real, dim=1) * real + config.position_offset


class BertEmbeddings(nn.Module):
    """``e_i = LayerNorm(E_token[x_i] + E_position[p_i] + E_segment[s_i])``, then dropout while
    training: ``input_ids (batch, T)``, ``token_type_ids (batch, T)`` -> ``(batch, T, H)``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.token = nn.Embedding(config.vocab_size, hidden, padding_idx=config.pad_token_id)
        roberta_padding = None if config.position_offset is None else config.pad_token_id
        self.position = nn.Embedding(config.max_position_embeddings, hidden, padding_idx=roberta_padding)
        self.segment = nn.Embedding(config.type_vocab_size, hidden)
        self.norm = LayerNorm(hidden, config.layer_norm_eps, fused=config.fused)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        summed = self.token(input_ids) + self.position(position_ids(input_ids, self.config)) \
            + self.segment(token_type_ids)
        return self.dropout(self.norm(summed))


class BertEncoder(nn.Module):
    """``num_hidden_layers`` of Chapter 7's post-norm :class:`EncoderLayer`::

        a = LayerNorm_1(h + Dropout(MultiHead(h, h, h)))
        h' = LayerNorm_2(a + Dropout(GELU(a W_1 + b_1) W_2 + b_2))

    ``x (batch, T, H)``, ``key_mask (batch, T)`` boolean, True at real tokens -> ``(batch, T, H)``.
    As BERT, attention weights drop with ``attention_probs_dropout_prob`` and no hidden unit of
    the feed-forward network is dropped (Chapter 7's layer, like PyTorch's, drops them).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(config.num_hidden_layers):
            layer = EncoderLayer(config.hidden_size, config.num_attention_heads, config.intermediate_size,
                                 dropout=config.hidden_dropout_prob, activation=config.hidden_act,
                                 norm_first=False, layer_norm_eps=config.layer_norm_eps, fused=config.fused)
            layer.self_attention.dropout = config.attention_probs_dropout_prob
            layer.feed_forward.dropout = nn.Identity()
            self.layers.append(layer)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        mask = None if key_mask is None else key_mask[:, None, None, :]  # every head, every query
        for layer in self.layers:
            x = layer(x, mask)
        return x


class BertPooler(nn.Module):
    """``pooler_output = tanh(W_p h_[CLS] + b_p)``: ``(batch, T, H)`` -> ``(batch, H)``, read from
    the first token only."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return torch.tanh(self.dense(hidden_states[:, 0]))


@dataclass
class BertOutput:
    """``last_hidden_state (batch, T, H)``; ``pooler_output (batch, H)``, or ``None`` without a pooler."""

    last_hidden_state: Tensor
    pooler_output: Tensor | None


def _check_inputs(config: BertConfig, input_ids: object, attention_mask: object,
                  token_type_ids: object) -> tuple[Tensor, Tensor | None, Tensor]:
    """The inputs as ``(input_ids, key_mask or None, token_type_ids)``, or a clear error."""
    if not isinstance(input_ids, Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point() \
            or input_ids.dtype == torch.bool:
        got = f"{input_ids.dtype} of shape {tuple(input_ids.shape)}" if isinstance(input_ids, Tensor) \
            else type(input_ids).__name__
        raise checks.ArgumentError(f"input_ids must be a (batch, seq_len) tensor of integer token ids, got {got}")
    batch, time = input_ids.shape
    if batch == 0 or time == 0:
        raise checks.ArgumentError(f"input_ids is empty (shape {(batch, time)}); give at least one token")
    if int(input_ids.min()) < 0 or int(input_ids.max()) >= config.vocab_size:
        raise checks.ArgumentError(f"input_ids must lie in [0, vocab_size={config.vocab_size}), got values in "
                                   f"[{int(input_ids.min())}, {int(input_ids.max())}]")
    if time > config.max_sequence_length:
        raise checks.ArgumentError(f"a sequence of {time} tokens is longer than the {config.max_sequence_length} "
                                   f"positions this model has vectors for; cut it or split it into windows")
    key_mask = None
    if attention_mask is not None:
        if not isinstance(attention_mask, Tensor) or attention_mask.shape != input_ids.shape:
            got = tuple(attention_mask.shape) if isinstance(attention_mask, Tensor) else type(attention_mask).__name__
            raise checks.ArgumentError(f"attention_mask must have input_ids' shape {(batch, time)} (1 at real "
                                       f"tokens, 0 at padding), got {got}")
        if not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
            raise checks.ArgumentError("attention_mask must hold only 1 (real token) and 0 (padding)")
        key_mask = attention_mask.to(input_ids.device) == 1
        if not bool(key_mask.any(dim=1).all()):
            empty = (~key_mask.any(dim=1)).nonzero().squeeze(1).tolist()
            raise checks.ArgumentError(f"rows {empty} of attention_mask have no real token; every sequence "
                                       f"needs at least one (e.g. its [CLS])")
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    elif not isinstance(token_type_ids, Tensor) or token_type_ids.shape != input_ids.shape \
            or token_type_ids.is_floating_point():
        got = tuple(token_type_ids.shape) if isinstance(token_type_ids, Tensor) else type(token_type_ids).__name__
        raise checks.ArgumentError(f"token_type_ids must be integer segment ids of input_ids' shape {(batch, time)}, "
                                   f"got {got}")
    elif int(token_type_ids.min()) < 0 or int(token_type_ids.max()) >= config.type_vocab_size:
        raise checks.ArgumentError(f"token_type_ids must lie in [0, type_vocab_size={config.type_vocab_size}), "
                                   f"got values in [{int(token_type_ids.min())}, {int(token_type_ids.max())}]")
    return input_ids.long(), key_mask, token_type_ids.long()


def _initialise(module: nn.Module, std: float) -> None:
    """BERT's initialisation: weights N(0, std²) with std = 0.02, biases 0, layer norms γ = 1,
    β = 0 (they start so); embeddings last, so that a decoder tied to the word embeddings leaves
    their padding row at 0."""
    for part in module.modules():
        if isinstance(part, nn.Linear):
            nn.init.normal_(part.weight, std=std)
            if part.bias is not None:
                nn.init.zeros_(part.bias)
        elif hasattr(part, "in_proj_weight"):  # Chapter 7's multi-head attention: W^Q; W^K; W^V in one matrix
            nn.init.normal_(part.in_proj_weight, std=std)
            nn.init.zeros_(part.in_proj_bias)
    for part in module.modules():
        if isinstance(part, nn.Embedding):
            nn.init.normal_(part.weight, std=std)
            if part.padding_idx is not None:
                with torch.no_grad():
                    part.weight[part.padding_idx].zero_()


class _HuggingFaceNames:
    """Loading and writing Hugging Face state dicts by name (see the module docstring)."""

    config: BertConfig

    def load_hf_state_dict(self, hf_state_dict: Mapping[str, Tensor], *, strict: bool = True):
        """Load a Hugging Face state dict of the same model (its ``bert.`` / ``roberta.`` prefix
        optional for a bare :class:`BertModel`); ``strict=False`` skips tensors this model has no
        place for (e.g. a pretraining checkpoint's heads). Returns the model."""
        state = from_hf_state_dict(hf_state_dict, strict_names=strict)
        own = self.state_dict()
        if not any(name.startswith("bert.") for name in own) and not set(state) & set(own):
            state = {name.removeprefix("bert."): tensor for name, tensor in state.items()}  # a bare BertModel
        if "mlm_head.decoder.weight" in own:  # tied: one matrix, the checkpoint may store it once
            embedding = state.get("bert.embeddings.token.weight")
            decoder = state.setdefault("mlm_head.decoder.weight", embedding)
            if embedding is not None and decoder is not None and not torch.equal(decoder, embedding):
                raise checks.ArgumentError("the checkpoint's MLM decoder differs from its word embeddings; this "
                                           "model ties them (one matrix), so it cannot hold both")
        unexpected = sorted(set(state) - set(own))
        if unexpected and strict:
            raise checks.ArgumentError(f"the checkpoint has tensors this {type(self).__name__} has no place for: "
                                       f"{unexpected[:6]}{' ...' if len(unexpected) > 6 else ''}; pass strict=False "
                                       f"to skip them")
        missing = sorted(set(own) - set(state))
        if missing:
            raise checks.ArgumentError(f"the checkpoint lacks {missing[:6]}{' ...' if len(missing) > 6 else ''} "
                                       f"for this {type(self).__name__}")
        self.load_state_dict({name: state[name] for name in own})
        return self

    def to_hf_state_dict(self) -> dict[str, Tensor]:
        """This model's tensors under Hugging Face's names (:func:`to_hf_state_dict`)."""
        return to_hf_state_dict(self.state_dict(), model_type=self.config.model_type)

    @classmethod
    def from_hf_state_dict(cls, hf_state_dict: Mapping[str, Tensor], config: BertConfig, *, strict: bool = True):
        """A model of this class with ``config``'s sizes and the checkpoint's weights."""
        return cls(config).load_hf_state_dict(hf_state_dict, strict=strict)


class BertModel(_HuggingFaceNames, nn.Module):
    """The encoder: embeddings, ``num_hidden_layers`` encoder layers, and the pooler (unless
    ``add_pooling_layer=False``, as the masked-LM and question-answering models have it).

    ``forward(input_ids (batch, T), attention_mask (batch, T) of 1/0, token_type_ids (batch, T))``
    -> :class:`BertOutput` with ``last_hidden_state (batch, T, H)`` and ``pooler_output (batch, H)``.
    """

    def __init__(self, config: BertConfig | None = None, add_pooling_layer: bool = True) -> None:
        super().__init__()
        self.config = config = config or BertConfig()
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        _initialise(self, config.initializer_range)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> BertOutput:
        input_ids, key_mask, token_type_ids = _check_inputs(self.config, input_ids, attention_mask, token_type_ids)
        hidden = self.encoder(self.embeddings(input_ids, token_type_ids), key_mask)  # (batch, T, H)
        return BertOutput(hidden, None if self.pooler is None else self.pooler(hidden))


# ---------------------------------------------------------------------------------------------
# Heads
# ---------------------------------------------------------------------------------------------
class MaskedLMHead(nn.Module):
    """``logits = LayerNorm(GELU(h W_t + b_t)) E_tokenᵀ + b``: ``(batch, T, H)`` -> ``(batch, T, V)``.

    ``decoder.weight`` IS the word-embedding matrix ``E_token (V, H)`` (the same parameter: a
    gradient step moves both), ``decoder.bias`` is the head's own ``b (V,)``.
    """

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = config.hidden_act
        self.norm = LayerNorm(config.hidden_size, config.layer_norm_eps, fused=config.fused)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.decoder.weight = word_embeddings.weight  # tied

    def forward(self, hidden_states: Tensor) -> Tensor:
        transformed = self.norm(ACTIVATIONS[self.activation](self.dense(hidden_states)))
        return self.decoder(transformed)


@dataclass
class MaskedLMOutput:
    """``logits (batch, T, V)``; ``loss``: mean cross-entropy over the labels that are not -100."""

    logits: Tensor
    loss: Tensor | None = None


def _mlm_loss(logits: Tensor, labels: Tensor | None) -> Tensor | None:
    if labels is None:
        return None
    if not isinstance(labels, Tensor) or labels.shape != logits.shape[:2]:
        got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise checks.ArgumentError(f"labels must be (batch, seq_len) = {tuple(logits.shape[:2])} token ids, "
                                   f"-100 where there is no loss; got {got}")
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten().long(), ignore_index=IGNORE_INDEX)


class BertForMaskedLM(_HuggingFaceNames, nn.Module):
    """:class:`BertModel` (no pooler) and the :class:`MaskedLMHead`: ``forward(input_ids,
    attention_mask, token_type_ids, labels)`` -> :class:`MaskedLMOutput`, ``logits (batch, T, V)``;
    with ``labels`` (:func:`course_lib.objectives.mask_tokens`' ``labels``) also the loss."""

    def __init__(self, config: BertConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or BertConfig()
        self.bert = BertModel(config, add_pooling_layer=False)
        self.mlm_head = MaskedLMHead(config, self.bert.embeddings.token)
        _initialise(self, config.initializer_range)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                labels: Tensor | None = None) -> MaskedLMOutput:
        logits = self.mlm_head(self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state)
        return MaskedLMOutput(logits, _mlm_loss(logits, labels))


@dataclass
class PreTrainingOutput:
    """``prediction_logits (batch, T, V)``, ``seq_relationship_logits (batch, 2)`` (0: B follows
    A, 1: B is random), and with both labels the sum of the two losses."""

    prediction_logits: Tensor
    seq_relationship_logits: Tensor
    loss: Tensor | None = None


class BertForPreTraining(_HuggingFaceNames, nn.Module):
    """BERT's pretraining: :class:`BertModel` with its pooler, the masked-LM head, and the
    next-sentence head ``nsp_head``: ``W_nsp pooler_output + b_nsp`` ``(batch, 2)``.
    Loss = masked-LM cross-entropy + next-sentence cross-entropy."""

    def __init__(self, config: BertConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or BertConfig()
        self.bert = BertModel(config)
        self.mlm_head = MaskedLMHead(config, self.bert.embeddings.token)
        self.nsp_head = nn.Linear(config.hidden_size, 2)
        _initialise(self, config.initializer_range)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                labels: Tensor | None = None, next_sentence_label: Tensor | None = None) -> PreTrainingOutput:
        output = self.bert(input_ids, attention_mask, token_type_ids)
        logits = self.mlm_head(output.last_hidden_state)
        nsp_logits = self.nsp_head(output.pooler_output)
        loss = None
        if labels is not None and next_sentence_label is not None:
            loss = _mlm_loss(logits, labels) + F.cross_entropy(nsp_logits, next_sentence_label.reshape(-1).long())
        return PreTrainingOutput(logits, nsp_logits, loss)


@dataclass
class QuestionAnsweringOutput:
    """``start_logits``, ``end_logits`` ``(batch, T)``; with the answer positions, the loss."""

    start_logits: Tensor
    end_logits: Tensor
    loss: Tensor | None = None


def question_answering_loss(start_logits: Tensor, end_logits: Tensor, start_positions: Tensor,
                            end_positions: Tensor) -> Tensor:
    """``(CE(start_logits, start) + CE(end_logits, end)) / 2``, as Hugging Face: positions are
    clamped to ``[0, T]`` and a position ``T`` (outside the input) adds no loss."""
    time = start_logits.shape[1]
    start = torch.as_tensor(start_positions).reshape(-1).long().clamp(0, time)
    end = torch.as_tensor(end_positions).reshape(-1).long().clamp(0, time)
    if len(start) != start_logits.shape[0] or len(end) != end_logits.shape[0]:
        raise checks.ArgumentError(f"give one start and one end position per example ({start_logits.shape[0]}), "
                                   f"got {len(start)} and {len(end)}")
    return (F.cross_entropy(start_logits, start, ignore_index=time)
            + F.cross_entropy(end_logits, end, ignore_index=time)) / 2


def best_answer_span(start_logits: Tensor, end_logits: Tensor, max_answer_length: int,
                     allowed: Tensor | None = None) -> Tensor:
    """The answer a question-answering model reads off its logits::

        (ŝ, ê) = argmax_{s ≤ e < s + max_answer_length, s and e allowed} start_logits[s] + end_logits[e]

    ``start_logits``, ``end_logits`` ``(batch, T)``; ``allowed (batch, T)`` boolean, True where an
    answer may start or end (the context's tokens, not the question's or the padding); returns
    ``(batch, 2)`` token positions ``[ŝ, ê]``, inclusive.
    """
    if start_logits.dim() != 2 or start_logits.shape != end_logits.shape:
        raise checks.ArgumentError(f"start_logits and end_logits must both be (batch, seq_len), got shapes "
                                   f"{tuple(start_logits.shape)} and {tuple(end_logits.shape)}")
    max_answer_length = checks.positive_int("max_answer_length", max_answer_length)
    time = start_logits.shape[1]
    start, end = torch.arange(time)[:, None], torch.arange(time)[None, :]
    valid = (start <= end) & (end < start + max_answer_length)  # (T, T): rows starts, columns ends
    if allowed is not None:
        if not isinstance(allowed, Tensor) or allowed.dtype != torch.bool or allowed.shape != start_logits.shape:
            raise checks.ArgumentError(f"allowed must be a boolean tensor of the logits' shape "
                                       f"{tuple(start_logits.shape)}")
        if not bool(allowed.any(dim=1).all()):
            raise checks.ArgumentError("every row of allowed needs at least one position an answer may take")
        valid = valid & allowed[:, :, None] & allowed[:, None, :]
    scores = (start_logits[:, :, None] + end_logits[:, None, :]).masked_fill(~valid, float("-inf"))
    best = scores.flatten(1).argmax(dim=1)  # (batch,)
    return torch.stack([best // time, best % time], dim=1)


def mean_pooling(last_hidden_state: Tensor, attention_mask: Tensor) -> Tensor:
    """A sentence's vector as the mean of its real tokens' vectors (the pooling of sentence
    encoders such as all-MiniLM-L6-v2)::

        v = Σ_i m_i h_i / max(Σ_i m_i, 1e-9)          m_i = attention_mask[i]

    ``last_hidden_state (batch, T, H)``, ``attention_mask (batch, T)`` of 1/0 -> ``(batch, H)``.
    """
    if attention_mask.shape != last_hidden_state.shape[:2]:
        raise checks.ArgumentError(f"attention_mask must be (batch, seq_len) = {tuple(last_hidden_state.shape[:2])}, "
                                   f"got {tuple(attention_mask.shape)}")
    weights = attention_mask.to(last_hidden_state.dtype).unsqueeze(-1)  # (batch, T, 1)
    return (last_hidden_state * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


class BertForQuestionAnswering(_HuggingFaceNames, nn.Module):
    """Extractive question answering: :class:`BertModel` without a pooler and ``qa_outputs``, a
    linear map ``H -> 2``: ``[start_logits, end_logits] = h W_qa + b_qa``, one pair per token.
    ``forward(input_ids, attention_mask, token_type_ids, start_positions, end_positions)`` ->
    :class:`QuestionAnsweringOutput`; the loss is :func:`question_answering_loss`."""

    def __init__(self, config: BertConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or BertConfig()
        self.bert = BertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        _initialise(self.qa_outputs, config.initializer_range)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                start_positions: Tensor | None = None,
                end_positions: Tensor | None = None) -> QuestionAnsweringOutput:
        hidden = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state
        start_logits, end_logits = self.qa_outputs(hidden).unbind(dim=-1)  # (batch, T) each
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = question_answering_loss(start_logits, end_logits, start_positions, end_positions)
        return QuestionAnsweringOutput(start_logits, end_logits, loss)


# ---------------------------------------------------------------------------------------------
# Hugging Face's names
# ---------------------------------------------------------------------------------------------
_IN_LAYER = (("self_attention.out_proj.", "attention.output.dense."), ("norm1.", "attention.output.LayerNorm."),
             ("feed_forward.linear1.", "intermediate.dense."), ("feed_forward.linear2.", "output.dense."),
             ("norm2.", "output.LayerNorm."))
_IN_MODEL = (("embeddings.token.", "embeddings.word_embeddings."),
             ("embeddings.position.", "embeddings.position_embeddings."),
             ("embeddings.segment.", "embeddings.token_type_embeddings."),
             ("embeddings.norm.", "embeddings.LayerNorm."),
             ("pooler.dense.", "pooler.dense."))
_HEADS = {
    "bert": (("mlm_head.dense.", "cls.predictions.transform.dense."),
             ("mlm_head.norm.", "cls.predictions.transform.LayerNorm."),
             ("mlm_head.decoder.weight", "cls.predictions.decoder.weight"),
             ("mlm_head.decoder.bias", "cls.predictions.bias"),
             ("nsp_head.", "cls.seq_relationship."), ("qa_outputs.", "qa_outputs.")),
    "roberta": (("mlm_head.dense.", "lm_head.dense."), ("mlm_head.norm.", "lm_head.layer_norm."),
                ("mlm_head.decoder.weight", "lm_head.decoder.weight"), ("mlm_head.decoder.bias", "lm_head.bias"),
                ("qa_outputs.", "qa_outputs.")),
}
# Hugging Face keeps the decoder's bias under two names (one tensor): this second one is written too.
_BIAS_ALIAS = {"bert": "cls.predictions.decoder.bias", "roberta": "lm_head.decoder.bias"}
_PROJECTIONS = ("query", "key", "value")  # stacked in this order in in_proj_weight
_COURSE_LAYER = re.compile(r"encoder\.layers\.(\d+)\.(.*)")
_HF_LAYER = re.compile(r"encoder\.layer\.(\d+)\.(.*)")
_HF_PROJECTION = re.compile(r"attention\.self\.(query|key|value)\.(weight|bias)")


def _translate(name: str, pairs) -> str | None:
    for old, new in pairs:
        if name.startswith(old):
            return new + name[len(old):]
    return None


def _model_name_to_hf(name: str) -> list[str]:
    """A name inside :class:`BertModel` -> its Hugging Face name(s) (three for ``in_proj_*``)."""
    layer = _COURSE_LAYER.fullmatch(name)
    if layer is None:
        translated = _translate(name, _IN_MODEL)
        return [] if translated is None else [translated]
    prefix, inner = f"encoder.layer.{layer[1]}.", layer[2]
    if inner.startswith("self_attention.in_proj_"):
        kind = inner[len("self_attention.in_proj_"):]
        return [f"{prefix}attention.self.{projection}.{kind}" for projection in _PROJECTIONS]
    translated = _translate(inner, _IN_LAYER)
    return [] if translated is None else [prefix + translated]


def to_hf_state_dict(state_dict: Mapping[str, Tensor], model_type: str = "bert") -> dict[str, Tensor]:
    """A course BERT state dict (any of this module's models) under Hugging Face's names for
    ``model_type`` ``"bert"`` or ``"roberta"``: ``in_proj_*`` split into ``query``, ``key``,
    ``value``; the decoder's bias written under both of Hugging Face's names."""
    checks.one_of("model_type", model_type, MODEL_TYPES)
    hf_state = {}
    for name, tensor in state_dict.items():
        head = _translate(name, _HEADS[model_type])
        if head is not None:
            hf_state[head] = tensor
            if name == "mlm_head.decoder.bias":
                hf_state[_BIAS_ALIAS[model_type]] = tensor
            continue
        inner, prefix = (name[len("bert."):], f"{model_type}.") if name.startswith("bert.") else (name, "")
        hf_names = _model_name_to_hf(inner)
        if not hf_names:
            raise checks.ArgumentError(f"{name!r} is not a parameter of a course BERT model")
        pieces = tensor.chunk(len(hf_names)) if len(hf_names) > 1 else [tensor]
        hf_state.update({prefix + hf_name: piece for hf_name, piece in zip(hf_names, pieces)})
    return hf_state


def from_hf_state_dict(hf_state_dict: Mapping[str, Tensor], *, strict_names: bool = True) -> dict[str, Tensor]:
    """A Hugging Face ``Bert*`` / ``Roberta*`` state dict under the course's names (the inverse of
    :func:`to_hf_state_dict`): ``query``, ``key``, ``value`` stacked into ``in_proj_*``; the
    ``position_ids`` buffers some checkpoints keep dropped. A name the course does not know is an
    error unless ``strict_names=False`` (then it is skipped)."""
    state, projections = {}, {}
    for hf_name, tensor in hf_state_dict.items():
        if hf_name.endswith(("embeddings.position_ids", "embeddings.token_type_ids")):
            continue  # index buffers, not parameters
        prefix, inner = _split_model_prefix(hf_name)
        layer = _HF_LAYER.fullmatch(inner)
        projection = None if layer is None else _HF_PROJECTION.fullmatch(layer[2])
        if projection is not None:  # one of query, key, value: stacked below
            projections.setdefault((prefix, layer[1], projection[2]), {})[projection[1]] = tensor
            continue
        course = _course_name(prefix, inner) if prefix else _translate(hf_name, _HF_HEADS) or _course_name("", inner)
        if course is None:
            if strict_names:
                raise checks.ArgumentError(f"{hf_name!r} is not a BERT or RoBERTa tensor the course knows; pass "
                                           f"strict_names=False to skip such tensors")
            continue
        if course in state and not torch.equal(state[course], tensor):
            raise checks.ArgumentError(f"{hf_name!r} differs from the other copy of {course!r} in the checkpoint")
        state[course] = tensor
    for (prefix, layer, kind), parts in projections.items():
        if set(parts) != set(_PROJECTIONS):
            raise checks.ArgumentError(f"layer {layer} has {sorted(parts)} of query, key, value ({kind}); all "
                                       f"three are needed")
        state[f"{prefix}encoder.layers.{layer}.self_attention.in_proj_{kind}"] = torch.cat(
            [parts[projection] for projection in _PROJECTIONS])
    return state


# Hugging Face's head names (either model type, and the bias's second name) -> the course's
_HF_HEADS = tuple({hf: course for pairs in _HEADS.values() for course, hf in pairs}.items()) + tuple(
    (alias, "mlm_head.decoder.bias") for alias in _BIAS_ALIAS.values())


def _split_model_prefix(hf_name: str) -> tuple[str, str]:
    """``("bert.", rest)`` for a name under ``bert.`` or ``roberta.`` (the encoder of a model with a
    head, ``bert.`` in the course's models), else ``("", hf_name)``."""
    for model_type in MODEL_TYPES:
        if hf_name.startswith(model_type + "."):
            return "bert.", hf_name[len(model_type) + 1:]
    return "", hf_name


def _course_name(prefix: str, inner: str) -> str | None:
    """A Hugging Face name inside the encoder model (not a projection) -> the course's, or ``None``."""
    layer = _HF_LAYER.fullmatch(inner)
    if layer is None:
        translated = _translate(inner, [(hf, course) for course, hf in _IN_MODEL])
        return None if translated is None else prefix + translated
    translated = _translate(layer[2], [(hf, course) for course, hf in _IN_LAYER])
    return None if translated is None else f"{prefix}encoder.layers.{layer[1]}.{translated}"


# ---------------------------------------------------------------------------------------------
# Counting parameters
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParameterRow:
    """One line of the count: ``part`` (embeddings, encoder layers, pooler), ``component``,
    ``formula`` (the shape arithmetic, written out) and ``count`` (all layers together)."""

    part: str
    component: str
    formula: str
    count: int


@dataclass(frozen=True)
class ParameterTable:
    """:func:`parameter_count_formula`'s rows and their ``total``; ``str()`` prints the table."""

    rows: tuple[ParameterRow, ...]

    @property
    def total(self) -> int:
        return sum(row.count for row in self.rows)

    def __str__(self) -> str:
        # each column as wide as its widest entry, two spaces apart
        part = max(len("part"), *(len(row.part) for row in self.rows)) + 2
        component = max(len("component"), *(len(row.component) for row in self.rows)) + 2
        formula = max(len("formula"), *(len(row.formula) for row in self.rows)) + 2
        lines = [f"{'part':<{part}}{'component':<{component}}{'formula':<{formula}}{'count':>12}"]
        lines += [f"{row.part:<{part}}{row.component:<{component}}{row.formula:<{formula}}{row.count:>12,}"
                  for row in self.rows]
        lines.append(f"{'total':<{part + component + formula}}{self.total:>12,}")
        return "\n".join(lines)


def parameter_count_formula(config: BertConfig, *, pooler: bool = True) -> ParameterTable:
    """BERT's parameters component by component, with ``V`` tokens, ``P`` positions, ``S``
    segments, hidden size ``H``, FFN size ``F`` and ``L`` layers::

        embeddings   V H + P H + S H + 2 H                 (token, position, segment, LayerNorm)
        each layer   4 (H H + H)                           (Q, K, V, O with their biases)
                     + 2 H                                 (attention LayerNorm)
                     + (F H + F) + (H F + H)               (FFN in and out)
                     + 2 H                                 (output LayerNorm)
        pooler       H H + H

    BERT-base (V = 30522, P = 512, S = 2, H = 768, F = 3072, L = 12): 109,482,240;
    BERT-large (H = 1024, F = 4096, L = 24): 335,141,888.
    """
    V, P, S = config.vocab_size, config.max_position_embeddings, config.type_vocab_size
    H, F_, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    layers = f"layers (x {L})"
    rows = [
        ParameterRow("embeddings", "token", f"{V} x {H}", V * H),
        ParameterRow("embeddings", "position", f"{P} x {H}", P * H),
        ParameterRow("embeddings", "segment", f"{S} x {H}", S * H),
        ParameterRow("embeddings", "LayerNorm", f"{H} + {H}", 2 * H),
    ]
    rows += [ParameterRow(layers, f"{name} (weight, bias)", f"({H} x {H} + {H}) x {L}", (H * H + H) * L)
             for name in ("query Q", "key K", "value V", "output O")]
    rows += [
        ParameterRow(layers, "attention LayerNorm", f"({H} + {H}) x {L}", 2 * H * L),
        ParameterRow(layers, "FFN in (weight, bias)", f"({F_} x {H} + {F_}) x {L}", (F_ * H + F_) * L),
        ParameterRow(layers, "FFN out (weight, bias)", f"({H} x {F_} + {H}) x {L}", (H * F_ + H) * L),
        ParameterRow(layers, "output LayerNorm", f"({H} + {H}) x {L}", 2 * H * L),
    ]
    if pooler:
        rows.append(ParameterRow("pooler", "dense (weight, bias)", f"{H} x {H} + {H}", H * H + H))
    return ParameterTable(tuple(rows))


def count_parameters(model: nn.Module) -> int:
    """The number of parameters of ``model``, each tensor once (a tied matrix once); works on the
    meta device, where no memory is allocated."""
    return sum(parameter.numel() for parameter in model.parameters())


def parameter_memory_bytes(num_parameters: int, dtype: torch.dtype = torch.float32) -> int:
    """The memory ``num_parameters`` take in ``dtype``: 4 bytes each in float32, 2 in bfloat16."""
    num_parameters = checks.non_negative_int("num_parameters", num_parameters)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise checks.ArgumentError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    return num_parameters * torch.finfo(dtype).bits // 8
