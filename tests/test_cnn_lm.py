"""Chapter 7's convolutional language model: the causal convolution against the formula and
nn.Conv1d, causality, the exact receptive field, the protocol, and what it can and cannot learn."""
from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.cnn_lm import (CNNLM, CachedCNNLM, CausalConv1d, CNNLMConfig, GatedConvLayer, causal_conv1d,
                               cnn_lm_parameter_count, doubling_dilations, influence_by_layer,
                               influencing_positions, receptive_field)
from course_lib.language_model import sample


def _random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _model(kernel_size=2, dilations=(1, 2, 4), vocab_size=7, d_model=6, dropout=0.0, seed=0) -> CNNLM:
    torch.manual_seed(seed)
    config = CNNLMConfig(vocab_size, d_model=d_model, kernel_size=kernel_size, dilations=dilations,
                         dropout=dropout)
    return CNNLM(config).double()


def _ids(batch, time, vocab_size=7, seed=0):
    ids = torch.randint(0, vocab_size, (batch, time), generator=torch.Generator().manual_seed(seed))
    ids[:, 0] = 1  # the start symbol
    return ids


# ---------------------------------------------------------------------------------------------
# The causal convolution
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel_size, dilation", [(1, 1), (2, 1), (3, 2), (2, 5), (4, 3)])
def test_the_causal_convolution_is_the_formula_as_a_loop(kernel_size, dilation):
    x, weight, bias = _random(2, 9, 3, seed=1), _random(4, 3, kernel_size, seed=2), _random(4, seed=3)
    y = causal_conv1d(x, weight, bias, dilation)
    expected = torch.zeros(2, 9, 4, dtype=torch.float64)
    for b in range(2):
        for t in range(9):
            expected[b, t] = bias
            for k in range(kernel_size):  # y_t = b + sum_k W_k x_{t - d k}, W_k = weight[:, :, K-1-k]
                if t - dilation * k >= 0:
                    expected[b, t] += weight[:, :, kernel_size - 1 - k] @ x[b, t - dilation * k]
    assert torch.allclose(y, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kernel_size, dilation", [(2, 1), (3, 2), (2, 4)])
def test_the_causal_convolution_equals_nn_conv1d_padded_on_the_left_with_the_same_weights(kernel_size, dilation):
    torch.manual_seed(4)
    reference = torch.nn.Conv1d(3, 5, kernel_size, dilation=dilation).double()
    ours = CausalConv1d(3, 5, kernel_size, dilation).double()
    ours.load_state_dict(reference.state_dict())  # same names, same layout
    x = _random(2, 10, 3, seed=5)
    expected = reference(F.pad(x.transpose(1, 2), ((kernel_size - 1) * dilation, 0))).transpose(1, 2)
    assert torch.allclose(ours(x), expected, atol=1e-12, rtol=0)


def test_the_past_replaces_the_zero_padding():
    """Reading x after its past equals the convolution over both, from the past's end on."""
    weight, bias = _random(4, 3, 3, seed=6), _random(4, seed=7)
    past, x = _random(2, 3 * 2 - 2, 3, seed=8), _random(2, 5, 3, seed=9)  # (K - 1)·d = 4 inputs before x
    whole = causal_conv1d(torch.cat([past, x], dim=1), weight, bias, dilation=2)
    assert torch.allclose(causal_conv1d(x, weight, bias, dilation=2, past=past), whole[:, 4:], atol=1e-12, rtol=0)
    assert torch.equal(causal_conv1d(x, weight, bias, dilation=2, past=torch.zeros(2, 4, 3, dtype=torch.float64)),
                       causal_conv1d(x, weight, bias, dilation=2))


def test_the_causal_convolution_is_initialised_as_pytorch_initialises_conv1d():
    conv = CausalConv1d(4, 50, 3)
    bound = 1 / (4 * 3) ** 0.5
    for parameter in (conv.weight, conv.bias):
        assert parameter.abs().max() <= bound and parameter.abs().max() > 0.8 * bound


def test_the_gated_layer_is_a_residual_glu_over_nn_conv1d():
    """(X * W + b) ⊙ σ(X * V + c) is PyTorch's F.glu of one convolution with W and V stacked."""
    torch.manual_seed(5)
    layer = GatedConvLayer(4, kernel_size=3, dilation=2).double()
    both = torch.nn.Conv1d(4, 8, 3, dilation=2).double()
    with torch.no_grad():
        both.weight.copy_(torch.cat([layer.W.weight, layer.V.weight]))
        both.bias.copy_(torch.cat([layer.W.bias, layer.V.bias]))
    X = _random(2, 9, 4, seed=10)
    glu = F.glu(both(F.pad(X.transpose(1, 2), (4, 0))), dim=1).transpose(1, 2)
    assert torch.allclose(layer(X), X + glu, atol=1e-12, rtol=0)


@settings(max_examples=30, deadline=None)
@given(kernel_size=st.integers(1, 4), dilation=st.integers(1, 4), time=st.integers(2, 12), data=st.data())
def test_the_convolution_never_looks_ahead(kernel_size, dilation, time, data):
    t = data.draw(st.integers(0, time - 2))
    x, weight = _random(1, time, 2, seed=time), _random(3, 2, kernel_size, seed=kernel_size)
    changed = x.clone()
    changed[:, t + 1:] = _random(1, time - t - 1, 2, seed=99)
    assert torch.equal(causal_conv1d(x, weight, dilation=dilation)[:, : t + 1],
                       causal_conv1d(changed, weight, dilation=dilation)[:, : t + 1])


# ---------------------------------------------------------------------------------------------
# The receptive field
# ---------------------------------------------------------------------------------------------
def test_the_receptive_field_by_the_formula():
    assert receptive_field(2, doubling_dilations(4)) == 16  # K = 2 and doubling: R = 2^L
    assert receptive_field(2, doubling_dilations(10)) == 1024  # WaveNet's stack of dilations 1 .. 512
    assert receptive_field(3, (1, 2)) == 1 + 2 * 1 + 2 * 2
    assert receptive_field(1, (1, 2, 4)) == 1  # a 1-wide kernel reads the current token only
    assert receptive_field(3, (1, 1, 1)) == 7  # without dilation, R grows linearly with depth
    assert doubling_dilations(3) == (1, 2, 4)
    model = _model(kernel_size=3, dilations=[1, 3])
    assert model.receptive_field == model.config.receptive_field == receptive_field(3, (1, 3)) == 9


def test_the_influence_of_each_layer_spreads_by_its_dilation():
    assert influence_by_layer(10, 2, (1, 2)) == [[7, 8, 9, 10], [8, 10], [10]]
    assert influence_by_layer(10, 2, (2, 4)) == [[4, 6, 8, 10], [6, 10], [10]]  # holes between taps
    assert influencing_positions(2, 2, (1, 2, 4)) == [0, 1, 2]  # before the start: the start symbol
    assert _model(kernel_size=2, dilations=(2, 4)).influencing_positions(10) == [4, 6, 8, 10]


def _changes_the_output(model: CNNLM, ids: torch.Tensor, changed_position: int, output_position: int) -> bool:
    changed = ids.clone()
    changed[:, changed_position] = (changed[:, changed_position] + 1) % model.vocab_size
    with torch.no_grad():
        before, after = model(ids)[:, output_position], model(changed)[:, output_position]
    return not torch.allclose(before, after, atol=1e-9, rtol=0)


@pytest.mark.parametrize("kernel_size, dilations", [(2, (1, 2, 4)), (3, (1, 2)), (2, (2, 4)), (3, (1, 1, 3)),
                                                    (1, (1, 2))])
def test_the_receptive_field_is_exact(kernel_size, dilations):
    """Changing the token R - 1 back changes the output at t (for random weights, almost surely);
    changing any token R or more back, or after t, changes nothing; and the positions that change
    it are exactly those influencing_positions names."""
    model = _model(kernel_size, dilations)
    R = model.receptive_field
    time = 2 * R + 3
    ids = _ids(2, time, seed=R)
    for t in (R + 2, time - 1):
        assert _changes_the_output(model, ids, t - (R - 1), t)
        assert not any(_changes_the_output(model, ids, s, t) for s in range(1, t - R + 1))
        assert not any(_changes_the_output(model, ids, s, t) for s in range(t + 1, time))
    for t in range(time):
        assert [s for s in range(t + 1) if _changes_the_output(model, ids, s, t)] == model.influencing_positions(t)


@functools.cache
def _causality_model() -> CNNLM:
    return _model(kernel_size=3, dilations=(1, 2, 4))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), data=st.data())
