"""Chapter 9's pretraining objectives: their rules, proportions on large samples, and laws.

Proportions are checked within 5 standard deviations of their binomial (or Poisson) expectation:
under the normal approximation each such check fails by chance with probability about 6e-7, so
the whole file's false-alarm rate is below 1e-5 (and the seeds are fixed, so a run is repeatable).
"""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import checks
from course_lib.objectives import (IGNORE_INDEX, causal_lm_targets, mask_tokens, prefix_lm_attention_mask,
                                   prefix_lm_targets, random_segmentation, sentence_permutation, sentinel_ids,
                                   span_corruption, text_infilling)

PAD, CLS, SEP, UNK, MASK = 0, 1, 2, 3, 4
SPECIAL = (PAD, CLS, SEP, UNK, MASK)
VOCAB = 60


def _within_sigmas(count: float, trials: int, p: float, sigmas: float = 5.0) -> bool:
    """``count`` within ``sigmas`` standard deviations of Binomial(trials, p)'s mean."""
    return abs(count - trials * p) <= sigmas * math.sqrt(trials * p * (1 - p))


def _sentences_batch(batch=400, time=250, seed=0):
    """Rows of [CLS] words [SEP] words [SEP] [PAD]...: a few special tokens in every row."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(len(SPECIAL), VOCAB, (batch, time), generator=generator)
    lengths = torch.randint(time // 2, time + 1, (batch,), generator=generator)
    ids[:, 0] = CLS
    ids[:, time // 3] = SEP
    ids[torch.arange(time)[None, :] >= lengths[:, None]] = PAD
    ids[torch.arange(batch), lengths - 1] = SEP
    return ids


# ---------------------------------------------------------------------------------------------
# Full and prefix language modelling
# ---------------------------------------------------------------------------------------------
def test_causal_lm_targets_are_the_inputs_shifted_by_one_and_ignore_padding():
    ids = torch.tensor([[1, 7, 8, 9, 2], [1, 5, 2, 0, 0]])
    inputs, targets = causal_lm_targets(ids, pad_id=PAD)
    assert inputs.tolist() == [[1, 7, 8, 9], [1, 5, 2, 0]]
    assert targets.tolist() == [[7, 8, 9, 2], [5, 2, IGNORE_INDEX, IGNORE_INDEX]]


def test_prefix_lm_has_loss_only_on_the_continuation():
    ids = torch.arange(10, 18).repeat(3, 1)  # T = 8
    prefix = torch.tensor([1, 3, 7])
    inputs, targets = prefix_lm_targets(ids, prefix)
    assert torch.equal(inputs, ids[:, :-1])
    for row, p in enumerate(prefix.tolist()):
        # target t predicts x_{t+2} (1-based x_{t+1} after 0-based input t): loss iff it lies after the prefix
        predicted = ids[row, 1:]
        has_loss = targets[row] != IGNORE_INDEX
        assert has_loss.tolist() == [position > p for position in range(2, 9)]
        assert torch.equal(targets[row][has_loss], predicted[has_loss])
        assert int(has_loss.sum()) == 8 - p  # the continuation x_{P+1} .. x_T


def test_prefix_lm_attention_is_bidirectional_in_the_prefix_and_causal_after():
    mask = prefix_lm_attention_mask(torch.tensor([3, 1]), 5)
    assert mask.shape == (2, 5, 5)
    assert mask[0, :3, :3].all()  # the prefix sees itself in both directions
    assert not mask[0, :3, 3:].any()  # nobody in the prefix sees the continuation
    assert torch.equal(mask[1], torch.ones(5, 5, dtype=torch.bool).tril())  # P = 1: plain causal
    assert torch.equal(mask[0, 3:], torch.ones(5, 5, dtype=torch.bool).tril()[3:] | (torch.arange(5) < 3))
    assert torch.equal(prefix_lm_attention_mask(2, 4, batch=3), prefix_lm_attention_mask(torch.tensor([2] * 3), 4))


@pytest.mark.parametrize("prefix", [0, 8, torch.tensor([1, 2])])
def test_prefix_lengths_out_of_range_are_refused(prefix):
    with pytest.raises(checks.ArgumentError, match="prefix"):
        prefix_lm_targets(torch.arange(8).repeat(3, 1), prefix)


# ---------------------------------------------------------------------------------------------
# BERT's masked language modelling
# ---------------------------------------------------------------------------------------------
def _mask(ids, seed=0, **shares):
    return mask_tokens(ids, vocab_size=VOCAB, mask_id=MASK, special_ids=SPECIAL, generator=seed, **shares)


def test_mlm_selects_15_percent_of_the_ordinary_tokens_and_splits_them_80_10_10():
    ids = _sentences_batch()
    result = _mask(ids)
    ordinary = ~torch.isin(ids, torch.tensor(SPECIAL))
    selected = result.selected
    n_ordinary, n_selected = int(ordinary.sum()), int(selected.sum())
    assert n_ordinary > 50_000
    assert _within_sigmas(n_selected, n_ordinary, 0.15)
    assert _within_sigmas(int(result.masked.sum()), n_selected, 0.8)
    assert _within_sigmas(int(result.randomised.sum()), n_selected, 0.1)
    assert _within_sigmas(int(result.kept.sum()), n_selected, 0.1)
    # the three fates are disjoint and do what they say
    assert int((result.masked.int() + result.randomised.int() + result.kept.int()).max()) <= 1
    assert (result.inputs[result.masked] == MASK).all()
    assert torch.equal(result.inputs[result.kept], ids[result.kept])
    assert torch.equal(result.inputs[~selected], ids[~selected])
    # random tokens come from the ordinary vocabulary, roughly uniformly; a few equal the original
    drawn = result.inputs[result.randomised]
    assert not torch.isin(drawn, torch.tensor(SPECIAL)).any()
    counts = torch.bincount(drawn, minlength=VOCAB)[len(SPECIAL):]
    n_kinds = VOCAB - len(SPECIAL)
    assert all(_within_sigmas(int(c), len(drawn), 1 / n_kinds) for c in counts)


def test_mlm_never_selects_special_tokens_or_padding_and_labels_only_the_selection():
    ids = _sentences_batch(batch=100)
    result = _mask(ids, select_probability=1.0)  # select everything that may be selected
    special = torch.isin(ids, torch.tensor(SPECIAL))
    assert not result.selected[special].any()
    assert not result.selected[ids == PAD].any()
    assert result.selected[~special].all()
    assert (result.labels[special] == IGNORE_INDEX).all()
    assert torch.equal(result.labels[~special], ids[~special])
    assert torch.equal(result.inputs[special], ids[special])


@pytest.mark.parametrize("mask_fraction, random_fraction", [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0), (0.0, 0.0)])
def test_mlm_variants_follow_their_shares(mask_fraction, random_fraction):
    result = _mask(_sentences_batch(batch=150), seed=3, select_probability=0.3, mask_fraction=mask_fraction,
                   random_fraction=random_fraction)
    n = int(result.selected.sum())
    assert _within_sigmas(int(result.masked.sum()), n, mask_fraction) if 0 < mask_fraction < 1 else \
        int(result.masked.sum()) == round(n * mask_fraction)
    assert _within_sigmas(int(result.randomised.sum()), n, random_fraction) if 0 < random_fraction < 1 else \
        int(result.randomised.sum()) == round(n * random_fraction)


def test_mlm_is_determined_by_its_seed():
    ids = _sentences_batch(batch=20)
    first, again, other = _mask(ids, seed=5), _mask(ids, seed=5), _mask(ids, seed=6)
    assert torch.equal(first.inputs, again.inputs) and torch.equal(first.labels, again.labels)
    assert not torch.equal(first.labels, other.labels)
    from_generator = mask_tokens(ids, vocab_size=VOCAB, mask_id=MASK, special_ids=SPECIAL,
                                 generator=torch.Generator().manual_seed(5))
    assert torch.equal(first.inputs, from_generator.inputs)
    from_tensor = mask_tokens(ids, vocab_size=VOCAB, mask_id=MASK, special_ids=torch.tensor(SPECIAL), generator=5)
    assert torch.equal(first.inputs, from_tensor.inputs)


@pytest.mark.parametrize("arguments, message", [
    (dict(select_probability=1.5), "select_probability"),
    (dict(mask_fraction=-0.1), "mask_fraction"),
    (dict(mask_fraction=0.8, random_fraction=0.3), "at most 1"),
    (dict(mask_id=9), "special_ids"),
    (dict(ids=torch.zeros(2, 0, dtype=torch.long)), "empty"),
    (dict(ids=torch.tensor([[5, 60]])), r"\[0, vocab_size=60\)"),
    (dict(ids=torch.tensor([5, 6])), r"\(batch, time\)"),
    (dict(ids=torch.tensor([[5.0, 6.0]])), "integer"),
    (dict(generator="seed"), "generator"),
    (dict(special_ids=(0, 4, 60)), "special id"),
])
def test_mlm_refuses_bad_arguments(arguments, message):
    given_arguments = dict(ids=torch.tensor([[1, 5, 6, 2]]), vocab_size=VOCAB, mask_id=MASK, special_ids=SPECIAL,
                           generator=0)
    given_arguments.update(arguments)
    with pytest.raises(checks.ArgumentError, match=message):
        mask_tokens(**given_arguments)


# ---------------------------------------------------------------------------------------------
# T5's span corruption
# ---------------------------------------------------------------------------------------------
def _reconstruct_from_sentinels(inputs, targets, first_sentinel, eos_id=None):
    """The original from T5's inputs and targets: each sentinel in the inputs replaced by what
    follows the same sentinel in the targets (written here, independently of the library)."""
    inputs, targets = inputs.tolist(), targets.tolist()
    if eos_id is not None:
        assert inputs[-1] == eos_id and targets[-1] == eos_id
        inputs, targets = inputs[:-1], targets[:-1]
    is_sentinel = lambda token: token >= first_sentinel  # noqa: E731  (the text's ids stay below)
    spans, current = {}, None
    for token in targets:
        if is_sentinel(token):
            current = spans.setdefault(token, [])
        else:
            current.append(token)
    original = []
    for token in inputs:
        original += spans[token] if is_sentinel(token) else [token]
    return original


@settings(max_examples=120, deadline=None)
@given(length=st.integers(2, 300), density=st.floats(0.01, 0.9), mean_span=st.floats(1.0, 8.0),
       seed=st.integers(0, 2**31), eos=st.booleans())
def test_span_corruption_inputs_and_targets_reconstruct_the_original(length, density, mean_span, seed, eos):
    vocab_size = 500
    ids = torch.randint(3, 300, (length,), generator=torch.Generator().manual_seed(seed))
    result = span_corruption(ids, vocab_size=vocab_size, generator=seed, noise_density=density,
                             mean_span_length=mean_span, eos_id=1 if eos else None)
    assert _reconstruct_from_sentinels(result.inputs, result.targets, 300, 1 if eos else None) == ids.tolist()
    # spans do not overlap (nor touch), and they cover what the targets list
    starts, lengths = result.span_starts.tolist(), result.span_lengths.tolist()
    assert all(n >= 1 for n in lengths)
    assert all(start + n < next_start for start, n, next_start in zip(starts, lengths, starts[1:]))
    num_spans = len(starts)
    # the sentinels count down from the top of the vocabulary, one per span, plus the closing one
    input_sentinels = [t for t in result.inputs.tolist() if t >= 300]
    target_sentinels = [t for t in result.targets.tolist() if t >= 300]
    assert input_sentinels == sentinel_ids(num_spans, vocab_size).tolist()
    assert target_sentinels == sentinel_ids(num_spans + 1, vocab_size).tolist()
    assert target_sentinels[0] == vocab_size - 1  # <extra_id_0> is the last id
    for start, n, sentinel in zip(starts, lengths, target_sentinels):
        at = result.targets.tolist().index(sentinel)
        assert result.targets[at + 1: at + 1 + n].tolist() == ids[start:start + n].tolist()


def test_span_corruption_honours_noise_density_and_mean_span_length_on_average():
    generator = torch.Generator().manual_seed(0)
    noise = spans = tokens = 0
    for _ in range(300):
        length = int(torch.randint(40, 400, (1,), generator=generator))
        result = span_corruption(torch.randint(5, 100, (length,), generator=generator), vocab_size=200,
                                 generator=generator)
        noise += int(result.span_lengths.sum())
        spans += len(result.span_lengths)
        tokens += length
    assert abs(noise / tokens - 0.15) < 0.005  # rounding per sequence only
    assert abs(noise / spans - 3.0) < 0.1


def test_span_corruption_matches_the_papers_example_layout():
    ids = torch.tensor([10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    result = span_corruption(ids, vocab_size=32, generator=1, noise_density=0.3, mean_span_length=1.5, eos_id=1)
    assert len(result.span_lengths) == 2 and int(result.span_lengths.sum()) == 3
    assert result.inputs[-2:].tolist() == [30, 1] and result.targets[-2:].tolist() == [29, 1]
    assert result.targets[0] == 31


def test_random_segmentation_is_a_uniform_composition():
    generator = torch.Generator().manual_seed(0)
    parts = torch.stack([random_segmentation(5, 3, generator) for _ in range(6000)])
    assert (parts >= 1).all() and (parts.sum(1) == 5).all()
    compositions = torch.unique(parts, dim=0, return_counts=True)[1]
    assert len(compositions) == 6  # C(4, 2) compositions of 5 into 3 positive parts
    assert all(_within_sigmas(int(c), 6000, 1 / 6) for c in compositions)


@pytest.mark.parametrize("arguments, message", [
    (dict(ids=torch.tensor([5])), "at least 2"),
    (dict(ids=torch.tensor([], dtype=torch.long)), "at least 2"),
    (dict(noise_density=1.0), "noise_density"),
    (dict(mean_span_length=0.5), "mean_span_length"),
    (dict(ids=torch.tensor([5, 6, 99, 7])), "sentinel"),
    (dict(ids=torch.tensor([5, 6, 100])), "vocab_size"),
])
def test_span_corruption_refuses_bad_arguments(arguments, message):
    given_arguments = dict(ids=torch.arange(5, 25), vocab_size=100, generator=0)
    given_arguments.update(arguments)
    with pytest.raises(checks.ArgumentError, match=message):
        span_corruption(**given_arguments)


def test_span_corruption_is_determined_by_its_seed():
    ids = torch.arange(5, 105)
    first, again, other = (span_corruption(ids, vocab_size=200, generator=seed) for seed in (4, 4, 5))
    assert torch.equal(first.inputs, again.inputs) and torch.equal(first.targets, again.targets)
    assert not torch.equal(first.inputs, other.inputs)


# ---------------------------------------------------------------------------------------------
# BART's noising
# ---------------------------------------------------------------------------------------------
def _refill(inputs, mask_id, spans):
    original, k = [], 0
    for token in inputs.tolist():
        if token == mask_id:
            original += spans[k]
            k += 1
        else:
            original.append(token)
    assert k == len(spans)
    return original


@settings(max_examples=100, deadline=None)
@given(length=st.integers(1, 200), ratio=st.floats(0.0, 1.0), lam=st.floats(0.1, 6.0), seed=st.integers(0, 2**31))
def test_text_infilling_puts_one_mask_per_span_and_the_spans_refill_it(length, ratio, lam, seed):
    ids = torch.randint(5, 100, (length,), generator=torch.Generator().manual_seed(seed))
    result = text_infilling(ids, mask_id=MASK, generator=seed, mask_ratio=ratio, poisson_lambda=lam)
    starts, lengths = result.span_starts.tolist(), result.span_lengths.tolist()
    assert int((result.inputs == MASK).sum()) == len(starts)  # one mask per span, zero-length ones too
    assert all(start + n < next_start for start, n, next_start in zip(starts, lengths, starts[1:]))  # never touch
    assert torch.equal(result.targets, ids)
    spans = [ids[start:start + n].tolist() for start, n in zip(starts, lengths)]
    assert _refill(result.inputs, MASK, spans) == ids.tolist()
    assert len(result.inputs) == length - sum(lengths) + len(lengths)
    if len(lengths) < length - round(length * ratio) + 1:  # no span was dropped for want of gaps
        assert sum(lengths) == round(length * ratio)


def test_text_infilling_span_lengths_are_poisson_3():
    """All spans but each sequence's last (cut to fit): mean within 5 standard errors of λ = 3
    (variance λ), and the share of empty spans within 5 sigmas of e^{-3}."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.cat([text_infilling(torch.arange(10, 1010), mask_id=MASK, generator=generator).span_lengths[:-1]
                         for _ in range(200)]).double()
    assert len(lengths) > 15_000
    assert abs(lengths.mean() - 3.0) <= 5 * math.sqrt(3.0 / len(lengths))
    assert _within_sigmas(int((lengths == 0).sum()), len(lengths), math.exp(-3.0))


