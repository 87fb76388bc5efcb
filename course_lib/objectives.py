"""Pretraining objectives (Chapter 9) as data transformations over token ids.

Every objective turns raw text into an (input, target) pair; the model is trained to read the
input and predict the target. One function per transformation:

==========================  =======================================================================
:func:`causal_lm_targets`   full language modelling: read ``x_1 .. x_{T-1}``, predict ``x_2 .. x_T``
:func:`prefix_lm_targets`   the same, with the loss on the continuation only (the prefix is context),
                            and :func:`prefix_lm_attention_mask`: the prefix is read in both directions
:func:`mask_tokens`         BERT's masked language modelling (15% selected; 80/10/10)
:func:`span_corruption`     T5's spans, each replaced by one sentinel; the target lists the spans
:func:`text_infilling`      BART's spans (Poisson lengths), each replaced by ONE mask token
:func:`sentence_permutation` BART's shuffled sentences
==========================  =======================================================================

Labels use ``IGNORE_INDEX = -100`` where there is no loss, as ``F.cross_entropy``'s default
``ignore_index`` (and Hugging Face's). Every random transformation takes ``generator``: a
``torch.Generator`` or an integer seed; the same seed gives the same result.

Shapes: the language-modelling targets and :func:`mask_tokens` work on a batch ``(batch, time)``;
span corruption, text infilling and sentence permutation change the length of a sequence, so they
work on one sequence ``(length,)`` at a time (as T5's and BART's preprocessors do).
"""
from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import torch
from torch import Tensor

from course_lib import checks

__all__ = [
    "IGNORE_INDEX",
    "InfilledSequence",
    "MaskedTokens",
    "SpanCorruption",
    "causal_lm_targets",
    "mask_tokens",
    "prefix_lm_attention_mask",
    "prefix_lm_targets",
    "random_segmentation",
    "sentence_permutation",
    "sentinel_ids",
    "span_corruption",
    "text_infilling",
]

IGNORE_INDEX = -100


# ---------------------------------------------------------------------------------------------
# Argument helpers
# ---------------------------------------------------------------------------------------------
def _as_generator(generator: object) -> torch.Generator:
    """A ``torch.Generator`` as it is, or a fresh one seeded with an integer."""
    if isinstance(generator, torch.Generator):
        return generator
    seed = checks.integer("generator", generator, minimum=0, what="a torch.Generator or a non-negative integer seed")
    return torch.Generator().manual_seed(seed)


def _batch_ids(name: str, ids: object) -> Tensor:
    """``ids`` as a non-empty ``(batch, time)`` long tensor."""
    if not isinstance(ids, Tensor) or ids.dim() != 2 or ids.is_floating_point() or ids.dtype == torch.bool:
        got = f"{ids.dtype} of shape {tuple(ids.shape)}" if isinstance(ids, Tensor) else type(ids).__name__
        raise checks.ArgumentError(f"{name} must be a (batch, time) tensor of integer token ids, got {got}")
    if ids.numel() == 0:
        raise checks.ArgumentError(f"{name} is empty (shape {tuple(ids.shape)}); give at least one token")
    return ids.long()


def _sequence_ids(name: str, ids: object, minimum_length: int = 1) -> Tensor:
    ids = checks.token_ids(name, ids)
    if len(ids) < minimum_length:
        raise checks.ArgumentError(f"{name} must hold at least {minimum_length} token(s), got {len(ids)}")
    return ids


def _in_vocabulary(name: str, ids: Tensor, vocab_size: int) -> None:
    if int(ids.min()) < 0 or int(ids.max()) >= vocab_size:
        raise checks.ArgumentError(f"{name} must lie in [0, vocab_size={vocab_size}), got values in "
                                   f"[{int(ids.min())}, {int(ids.max())}]")


# ---------------------------------------------------------------------------------------------
# Full and prefix language modelling
# ---------------------------------------------------------------------------------------------
def causal_lm_targets(ids: Tensor, pad_id: int | None = None) -> tuple[Tensor, Tensor]:
    """Full (causal) language modelling: every token is predicted from the tokens before it::

        inputs  = x_1 .. x_{T-1}          targets = x_2 .. x_T          loss = -Σ_t log p(x_{t+1} | x_≤t)

    ``ids (batch, T)`` -> ``(inputs (batch, T-1), targets (batch, T-1))``; a target equal to
    ``pad_id`` becomes ``IGNORE_INDEX`` (no loss on padding).
    """
    ids = _batch_ids("ids", ids)
    if ids.shape[1] < 2:
        raise checks.ArgumentError(f"ids must have at least 2 positions (one to read, one to predict), "
                                   f"got {ids.shape[1]}")
    targets = ids[:, 1:].clone()
    if pad_id is not None:
        targets[targets == checks.integer("pad_id", pad_id)] = IGNORE_INDEX
    return ids[:, :-1], targets