def test_the_model_never_looks_ahead(seed, data):
    model = _causality_model()
    time = data.draw(st.integers(2, 20))
    t = data.draw(st.integers(0, time - 2))
    ids = _ids(2, time, seed=seed)
    changed = ids.clone()
    changed[:, t + 1:] = _ids(2, time - t - 1, seed=seed + 1)
    with torch.no_grad():
        assert torch.equal(model(ids)[:, : t + 1], model(changed)[:, : t + 1])



# ---------------------------------------------------------------------------------------------
# The language-model protocol (the shared conformance test is tests/test_language_model.py)
# ---------------------------------------------------------------------------------------------
def test_reading_in_chunks_window_by_window_and_token_by_token_give_the_same_numbers():
    model = _model(kernel_size=3, dilations=(1, 2))
    ids = _ids(3, 17)
    with torch.no_grad():
        whole = model.sequence_log_probs(ids)
        first, state = model.read(ids[:, :5], model.initial_state(3))
        second, state = model.read(ids[:, 5:], state)
        windows = model.windows(ids, ids[:, :0], model.receptive_field)  # (batch, time, R)
        by_window = model.window_log_probs(windows.reshape(-1, model.receptive_field)).reshape(whole.shape)
    assert torch.allclose(torch.cat([first, second], dim=1), whole, atol=1e-12, rtol=0)
    assert torch.allclose(by_window, whole, atol=1e-12, rtol=0)
    assert torch.equal(state, ids[:, -(model.receptive_field - 1):])  # the state: the last R - 1 ids
    assert torch.allclose(whole.exp().sum(-1), torch.ones(3, 17, dtype=torch.float64), atol=1e-12)


