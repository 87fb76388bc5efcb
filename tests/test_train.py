"""course_lib.train: the loop on problems with known answers, batching, and checkpoints."""
from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open

from course_lib.neural_lm import FixedWindowLM, context_windows, cross_entropy
from course_lib.train import (
    IGNORE_INDEX,
    History,
    NonFiniteLossError,
    TrainConfig,
    evaluate,
    language_model_loss,
    load_checkpoint,
    pad_sequences,
    random_batches,
    read_checkpoint_metadata,
    save_checkpoint,
    stream_batches,
    train,
)

# A known bigram source: row i is P(next | current = i).
BIGRAM_TABLE = np.array(
    [
        [0.70, 0.10, 0.10, 0.10],
        [0.05, 0.15, 0.50, 0.30],
        [0.25, 0.25, 0.25, 0.25],
        [0.40, 0.40, 0.15, 0.05],
    ]
)


def sample_bigram_stream(table: np.ndarray, length: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    V = table.shape[0]
    ids = np.empty(length, dtype=np.int64)
    ids[0] = 0
    for t in range(1, length):
        ids[t] = rng.choice(V, p=table[ids[t - 1]])
    return torch.from_numpy(ids)


class BigramLogits(nn.Module):
    """The simplest neural LM: one row of logits per previous token."""

    def __init__(self, V: int) -> None:
        super().__init__()
        self.logits = nn.Embedding(V, V)

    def forward(self, previous: torch.Tensor) -> torch.Tensor:  # (batch,) or (batch, 1) -> (batch, V)
        return self.logits(previous.reshape(-1))


def quiet(**overrides) -> TrainConfig:
    defaults = dict(max_steps=20, batch_size=8, progress=False)
    return TrainConfig(**{**defaults, **overrides})


def tiny_window_data(seed: int = 0, V: int = 12, length: int = 400, context: int = 2):
    ids = torch.randint(0, V, (length,), generator=torch.Generator().manual_seed(seed))
    return context_windows(ids, context)


# --------------------------------------------------------------------------- known answer


@pytest.mark.parametrize("model_kind", ["bigram_logits", "fixed_window"])
def test_training_recovers_a_known_bigram_table(model_kind):
    V, N = BIGRAM_TABLE.shape[0], 8_000
    ids = sample_bigram_stream(BIGRAM_TABLE, N, seed=0)
    contexts, targets = context_windows(ids, 1)
    torch.manual_seed(0)
    if model_kind == "bigram_logits":
        model = BigramLogits(V)
    else:
        model = FixedWindowLM(V, context_size=1, embedding_dim=4, hidden_dim=16, direct_connections=True)
    # One batch of all the examples: the gradient is exact, so training should reach the
    # maximum-likelihood estimate, the table of observed transition frequencies.
    config = quiet(max_steps=200, batch_size=len(contexts), learning_rate=0.1)
    history = train(model, random_batches(contexts, targets, config.batch_size, seed=0), config)

    with torch.no_grad():
        learned = torch.softmax(model(torch.arange(V).reshape(V, 1)), dim=-1).double().numpy()
    counts = np.zeros((V, V))
    np.add.at(counts, (contexts[:, 0].numpy(), targets.numpy()), 1)
    n_i = counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(learned, counts / n_i, atol=2e-3)

    # Each row of the source table is estimated from the n_i transitions out of token i:
    # allow 4 binomial standard errors of sampling noise plus the optimisation slack above.
    allowed = 4 * np.sqrt(BIGRAM_TABLE * (1 - BIGRAM_TABLE) / n_i) + 2e-3
    assert (np.abs(learned - BIGRAM_TABLE) <= allowed).all(), np.abs(learned - BIGRAM_TABLE)

    # The training loss approaches the source's conditional entropy.
    stationary = n_i[:, 0] / n_i.sum()
    entropy = -(stationary[:, None] * BIGRAM_TABLE * np.log(BIGRAM_TABLE)).sum()
    assert abs(history.train_loss[-1] - entropy) < 0.03, (history.train_loss[-1], entropy)
    assert history.steps == list(range(1, 201))


# --------------------------------------------------------------------------- determinism


def dropout_model(V: int = 12) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(FixedWindowLM(V, 2, 4, 8), nn.Dropout(0.3))


def test_same_seed_gives_identical_history():
    contexts, targets = tiny_window_data()
    val = [(contexts[:64], targets[:64])]
    runs = []
    for seed in (0, 0, 1):
        config = quiet(max_steps=30, eval_every=10, seed=seed)
        runs.append(train(dropout_model(), random_batches(contexts, targets, 8, seed=3), config, val_batches=val))
    assert runs[0] == runs[1]
    # The config seed really drives the model's randomness (dropout): a different seed differs.
    assert runs[0].train_loss != runs[2].train_loss


def test_history_records_every_step_and_evaluation():
    contexts, targets = tiny_window_data()
    val = [(contexts[:64], targets[:64])]
    seen = []
    history = train(
        FixedWindowLM(12, 2, 4, 8),
        random_batches(contexts, targets, 8, seed=0),
        quiet(max_steps=25, eval_every=10),
        val_batches=val,
        on_step=lambda step, h: seen.append((step, len(h.steps))),
    )
    assert history.steps == list(range(1, 26))
    assert len(history.train_loss) == len(history.grad_norm) == 25
    assert history.val_steps == [10, 20, 25]  # every eval_every steps and at the end
    assert history.best_val_loss == min(history.val_loss)
    assert history.best_step == history.val_steps[int(np.argmin(history.val_loss))]
    assert seen == [(s, s) for s in range(1, 26)]


def test_no_validation_leaves_best_unset():
    contexts, targets = tiny_window_data()
    history = train(FixedWindowLM(12, 2, 4, 8), random_batches(contexts, targets, 8, seed=0), quiet(max_steps=3))
    assert history.val_loss == [] and math.isnan(history.best_val_loss) and history.best_step == -1


def test_progress_bar_runs(capsys):
    contexts, targets = tiny_window_data()
    train(FixedWindowLM(12, 2, 4, 8), random_batches(contexts, targets, 8, seed=0), quiet(max_steps=3, progress=True))
    assert "training" in capsys.readouterr().err


# --------------------------------------------------------------------------- early stopping


class Scalar(nn.Module):
    """One parameter w; its losses are set by the batches (see quadratic_loss)."""

    def __init__(self, w: float = 0.0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))