def _prefix_lengths(prefix_lengths: object, batch: int, time: int) -> Tensor:
    lengths = torch.as_tensor(prefix_lengths)
    if lengths.is_floating_point() or lengths.dtype == torch.bool or lengths.dim() > 1:
        raise checks.ArgumentError(f"prefix_lengths must be an integer or a 1-D integer tensor, "
                                   f"got {lengths.dtype} of shape {tuple(lengths.shape)}")
    lengths = lengths.long().expand(batch) if lengths.dim() == 0 else lengths.long()
    if lengths.shape != (batch,):
        raise checks.ArgumentError(f"prefix_lengths must give one length per row ({batch}), got {len(lengths)}")
    if int(lengths.min()) < 1 or int(lengths.max()) > time - 1:
        raise checks.ArgumentError(f"prefix lengths must lie in [1, {time - 1}] (a prefix of at least the first "
                                   f"token, and at least one token to continue), got {lengths.tolist()}")
    return lengths


def prefix_lm_targets(ids: Tensor, prefix_lengths: int | Tensor, pad_id: int | None = None) -> tuple[Tensor, Tensor]:
    """Prefix language modelling: the first ``P`` tokens are context, the loss is on the rest::

        inputs = x_1 .. x_{T-1}        targets_t = x_{t+1} if t + 1 > P else IGNORE_INDEX

    so ``-Σ_{t ≥ P} log p(x_{t+1} | x_≤t)`` covers the continuation ``x_{P+1} .. x_T`` only.
    ``ids (batch, T)``; ``prefix_lengths`` an integer or ``(batch,)``, each in ``[1, T-1]``.
    Returns ``(inputs (batch, T-1), targets (batch, T-1))``. Read the inputs with
    :func:`prefix_lm_attention_mask`, so that the prefix sees itself in both directions.
    """
    inputs, targets = causal_lm_targets(ids, pad_id)
    lengths = _prefix_lengths(prefix_lengths, *ids.shape)
    target_position = torch.arange(2, ids.shape[1] + 1)  # 1-based position of x_{t+1}
    targets[target_position[None, :] <= lengths[:, None]] = IGNORE_INDEX
    return inputs, targets


def prefix_lm_attention_mask(prefix_lengths: int | Tensor, time: int, batch: int | None = None) -> Tensor:
    """The prefix LM's attention: bidirectional inside the prefix, causal after it::

        mask[b, i, j] = (j ≤ i) or (j < P_b)          True where query i may look at key j

    ``(batch, time, time)`` booleans (the convention of ``F.scaled_dot_product_attention``);
    ``batch`` is needed only when ``prefix_lengths`` is a single integer.
    """
    time = checks.positive_int("time", time)
    lengths = torch.as_tensor(prefix_lengths)
    batch = len(lengths) if lengths.dim() == 1 else checks.positive_int("batch", 1 if batch is None else batch)
    lengths = _prefix_lengths(prefix_lengths, batch, time + 1)
    key = torch.arange(time)
    causal = key[None, :] <= key[:, None]  # (time, time)
    in_prefix = key[None, None, :] < lengths[:, None, None]  # (batch, 1, time)
    return causal[None] | in_prefix


# ---------------------------------------------------------------------------------------------
# BERT's masked language modelling
# ---------------------------------------------------------------------------------------------
@dataclass
class MaskedTokens:
    """:func:`mask_tokens`' result, every field ``(batch, time)``: ``inputs`` for the model,
    ``labels`` (the original id where a token was selected, ``IGNORE_INDEX`` elsewhere), and which
    selected tokens became ``[MASK]``, a random token, or stayed (``masked | randomised | kept``
    is the selection)."""

    inputs: Tensor
    labels: Tensor
    masked: Tensor
    randomised: Tensor
    kept: Tensor

    @property
    def selected(self) -> Tensor:
        return self.masked | self.randomised | self.kept