def test_text_infilling_masks_30_percent_and_is_determined_by_its_seed():
    ids = torch.arange(10, 110)
    first, again = (text_infilling(ids, mask_id=MASK, generator=7) for _ in range(2))
    assert int(first.span_lengths.sum()) == 30
    assert torch.equal(first.inputs, again.inputs)
    assert not torch.equal(first.inputs, text_infilling(ids, mask_id=MASK, generator=8).inputs)


@pytest.mark.parametrize("arguments, message", [
    (dict(ids=torch.tensor([], dtype=torch.long)), "at least 1"),
    (dict(mask_ratio=1.2), "mask_ratio"),
    (dict(poisson_lambda=0), "poisson_lambda"),
    (dict(ids=torch.tensor([5, MASK, 6])), "already contain"),
])
def test_text_infilling_refuses_bad_arguments(arguments, message):
    given_arguments = dict(ids=torch.arange(5, 25), mask_id=MASK, generator=0)
    given_arguments.update(arguments)
    with pytest.raises(checks.ArgumentError, match=message):
        text_infilling(**given_arguments)


def _sentences(ids, end):
    pieces, current = [], []
    for token in ids.tolist():
        current.append(token)
        if token == end:
            pieces.append(current)
            current = []
    return pieces + ([current] if current else [])