def quadratic_loss(model: Scalar, batch: torch.Tensor) -> torch.Tensor:
    """(w - target)^2: the training batches pull w towards 1.0."""
    return (model.w - batch) ** 2


def test_early_stopping_on_a_plateau():
    # The validation loss does not depend on the weights: a perfect plateau. The first
    # evaluation is the best; `patience` evaluations later training stops.
    def plateau_loss(model, batch):
        # evaluate() puts the model in eval mode: validation sees a constant loss of 1.0.
        return quadratic_loss(model, batch) if model.training else 0.0 * model.w + 1.0

    config = quiet(max_steps=1000, eval_every=5, early_stopping_patience=3, optimizer="sgd", learning_rate=0.1)
    history = train(Scalar(), [torch.tensor(1.0)], config, val_batches=[torch.tensor(2.0)], loss_fn=plateau_loss)
    assert history.stopped_early
    assert history.val_steps == [5, 10, 15, 20]
    assert history.steps[-1] == 20
    assert history.best_step == 5 and history.best_val_loss == 1.0


def test_early_stopping_restores_the_best_weights():
    # SGD moves w from 0 towards 1 (the training target); the validation target is 0.5, so the
    # validation loss falls until w passes 0.5, then rises.
    snapshots = {}
    config = quiet(max_steps=1000, eval_every=2, early_stopping_patience=2, optimizer="sgd", learning_rate=0.05)
    model = Scalar()
    history = train(
        model,
        [torch.tensor(1.0)],
        config,
        val_batches=[torch.tensor(0.5)],
        loss_fn=quadratic_loss,
        on_step=lambda step, h: snapshots.__setitem__(step, model.w.item()),
    )
    assert history.stopped_early
    best = int(np.argmin(history.val_loss))
    assert history.val_steps[best] == history.best_step
    assert len(history.val_loss) == best + 1 + config.early_stopping_patience
    assert abs(snapshots[history.best_step] - 0.5) < 0.05  # the best w is near the validation target
    assert model.w.item() == snapshots[history.best_step]  # ... and is what we get back
    assert model.w.item() != snapshots[history.steps[-1]]
    assert evaluate(model, [torch.tensor(0.5)], quadratic_loss) == history.best_val_loss