def mask_tokens(ids: Tensor, *, vocab_size: int, mask_id: int, special_ids: Collection[int],
                generator: torch.Generator | int, select_probability: float = 0.15,
                mask_fraction: float = 0.8, random_fraction: float = 0.1) -> MaskedTokens:
    """BERT's masked language modelling (Devlin et al., 2019, section 3.1 and appendix A.1).

    1. select each token that is not special independently with probability ``select_probability``
       (15%); special tokens ([CLS], [SEP], [PAD], [MASK], ...) are never selected;
    2. of the selected tokens, a share ``mask_fraction`` (80%) becomes ``[MASK]``, a share
       ``random_fraction`` (10%) a token drawn uniformly from the non-special vocabulary (it may
       happen to be the original), and the rest, ``1 - mask_fraction - random_fraction`` (10%), stays;
    3. ``labels`` = the original token where selected, ``IGNORE_INDEX`` elsewhere: the loss is
       ``-Σ_{selected i} log p(x_i | x̃)`` whatever happened to the token.

    ``ids (batch, time)`` in ``[0, vocab_size)``; ``mask_id`` must be one of ``special_ids`` (so an
    existing ``[MASK]`` is never selected and never drawn as a random token). The shares are
    arguments so that variants can be measured (e.g. the ``mask_fraction=0, random_fraction=1``
    of an ablation).
    """
    ids = _batch_ids("ids", ids)
    vocab_size = checks.positive_int("vocab_size", vocab_size)
    _in_vocabulary("ids", ids, vocab_size)
    select_probability = checks.probability("select_probability", select_probability)
    mask_fraction = checks.probability("mask_fraction", mask_fraction)
    random_fraction = checks.probability("random_fraction", random_fraction)
    if mask_fraction + random_fraction > 1 + 1e-12:
        raise checks.ArgumentError(f"mask_fraction + random_fraction must be at most 1 (the rest stays "
                                   f"unchanged), got {mask_fraction:g} + {random_fraction:g}")
    listed = special_ids.tolist() if isinstance(special_ids, Tensor) else list(special_ids)
    special = torch.tensor(sorted({checks.integer("special id", i, minimum=0, maximum=vocab_size - 1)
                                   for i in listed}), dtype=torch.long)
    mask_id = checks.integer("mask_id", mask_id, minimum=0, maximum=vocab_size - 1)
    if mask_id not in special.tolist():
        raise checks.ArgumentError(f"mask_id {mask_id} must be one of special_ids {special.tolist()}: "
                                   f"a [MASK] already in the input must never be selected or drawn")
    ordinary = torch.ones(vocab_size, dtype=torch.bool)
    ordinary[special] = False
    ordinary_ids = ordinary.nonzero().squeeze(1)  # the non-special vocabulary
    if random_fraction > 0 and len(ordinary_ids) == 0:
        raise checks.ArgumentError("every id is special, so there is no random token to draw")
    generator = _as_generator(generator)

    selectable = ~torch.isin(ids, special)
    selected = selectable & (torch.rand(ids.shape, generator=generator) < select_probability)
    choice = torch.rand(ids.shape, generator=generator)  # one uniform per token decides its fate
    masked = selected & (choice < mask_fraction)
    randomised = selected & (choice >= mask_fraction) & (choice < mask_fraction + random_fraction)
    kept = selected & ~masked & ~randomised
    random_tokens = ordinary_ids[torch.randint(len(ordinary_ids), ids.shape, generator=generator)] \
        if len(ordinary_ids) else ids

    inputs = torch.where(masked, torch.full_like(ids, mask_id), ids)
    inputs = torch.where(randomised, random_tokens, inputs)
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE_INDEX))
    return MaskedTokens(inputs, labels, masked, randomised, kept)


# ---------------------------------------------------------------------------------------------
# T5's span corruption
# ---------------------------------------------------------------------------------------------
def random_segmentation(num_items: int, num_segments: int, generator: torch.Generator | int) -> Tensor:
    """``num_items`` split into ``num_segments`` positive parts at random: the ``num_segments - 1``
    cut points are a uniform random subset of the ``num_items - 1`` gaps (T5's ``_random_segmentation``).
    Returns the part lengths ``(num_segments,)``, which sum to ``num_items``."""
    num_items, num_segments = checks.positive_int("num_items", num_items), checks.positive_int("num_segments",
                                                                                                num_segments)
    if num_segments > num_items:
        raise checks.ArgumentError(f"cannot split {num_items} items into {num_segments} non-empty segments")
    cuts = torch.randperm(num_items - 1, generator=_as_generator(generator))[:num_segments - 1].sort().values + 1
    bounds = torch.cat([torch.tensor([0]), cuts, torch.tensor([num_items])])
    return bounds.diff()