def test_before_the_window_fills_it_is_padded_with_the_start_symbol():
    model = _model()  # R = 8
    short = torch.tensor([[1, 4, 2]])
    padded = torch.tensor([[1] * 7 + [1, 4, 2]])
    with torch.no_grad():
        assert torch.allclose(model.sequence_log_probs(short), model.sequence_log_probs(padded)[:, 7:],
                              atol=1e-12, rtol=0)


def test_a_one_token_receptive_field_has_an_empty_state():
    model = _model(kernel_size=1, dilations=(1,))
    _, state = model.read(_ids(2, 4), model.initial_state(2))
    assert state.shape == (2, 0)


@pytest.mark.parametrize("kernel_size, dilations", [(2, (1, 2, 4)), (3, (1, 2)), (2, (2, 4)), (1, (1, 2))])
def test_the_cached_model_reads_the_numbers_of_the_window_model_step_by_step_and_in_chunks(kernel_size, dilations):
    window = _model(kernel_size, dilations)
    cached = CachedCNNLM(window)
    ids = _ids(3, 19)
    with torch.no_grad():
        expected = window.sequence_log_probs(ids)
        state, rows = cached.initial_state(3), []
        for tokens in ids.unbind(dim=1):
            log_probs, state = cached.step(tokens, state)
            rows.append(log_probs)
        chunks, chunk_state = [], cached.initial_state(3)
        for chunk in ids.split([1, 5, 2, 11], dim=1):
            log_probs, chunk_state = cached.read(chunk, chunk_state)
            chunks.append(log_probs)
    assert torch.allclose(torch.stack(rows, dim=1), expected, atol=1e-12, rtol=0)
    assert torch.allclose(torch.cat(chunks, dim=1), expected, atol=1e-12, rtol=0)
    spans = [(kernel_size - 1) * d for d in dilations]  # layer l keeps its last (K - 1)·d_l inputs
    assert [tuple(cache.shape) for cache in state] == [(3, span, window.config.d_model) for span in spans]
    assert all(torch.equal(a, b) for a, b in zip(state, chunk_state))


def test_the_cached_model_samples_what_the_window_model_samples():
    window = _model(vocab_size=7)
    drawn = sample(window, [1, 3], max_tokens=15, seed=4)
    assert sample(CachedCNNLM(window), [1, 3], max_tokens=15, seed=4) == drawn


def test_the_parameter_count_by_formula_equals_pytorchs():
    for config in (CNNLMConfig(7), CNNLMConfig(50, d_model=12, kernel_size=3, dilations=(1, 2, 4, 8, 16)),
                   CNNLMConfig(3, d_model=1, kernel_size=1, dilations=(5,))):
        model = CNNLM(config)
        assert cnn_lm_parameter_count(config) == sum(p.numel() for p in model.parameters())