def test_without_patience_training_runs_to_the_end():
    config = quiet(max_steps=50, eval_every=2, optimizer="sgd", learning_rate=0.05)
    history = train(Scalar(), [torch.tensor(1.0)], config, val_batches=[torch.tensor(0.5)], loss_fn=quadratic_loss)
    assert not history.stopped_early and history.steps[-1] == 50


# --------------------------------------------------------------------------- clipping


def test_clipping_records_the_norm_before_clipping_and_clips_the_update():
    contexts, targets = tiny_window_data()
    batch = (contexts[:16], targets[:16])
    torch.manual_seed(0)
    model = FixedWindowLM(12, 2, 4, 8)
    reference = FixedWindowLM(12, 2, 4, 8)
    reference.load_state_dict(model.state_dict())

    # The gradient norm, computed independently.
    reference.zero_grad()
    F.cross_entropy(reference(batch[0]), batch[1]).backward()
    gradients = torch.cat([p.grad.reshape(-1) for p in reference.parameters()])
    expected_norm = float(gradients.norm())
    max_norm = expected_norm / 4  # so that clipping does something

    lr = 0.1
    config = quiet(max_steps=1, optimizer="sgd", learning_rate=lr, clip_grad_norm=max_norm)
    history = train(model, [batch], config)
    assert math.isclose(history.grad_norm[0], expected_norm, rel_tol=1e-5)

    # SGD moved the weights by lr * (clipped gradient): a step of length lr * max_norm.
    update = torch.cat([(p - q).reshape(-1) for p, q in zip(reference.parameters(), model.parameters())])
    torch.testing.assert_close(update, lr * gradients * (max_norm / expected_norm), rtol=1e-4, atol=1e-7)


def test_grad_norm_without_clipping_matches_manual():
    contexts, targets = tiny_window_data()
    batch = (contexts[:16], targets[:16])
    torch.manual_seed(0)
    model = FixedWindowLM(12, 2, 4, 8)
    model.zero_grad()
    cross_entropy(model(batch[0]), batch[1]).backward()
    expected = math.sqrt(sum(float((p.grad**2).sum()) for p in model.parameters()))
    history = train(model, [batch], quiet(max_steps=1))
    assert math.isclose(history.grad_norm[0], expected, rel_tol=1e-5)


# --------------------------------------------------------------------------- loss and evaluation


def test_language_model_loss_for_both_logit_shapes():
    torch.manual_seed(0)
    windowed = FixedWindowLM(12, 2, 4, 8)
    contexts, targets = tiny_window_data()
    expected = cross_entropy(windowed(contexts[:10]), targets[:10])
    torch.testing.assert_close(language_model_loss(windowed, (contexts[:10], targets[:10])), expected)

    sequence_model = nn.Embedding(12, 12)  # (batch, time) -> (batch, time, V)
    inputs = torch.randint(0, 12, (3, 5), generator=torch.Generator().manual_seed(0))
    sequence_targets = torch.roll(inputs, -1, dims=1)
    expected = cross_entropy(sequence_model(inputs), sequence_targets)
    torch.testing.assert_close(language_model_loss(sequence_model, (inputs, sequence_targets)), expected)

    # A model returning (logits, state), as the recurrent chapters' do.
    class WithState(nn.Module):
        def forward(self, x):
            return sequence_model(x), None

    torch.testing.assert_close(language_model_loss(WithState(), (inputs, sequence_targets)), expected)


def test_language_model_loss_shape_errors():
    model = nn.Embedding(12, 12)
    inputs = torch.zeros(3, 5, dtype=torch.long)
    with pytest.raises(ValueError, match=r"expected targets of shape \(3, 5\)"):
        language_model_loss(model, (inputs, torch.zeros(3, 4, dtype=torch.long)))
    with pytest.raises(TypeError, match=r"\(inputs, targets\)"):
        language_model_loss(model, inputs)