def sentinel_ids(count: int, vocab_size: int) -> Tensor:
    """T5's sentinels counting down from the top of the vocabulary: ``<extra_id_k> = vocab_size - 1 - k``."""
    count, vocab_size = checks.non_negative_int("count", count), checks.positive_int("vocab_size", vocab_size)
    return vocab_size - 1 - torch.arange(count)


@dataclass
class SpanCorruption:
    """:func:`span_corruption`'s result: ``inputs (L_in,)``, ``targets (L_out,)``, and where the
    noise spans were in the original: ``span_starts`` and ``span_lengths`` ``(num_spans,)``."""

    inputs: Tensor
    targets: Tensor
    span_starts: Tensor
    span_lengths: Tensor


def span_corruption(ids: Tensor, *, vocab_size: int, generator: torch.Generator | int,
                    noise_density: float = 0.15, mean_span_length: float = 3.0,
                    eos_id: int | None = None) -> SpanCorruption:
    """T5's span corruption (Raffel et al., 2020, section 3.1.4), as ``random_spans_noise_mask``::

        n_noise = round(L · noise_density), clamped to [1, L - 1]
        n_spans = max(1, round(n_noise / mean_span_length)), at most L - n_noise
        noise lengths:     n_noise split into n_spans positive parts at random
        non-noise lengths: L - n_noise split into n_spans positive parts at random
        layout:            non-noise_1 noise_1 non-noise_2 noise_2 ... non-noise_n noise_n

    so spans never overlap or touch (a non-noise token always lies between two). With sentinels
    ``s_k = vocab_size - 1 - k`` (``<extra_id_0>`` is the last id)::

        inputs  = the non-noise tokens, noise span k replaced by s_k        (then eos_id, if given)
        targets = s_0 span_0 s_1 span_1 ... s_{n-1} span_{n-1} s_n        (then eos_id, if given)

    The final sentinel ``s_n`` closes the last span, as in the paper's figure ("<X> for inviting
    <Y> last <Z>"). ``ids (L,)`` with ``L ≥ 2`` and no id among the sentinels used.
    """
    ids = _sequence_ids("ids", ids, minimum_length=2)
    vocab_size = checks.positive_int("vocab_size", vocab_size)
    _in_vocabulary("ids", ids, vocab_size)
    noise_density = checks.number("noise_density", noise_density, above=0.0, below=1.0)
    mean_span_length = checks.number("mean_span_length", mean_span_length, minimum=1.0)
    generator = _as_generator(generator)
    length = len(ids)
    num_noise = min(max(round(length * noise_density), 1), length - 1)
    num_spans = min(max(round(num_noise / mean_span_length), 1), length - num_noise)
    sentinels = sentinel_ids(num_spans + 1, vocab_size)
    if int(sentinels.min()) < 0:
        raise checks.ArgumentError(f"vocab_size {vocab_size} leaves no room for {num_spans + 1} sentinels")
    if torch.isin(ids, sentinels).any():
        raise checks.ArgumentError(f"ids contain sentinel ids {sorted(set(ids[torch.isin(ids, sentinels)].tolist()))}"
                                   f" (the top {num_spans + 1} ids of the vocabulary); keep them out of the text")
    eos = [] if eos_id is None else [checks.integer("eos_id", eos_id, minimum=0, maximum=vocab_size - 1)]

    noise_lengths = random_segmentation(num_noise, num_spans, generator)
    kept_lengths = random_segmentation(length - num_noise, num_spans, generator)
    span_starts = torch.cumsum(kept_lengths, 0) + torch.cumsum(noise_lengths, 0) - noise_lengths
    inputs, targets, position = [], [], 0
    for k, (kept, start, span) in enumerate(zip(kept_lengths.tolist(), span_starts.tolist(), noise_lengths.tolist())):
        inputs += ids[position:position + kept].tolist() + [int(sentinels[k])]
        targets += [int(sentinels[k])] + ids[start:start + span].tolist()
        position = start + span
    targets.append(int(sentinels[num_spans]))
    return SpanCorruption(torch.tensor(inputs + eos), torch.tensor(targets + eos), span_starts, noise_lengths)