def test_gradients_reach_every_parameter_and_are_finite():
    model = _model(dilations=(1, 2, 4, 8))
    ids = _ids(4, 20)
    loss = F.cross_entropy(model(ids[:, :-1]).reshape(-1, model.vocab_size), ids[:, 1:].reshape(-1))
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_dropout_acts_in_training_only():
    model = _model(dropout=0.5)
    deterministic = _model(dropout=0.0)  # the same seed draws the same weights
    ids = _ids(2, 12)
    model.train()
    assert not torch.allclose(model(ids), model(ids))
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(ids), deterministic(ids), atol=0, rtol=0)


# ---------------------------------------------------------------------------------------------
# What it can learn: copying the token k back needs k within the receptive field
# ---------------------------------------------------------------------------------------------
def _copy_accuracy(offset: int, vocab_size: int = 6, steps: int = 150) -> tuple[float, int]:
    """Train a tiny model (R = 4) to output, at every t, the token at t - offset; its accuracy on
    fresh sequences."""
    torch.manual_seed(0)
    model = CNNLM(CNNLMConfig(vocab_size, d_model=24, kernel_size=2, dilations=(1, 2)))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)

    def logits_and_targets(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.randint(0, vocab_size, (batch, 24), generator=generator)
        return model(ids)[:, offset:], ids[:, : ids.shape[1] - offset]

    for _ in range(steps):
        logits, targets = logits_and_targets(32)
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        logits, targets = logits_and_targets(256)
    return float((logits.argmax(-1) == targets).float().mean()), model.receptive_field


def test_it_learns_to_copy_within_its_receptive_field_and_not_beyond():
    accuracy, R = _copy_accuracy(offset=3)
    assert R == 4 and accuracy > 0.99  # the token R - 1 back is read: copied
    accuracy, _ = _copy_accuracy(offset=4)
    assert accuracy < 0.25  # the token R back is never read: chance is 1/6


# ---------------------------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, words", [
    ({"vocab_size": 0}, "vocab_size must be a positive integer"),
    ({"d_model": True}, "d_model must be a positive integer"),
    ({"kernel_size": 0}, "kernel_size must be a positive integer"),
    ({"dilations": ()}, "dilations must be a non-empty list"),
    ({"dilations": "124"}, "dilations must be a non-empty list"),
    ({"dilations": (1, 0)}, r"dilations\[1\] must be a positive integer"),
    ({"dilations": (1, 2.0)}, r"dilations\[1\] must be a positive integer"),
    ({"dropout": 1.0}, "dropout must be a finite number >= 0 and < 1"),
    ({"dropout": -0.1}, "dropout must be"),
])
def test_a_bad_config_is_refused_with_the_argument_named(kwargs, words):
    with pytest.raises(ValueError, match=words):
        CNNLMConfig(**{"vocab_size": 5, **kwargs})


def test_bad_arguments_elsewhere_are_refused_with_what_to_do():
    with pytest.raises(TypeError, match="config must be a CNNLMConfig"):
        CNNLM({"vocab_size": 5})
    with pytest.raises(TypeError, match="config must be a CNNLMConfig"):
        cnn_lm_parameter_count(5)
    with pytest.raises(ValueError, match="position must be a non-negative integer"):
        influencing_positions(-1, 2, (1, 2))
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        doubling_dilations(0)
    with pytest.raises(ValueError, match=r"\(batch, time, d_in\)"):
        causal_conv1d(_random(4, 3), _random(2, 3, 2))
    with pytest.raises(ValueError, match="d_in = 3"):
        causal_conv1d(_random(1, 4, 3), _random(2, 5, 2))
    with pytest.raises(ValueError, match=r"\[0, 7\)"):
        _model()(torch.tensor([[1, 7]]))
    with pytest.raises(ValueError, match=r"past must hold the \(K-1\)·d = 2 inputs before x"):
        causal_conv1d(_random(1, 4, 3), _random(2, 3, 2), dilation=2, past=_random(1, 1, 3))
    with pytest.raises(TypeError, match="model must be a CNNLM"):
        CachedCNNLM(CNNLMConfig(5))
    with pytest.raises(ValueError, match="state must be a tuple of 3 caches"):
        CachedCNNLM(_model()).read(torch.tensor([[1, 2]]), torch.zeros(1, 6, dtype=torch.long))