def _is_concatenation_of(tokens, pieces):
    """Whether ``tokens`` is the ``pieces`` laid end to end in some order (each piece once); the
    pieces here start with distinct tokens (or are equal), so a greedy match decides."""
    remaining, at = list(pieces), 0
    while remaining:
        match = next((p for p in remaining if tokens[at:at + len(p)] == p), None)
        if match is None:
            return False
        remaining.remove(match)
        at += len(match)
    return at == len(tokens)


@settings(max_examples=60, deadline=None)
@given(sentence_lengths=st.lists(st.integers(0, 6), min_size=1, max_size=12), tail=st.integers(0, 3),
       seed=st.integers(0, 2**31))
def test_sentence_permutation_is_a_permutation_of_the_sentences(sentence_lengths, tail, seed):
    END, tokens = 1, []
    for k, n in enumerate(sentence_lengths):
        tokens += [10 + k] * n + [END]
    tokens += [99] * tail  # a last sentence without its end
    ids = torch.tensor(tokens)
    shuffled = sentence_permutation(ids, sentence_end_id=END, generator=seed)
    assert _is_concatenation_of(shuffled.tolist(), _sentences(ids, END))
    assert torch.equal(shuffled, sentence_permutation(ids, sentence_end_id=END, generator=seed))


def test_sentence_permutation_draws_every_order_about_equally():
    ids = torch.tensor([5, 1, 6, 1, 7, 1])
    generator = torch.Generator().manual_seed(0)
    assert not _is_concatenation_of([5, 1, 6, 7, 1, 1], _sentences(ids, 1))  # the checker can fail
    orders = torch.stack([sentence_permutation(ids, sentence_end_id=1, generator=generator) for _ in range(3000)])
    counts = torch.unique(orders, dim=0, return_counts=True)[1]
    assert len(counts) == 6 and all(_within_sigmas(int(c), 3000, 1 / 6) for c in counts)