# ---------------------------------------------------------------------------------------------
# BART's noising
# ---------------------------------------------------------------------------------------------
@dataclass
class InfilledSequence:
    """:func:`text_infilling`'s result: ``inputs (L_in,)`` with one mask per span; ``targets`` is
    the original sequence (BART's decoder writes it all); ``span_starts`` and ``span_lengths``
    ``(num_spans,)`` say where each span was in the original (a length-0 span inserted a mask)."""

    inputs: Tensor
    targets: Tensor
    span_starts: Tensor
    span_lengths: Tensor


def text_infilling(ids: Tensor, *, mask_id: int, generator: torch.Generator | int, mask_ratio: float = 0.3,
                   poisson_lambda: float = 3.0) -> InfilledSequence:
    """BART's text infilling (Lewis et al., 2020, section 2.2), as in fairseq's ``add_whole_word_mask``::

        n_mask = round(L · mask_ratio)
        ℓ_1, ℓ_2, ... ~ Poisson(λ)   drawn until ℓ_1 + ... + ℓ_n ≥ n_mask; the last is cut to fit
        each span, of any length ℓ ≥ 0, becomes ONE mask token  (ℓ = 0 inserts a mask)

    The spans go into distinct gaps between the ``L - n_mask`` kept tokens, chosen uniformly, so
    two spans never touch and the model must learn how many tokens each mask hides. If a short
    sequence has fewer gaps than spans, the last spans are dropped (fewer tokens are masked).
    ``ids (L,)`` of content tokens (add BOS/EOS after noising: they are never masked).
    """
    ids = _sequence_ids("ids", ids)
    mask_id = checks.non_negative_int("mask_id", mask_id)
    mask_ratio = checks.probability("mask_ratio", mask_ratio)
    poisson_lambda = checks.positive_number("poisson_lambda", poisson_lambda)
    if bool((ids == mask_id).any()):
        raise checks.ArgumentError(f"ids already contain mask_id {mask_id}; the mask must be a special id "
                                   f"outside the text")
    generator = _as_generator(generator)
    length = len(ids)
    num_to_mask = round(length * mask_ratio)
    span_lengths: list[int] = []
    draws_per_round = math.ceil(num_to_mask / poisson_lambda) + 1  # usually enough in one round
    while num_to_mask and sum(span_lengths) < num_to_mask:
        rates = torch.full((draws_per_round,), poisson_lambda, dtype=torch.float64)
        span_lengths += torch.poisson(rates, generator=generator).long().tolist()
    cumulative = torch.tensor(span_lengths, dtype=torch.long).cumsum(0) if span_lengths else torch.zeros(0)
    num_spans = int((cumulative < num_to_mask).sum()) + 1 if num_to_mask else 0
    span_lengths = span_lengths[:num_spans]
    if span_lengths:
        span_lengths[-1] = num_to_mask - sum(span_lengths[:-1])  # the last span cut to fit
    num_gaps = length - num_to_mask + 1  # before, between and after the kept tokens
    if len(span_lengths) > num_gaps:
        span_lengths = span_lengths[:num_gaps]
    lengths = torch.tensor(span_lengths, dtype=torch.long)
    gaps = torch.randperm(num_gaps, generator=generator)[:len(lengths)].sort().values
    # gap g lies after g kept tokens; the spans before it add their lengths
    starts = gaps + torch.cumsum(lengths, 0) - lengths
    inputs, position = [], 0
    for start, span in zip(starts.tolist(), lengths.tolist()):
        inputs += ids[position:start].tolist() + [mask_id]
        position = start + span
    inputs += ids[position:].tolist()
    return InfilledSequence(torch.tensor(inputs, dtype=torch.long), ids.clone(), starts, lengths)


def sentence_permutation(ids: Tensor, *, sentence_end_id: int, generator: torch.Generator | int) -> Tensor:
    """BART's sentence permutation: cut the sequence after every ``sentence_end_id`` (a trailing
    piece without one is a sentence too) and put the sentences in a uniformly random order.
    ``ids (L,)`` -> ``(L,)``; the target is the original."""
    ids = _sequence_ids("ids", ids)
    sentence_end_id = checks.integer("sentence_end_id", sentence_end_id)
    ends = ((ids == sentence_end_id).nonzero().squeeze(1) + 1).tolist()
    if not ends or ends[-1] != len(ids):
        ends.append(len(ids))
    sentences = list(ids.tensor_split(ends[:-1]))
    order = torch.randperm(len(sentences), generator=_as_generator(generator))
    return torch.cat([sentences[i] for i in order.tolist()])