def test_evaluate_is_gradient_free_and_restores_the_mode():
    grad_enabled = []
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))

    def loss_fn(m, batch):
        grad_enabled.append((torch.is_grad_enabled(), m.training))
        return m(batch).sum()

    batches = [torch.ones(1, 2), 2 * torch.ones(1, 2)]
    for mode in (True, False):
        model.train(mode)
        value = evaluate(model, batches, loss_fn)
        assert model.training is mode
    assert grad_enabled == [(False, False)] * 4
    with torch.no_grad():
        model.eval()
        first = float(model(batches[0]).sum())
        expected = (first + float(model(batches[1]).sum())) / 2
    assert math.isclose(value, expected, rel_tol=1e-6)
    assert evaluate(model, batches, loss_fn, max_batches=1) == pytest.approx(first)
    with pytest.raises(ValueError, match="empty"):
        evaluate(model, [], loss_fn)


# --------------------------------------------------------------------------- errors


def test_empty_batches_is_an_error():
    with pytest.raises(ValueError, match="no batches"):
        train(FixedWindowLM(5, 1, 2, 2), [], quiet())
    with pytest.raises(ValueError, match="no batches"):
        train(FixedWindowLM(5, 1, 2, 2), iter([]), quiet())


def test_a_short_one_shot_iterator_stops_with_a_warning_and_a_list_is_repeated():
    contexts, targets = tiny_window_data()
    batches = [(contexts[:8], targets[:8]), (contexts[8:16], targets[8:16])]
    with pytest.warns(UserWarning, match="ran out after 2 of 5 steps"):
        history = train(FixedWindowLM(12, 2, 4, 8), iter(batches), quiet(max_steps=5))
    assert history.steps == [1, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = train(FixedWindowLM(12, 2, 4, 8), batches, quiet(max_steps=5))
    assert history.steps == [1, 2, 3, 4, 5]


def test_non_finite_loss_names_the_step_and_suggests_a_fix():
    def loss_fn(model, batch):
        loss = quadratic_loss(model, batch)
        return loss * float("nan") if len(calls) == 2 else loss

    calls = []
    with pytest.raises(NonFiniteLossError, match="step 3.*learning_rate.*clip_grad_norm") as error:
        train(Scalar(), [torch.tensor(1.0)], quiet(max_steps=10), loss_fn=loss_fn, on_step=lambda s, h: calls.append(s))
    assert error.value.history.steps == [1, 2]
    assert isinstance(error.value, ValueError)


def test_divergence_with_a_huge_learning_rate_is_reported():
    # Gradient descent on w^2 with learning rate 10 multiplies w by -19 each step: it overflows.
    config = quiet(max_steps=400, optimizer="sgd", learning_rate=10.0)
    with pytest.raises(NonFiniteLossError, match="non-finite"):
        train(Scalar(1.0), [torch.tensor(0.0)], config, loss_fn=quadratic_loss)


def test_config_and_argument_errors():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(max_steps=1, batch_size=1, optimizer="adam")
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(max_steps=0, batch_size=1)
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig(max_steps=1, batch_size=1, learning_rate=-1.0)
    with pytest.raises(ValueError, match="clip_grad_norm"):
        TrainConfig(max_steps=1, batch_size=1, clip_grad_norm=0.0)
    with pytest.raises(ValueError, match="val_batches"):
        train(Scalar(), [torch.tensor(1.0)], quiet(early_stopping_patience=2), loss_fn=quadratic_loss)
    with pytest.raises(ValueError, match="scalar"):
        train(Scalar(), [torch.ones(3)], quiet(), loss_fn=quadratic_loss)


# --------------------------------------------------------------------------- learning-rate schedule

def test_the_schedule_rises_linearly_then_follows_half_a_cosine():
    config = quiet(max_steps=10, learning_rate=1.0, warmup_steps=4, decay="cosine")
    rates = [config.learning_rate_at(step) for step in range(1, 11)]
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # the six decay steps are at 0, 1/6, .., 5/6 of half a cosine: the first at the peak, none at 0
    assert rates[4:] == pytest.approx([0.5 * (1 + math.cos(math.pi * k / 6)) for k in range(6)])
    assert all(a > b > 0 for a, b in zip(rates[4:], rates[5:]))
    assert [quiet(max_steps=5).learning_rate_at(step) for step in range(1, 6)] == [3e-3] * 5
    assert quiet(max_steps=5, warmup_steps=2, learning_rate=0.5).learning_rate_at(5) == 0.5


def test_training_takes_each_step_at_the_scheduled_rate():
    """SGD on a loss whose gradient is 1: each update moves the weight by exactly that step's rate."""
    config = quiet(max_steps=9, optimizer="sgd", learning_rate=0.3, warmup_steps=3, decay="cosine")
    model = Scalar()
    weights = [model.w.item()]
    train(model, [torch.tensor(0.0)], config, loss_fn=lambda m, batch: m.w.sum(),
          on_step=lambda step, history: weights.append(model.w.item()))
    moves = [before - after for before, after in zip(weights, weights[1:])]
    assert moves == pytest.approx([config.learning_rate_at(step) for step in range(1, 10)], rel=1e-6)


def test_schedule_errors_name_the_setting():
    with pytest.raises(ValueError, match="decay"):
        quiet(decay="linear")
    with pytest.raises(ValueError, match="warmup_steps"):
        quiet(warmup_steps=-1)
    with pytest.raises(ValueError, match=r"warmup_steps \(20\) must be fewer than max_steps \(20\)"):
        quiet(warmup_steps=20, decay="cosine")


# --------------------------------------------------------------------------- batches


def test_random_batches_cover_each_epoch_and_keep_pairs_aligned():
    x = torch.arange(20).reshape(10, 2)
    y = torch.arange(10) * 100
    batches = random_batches(x, y, batch_size=5, seed=0)
    epoch = [next(batches) for _ in range(2)]
    seen = torch.cat([xb[:, 0] // 2 for xb, _ in epoch])
    assert sorted(seen.tolist()) == list(range(10))  # one epoch: every example exactly once
    for xb, yb in epoch:
        assert torch.equal(yb, xb[:, 0] // 2 * 100)  # x[i] stays with y[i]
    again = random_batches(x, y, batch_size=5, seed=0)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(epoch, [next(again) for _ in range(2)]))
    other = random_batches(x, y, batch_size=5, seed=1)
    assert not torch.equal(next(other)[0], epoch[0][0])


def test_random_batches_errors():
    with pytest.raises(ValueError, match="same number of examples"):
        random_batches(torch.zeros(5, 2), torch.zeros(4), 2, seed=0)
    with pytest.raises(ValueError, match="larger than the 5 examples"):
        random_batches(torch.zeros(5, 2), torch.zeros(5), 6, seed=0)


def test_stream_batches_are_shifted_windows_within_range():
    L, block = 50, 8
    ids = torch.arange(L) * 3  # distinct tokens, so a window's position can be read off
    batches = stream_batches(ids, block_size=block, batch_size=16, seed=0)
    starts = set()
    for _ in range(40):
        inputs, targets = next(batches)
        assert inputs.shape == targets.shape == (16, block)
        assert inputs.dtype == targets.dtype == torch.long
        assert torch.equal(inputs[:, 1:], targets[:, :-1])
        for row_in, row_target in zip(inputs, targets):
            s = int(row_in[0]) // 3
            assert torch.equal(row_in, ids[s : s + block])
            assert torch.equal(row_target, ids[s + 1 : s + block + 1])
            starts.add(s)
    assert starts == set(range(L - block))  # every start is reached, and none past the end
    first = next(stream_batches(ids, block, 16, seed=0))
    assert torch.equal(first[0], next(stream_batches(ids, block, 16, seed=0))[0])


def test_stream_batches_errors():
    with pytest.raises(ValueError, match="too short"):
        stream_batches(torch.arange(8), block_size=8, batch_size=2, seed=0)
    with pytest.raises(ValueError, match="1-D"):
        stream_batches(torch.zeros(3, 10, dtype=torch.long), block_size=2, batch_size=2, seed=0)


def test_stream_batches_train_a_sequence_model():
    ids = torch.arange(200) % 7  # a deterministic cycle: the next token is always (id + 1) % 7
    model = nn.Embedding(7, 7)
    history = train(model, stream_batches(ids, 6, 8, seed=0), quiet(max_steps=150, learning_rate=0.1))
    assert history.train_loss[-1] < 0.05 < history.train_loss[0]


# --------------------------------------------------------------------------- whole sequences


def test_pad_sequences_shifts_each_sequence_and_pads_inputs_and_ignores_targets():
    inputs, targets = pad_sequences([[5, 6, 7, 8], [9, 10]], pad_id=0)
    assert inputs.tolist() == [[5, 6, 7], [9, 0, 0]]
    assert targets.tolist() == [[6, 7, 8], [10, IGNORE_INDEX, IGNORE_INDEX]]
    assert inputs.dtype == targets.dtype == torch.long
    assert IGNORE_INDEX == nn.CrossEntropyLoss().ignore_index  # what PyTorch's losses skip by default


@pytest.mark.parametrize("sequences, words", [([], "at least one"), ([[1, 2], [3]], "at least two")])
def test_pad_sequences_rejects_what_it_cannot_pad(sequences, words):
    with pytest.raises(ValueError, match=words):
        pad_sequences(sequences, pad_id=0)


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = FixedWindowLM(12, 3, 4, 8, direct_connections=True)
    config = quiet(max_steps=7)
    metadata = {"config": dataclasses.asdict(config), "step": 7, "vocab": ["<s>", "a", "b"], "note": None}
    path = save_checkpoint(model, tmp_path / "runs" / "model.safetensors", metadata)

    torch.manual_seed(1)
    restored = FixedWindowLM(12, 3, 4, 8, direct_connections=True)
    contexts = torch.randint(0, 12, (5, 3))
    assert not torch.equal(restored(contexts), model(contexts))
    assert load_checkpoint(restored, path) == metadata
    assert torch.equal(restored(contexts), model(contexts))
    assert read_checkpoint_metadata(path) == metadata

    # The file is safetensors (a JSON header, no pickle): safetensors itself reads it.
    with safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == set(model.state_dict())
        assert torch.equal(f.get_tensor("C.weight"), model.C.weight)
        assert f.metadata()["step"] == "7"
    assert not path.read_bytes().startswith((b"\x80", b"PK"))  # neither a pickle nor torch.save's zip


def test_checkpoint_with_tied_weights(tmp_path):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(6, 3)
            self.out = nn.Linear(3, 6, bias=False)
            self.out.weight = self.embed.weight  # one matrix, two names

        def forward(self, ids):
            return self.out(self.embed(ids))

    torch.manual_seed(0)
    model = Tied()
    path = save_checkpoint(model, tmp_path / "tied.safetensors")
    torch.manual_seed(1)
    restored = Tied()
    assert load_checkpoint(restored, path) == {}
    ids = torch.arange(6)
    assert torch.equal(restored(ids), model(ids))
    assert restored.out.weight is restored.embed.weight


def test_checkpoint_mismatch_names_the_problems(tmp_path):
    path = save_checkpoint(FixedWindowLM(12, 3, 4, 8, direct_connections=True), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match=r"not in the model: \['W.weight'\]") as error:
        load_checkpoint(FixedWindowLM(12, 3, 4, 8), path)
    assert "missing" not in str(error.value)
    with pytest.raises(ValueError, match=r"H.weight: checkpoint \(8, 12\) vs model \(9, 12\)"):
        load_checkpoint(FixedWindowLM(12, 3, 4, 9, direct_connections=True), path)

    no_direct = save_checkpoint(FixedWindowLM(12, 3, 4, 8), tmp_path / "n.safetensors")
    untouched = FixedWindowLM(12, 3, 4, 8, direct_connections=True)
    before = {k: v.clone() for k, v in untouched.state_dict().items()}
    with pytest.raises(ValueError, match=r"missing from the checkpoint: \['W.weight'\]"):
        load_checkpoint(untouched, no_direct)
    assert all(torch.equal(before[k], v) for k, v in untouched.state_dict().items())


def test_checkpoint_file_errors(tmp_path):
    model = FixedWindowLM(5, 1, 2, 2)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(model, tmp_path / "absent.safetensors")
    pickled = tmp_path / "model.pt"
    torch.save(model.state_dict(), pickled)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_checkpoint(model, pickled)
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(model, tmp_path / "x.safetensors", {"config": TrainConfig(max_steps=1, batch_size=1)})


def test_history_is_a_plain_dataclass():
    assert dataclasses.asdict(History())["best_step"] == -1
