"""The training loop every chapter from Chapter 3 on uses.

Training a language model is the same few lines whatever the model:

    for step in 1 .. max_steps:
        loss = mean NLL of a mini-batch             (forward)
        gradients of the loss                       (backward)
        optionally rescale them to a maximum norm   (clipping, Chapter 4)
        parameters -= update from the optimizer     (SGD or AdamW)
        every eval_every steps: loss on held-out batches; stop when it no longer improves

:func:`train` is those lines, plus what the chapters plot (a :class:`History`), a progress bar,
and clear messages when something goes wrong. Batches come from any iterable; for arrays of
examples use :func:`random_batches`, for one long token stream :func:`stream_batches`.
Checkpoints are safetensors files (:func:`save_checkpoint`, :func:`load_checkpoint`).

Two things a long run needs, both outside the few lines above:

* **stopping and going on**: with ``save_state_to`` the loop writes its whole state (weights,
  optimizer, step, history, random generator) every ``save_state_every`` steps;
  ``resume_from`` continues from such a file exactly as the uninterrupted run would have;
* **several processes**: under ``torchrun`` (:mod:`course_lib.distributed`) each process computes
  its shard of every batch and ``DistributedDataParallel`` averages the gradients.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from os import PathLike
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from course_lib import distributed
from course_lib.checkpoint import (load_checkpoint, load_training_state, read_checkpoint_metadata, save_checkpoint,
                                   save_training_state)
from course_lib.checks import non_negative_int, number, one_of, positive_int, token_ids
from course_lib.runtime import evaluation_mode, pick_device

Tensor = torch.Tensor
Batch = Any  # usually (inputs, targets); any nesting of tuples, lists and dicts of tensors
LossFn = Callable[[nn.Module, Batch], Tensor]

__all__ = [
    "TrainConfig",
    "History",
    "NonFiniteLossError",
    "train",
    "language_model_loss",
    "evaluate",
    "random_batches",
    "stream_batches",
    "IGNORE_INDEX",
    "pad_sequences",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_metadata",
]

OPTIMIZERS = ("adamw", "sgd")
DECAYS = ("constant", "cosine")


@dataclass
class TrainConfig:
    """How to train.

    Attributes:
        max_steps: the number of optimizer updates.
        batch_size: examples per batch. The loop takes batches as the iterator makes them;
            this field records the size for the batch helpers and for checkpoints.
        learning_rate: step size of the optimizer (the peak of the schedule, if there is one).
        warmup_steps: the learning rate rises linearly over the first this many steps, from
            ``learning_rate / warmup_steps`` at step 1 to ``learning_rate`` (0: no warm-up).
        decay: after the warm-up, ``"constant"`` keeps ``learning_rate``; ``"cosine"`` lowers it
            along half a cosine to 0 after the last step. :meth:`learning_rate_at` gives the rate
            of any step.
        weight_decay: decoupled weight decay for AdamW, L2 penalty for SGD.
        optimizer: ``"adamw"`` or ``"sgd"``.
        clip_grad_norm: if set, gradients are rescaled so their total L2 norm is at most this.
        eval_every: evaluate on the validation batches every this many steps (and at the last step).
        eval_batches: how many validation batches each evaluation averages over.
        early_stopping_patience: stop after this many evaluations in a row without a new best
            validation loss, then restore the best weights. ``None`` trains for ``max_steps``.
        seed: seeds PyTorch's generator at the start of training (dropout and any other
            randomness inside the model); batch order is seeded by the batch helpers.
        device: ``"cpu"`` (default), ``"cuda"``, ``"mps"`` or ``"auto"``.
        progress: show a progress bar with the running loss.
    """

    max_steps: int
    batch_size: int
    learning_rate: float = 3e-3
    warmup_steps: int = 0
    decay: str = "constant"
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    clip_grad_norm: float | None = None
    eval_every: int = 100
    eval_batches: int = 20
    early_stopping_patience: int | None = None
    seed: int = 0
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "eval_every", "eval_batches"):
            positive_int(name, getattr(self, name))
        if self.early_stopping_patience is not None:
            positive_int("early_stopping_patience", self.early_stopping_patience)
        non_negative_int("seed", self.seed)
        number("learning_rate", self.learning_rate, above=0.0)
        number("weight_decay", self.weight_decay, minimum=0.0)
        if self.clip_grad_norm is not None:
            number("clip_grad_norm", self.clip_grad_norm, above=0.0, what="a positive number or None")
        one_of("optimizer", self.optimizer, OPTIMIZERS)
        non_negative_int("warmup_steps", self.warmup_steps)
        if self.warmup_steps >= self.max_steps and self.decay != "constant":
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be fewer than max_steps ({self.max_steps}) "
                             f"to leave steps for the {self.decay} decay")
        one_of("decay", self.decay, DECAYS)

    def learning_rate_at(self, step: int) -> float:
        """The learning rate of update ``step`` (counted from 1): the warm-up, then the decay."""
        step = positive_int("step", step)
        if step <= self.warmup_steps:
            return self.learning_rate * step / self.warmup_steps
        if self.decay == "constant":
            return self.learning_rate
        done = (step - self.warmup_steps - 1) / (self.max_steps - self.warmup_steps)  # 0 at the first, < 1
        return self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * done))


@dataclass
class History:
    """What happened during training, for the chapters' plots.

    Attributes:
        steps, train_loss, grad_norm: one entry per optimizer update (steps count from 1);
            ``grad_norm`` is the total L2 norm of the gradients *before* clipping.
        val_steps, val_loss: one entry per evaluation.
        best_val_loss, best_step: the lowest validation loss and the step it was reached at
            (``nan`` and ``-1`` when there was no validation).
        stopped_early: whether early stopping ended training before ``max_steps``.
    """

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    best_val_loss: float = math.nan
    best_step: int = -1
    stopped_early: bool = False


class NonFiniteLossError(ValueError):
    """The loss or the gradients became ``nan`` or ``inf``; ``.history`` holds the steps so far."""

    def __init__(self, message: str, history: History) -> None:
        super().__init__(message)
        self.history = history


# --------------------------------------------------------------------------- losses and evaluation


def _model_logits(output: Any) -> Tensor:
    """The logits in a model's output: the tensor itself, the first element of a tuple
    (recurrent models also return their state), or a ``.logits`` attribute (Hugging Face)."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return output[0]
    logits = getattr(output, "logits", None)
    if isinstance(logits, Tensor):
        return logits
    raise TypeError(
        f"the model returned {type(output).__name__}; language_model_loss expects logits, "
        "a tuple whose first element is the logits, or an object with a .logits tensor"
    )


def language_model_loss(model: nn.Module, batch: Batch) -> Tensor:
    """Mean cross-entropy of the model's next-token predictions on ``batch = (inputs, targets)``.

    Works for both shapes the book uses:

    * fixed-window models: logits ``(batch, V)``, targets ``(batch,)``;
    * sequence models (RNN, GPT): logits ``(batch, time, V)``, targets ``(batch, time)``.

    Targets equal to -100 are ignored (PyTorch's padding convention). This is PyTorch's fused
    ``F.cross_entropy``, which Chapter 3 shows equals ``neural_lm.cross_entropy`` written out.
    """
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(
            f"language_model_loss expects a batch (inputs, targets), got {type(batch).__name__}"
            + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
            + "; pass loss_fn=... to train on batches of another form"
        )
    inputs, targets = batch
    logits = _model_logits(model(inputs))
    if logits.dim() not in (2, 3):
        raise ValueError(
            f"logits must have shape (batch, vocab) or (batch, time, vocab), got {tuple(logits.shape)}"
        )
    if not isinstance(targets, Tensor) or targets.shape != logits.shape[:-1]:
        shape = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(
            f"targets of shape {shape} do not match logits of shape {tuple(logits.shape)}: "
            f"expected targets of shape {tuple(logits.shape[:-1])} (the logits without the vocabulary dimension)"
        )
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def _to_device(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: _to_device(value, device) for key, value in batch.items()}
    return batch


def _model_device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def evaluate(
    model: nn.Module,
    batches: Iterable[Batch],
    loss_fn: LossFn = language_model_loss,
    max_batches: int | None = None,
) -> float:
    """Mean of ``loss_fn`` over ``batches`` (at most ``max_batches`` of them), without gradients.

    The model is put in evaluation mode (dropout off) and returned to the mode it was in.
    Each batch counts equally, so equal-sized batches give the mean per example.
    """
    if max_batches is not None:
        positive_int("max_batches", max_batches)
    device = _model_device(model)
    total, count = 0.0, 0
    with evaluation_mode(model):
        # iter() of a list starts a fresh pass (the same validation set every time);
        # of an endless sampler, it goes on where the last evaluation stopped.
        for batch in islice(iter(batches), max_batches):
            total += float(loss_fn(model, _to_device(batch, device)))
            count += 1
    if count == 0:
        raise ValueError(
            "the evaluation batches are empty (a one-shot iterator already used up?); "
            "pass a list of batches or an endless sampler such as random_batches"
        )
    return total / count


# --------------------------------------------------------------------------- the loop


def _make_optimizer(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def _diverged(what: str, step: int, history: History) -> NonFiniteLossError:
    return NonFiniteLossError(
        f"the {what} became non-finite (nan or inf) at step {step}; training stopped. "
        "Try a lower learning_rate or set clip_grad_norm (e.g. 1.0) in the TrainConfig.",
        history,
    )


def train(
    model: nn.Module,
    train_batches: Iterable[Batch],
    config: TrainConfig,
    *,
    val_batches: Iterable[Batch] | None = None,
    loss_fn: LossFn = language_model_loss,
    on_step: Callable[[int, History], None] | None = None,
    save_state_to: str | PathLike | None = None,
    save_state_every: int | None = None,
    resume_from: str | PathLike | None = None,
) -> History:
    """Train ``model`` in place for ``config.max_steps`` updates and return its :class:`History`.

    Args:
        model: any ``nn.Module``; it is moved to ``config.device``.
        train_batches: an iterable of batches. An endless sampler (:func:`random_batches`,
            :func:`stream_batches`) is the usual choice; a list is gone through again as often
            as needed. A one-shot iterator that runs out ends training early, with a warning.
        config: the :class:`TrainConfig`.
        val_batches: held-out batches, evaluated every ``config.eval_every`` steps and at the
            last step on ``config.eval_batches`` batches. A list gives the same validation set
            at every evaluation; an endless sampler gives fresh batches each time.
        loss_fn: ``loss_fn(model, batch) -> scalar tensor``; the default is the mean next-token
            cross-entropy on ``(inputs, targets)``.
        on_step: called as ``on_step(step, history)`` after every update (and its evaluation).
        save_state_to: a safetensors file to write the training state to (weights, optimizer,
            step, history, random generator; :func:`~course_lib.checkpoint.save_training_state`)
            every ``save_state_every`` steps (default: only at the end) and at the last step.
        resume_from: such a file: training goes on after its step, with its optimizer state,
            history and generator, as the run that wrote it would have gone on. Build the model,
            the batches and the config as for that run; the first batches are drawn and skipped.

    With ``early_stopping_patience`` set, training stops once that many evaluations in a row
    bring no new best validation loss, and — whether it stopped early or ran to the end — the
    model is given back with the weights of its best evaluation (``history.best_step``).

    Raises:
        NonFiniteLossError: the loss or gradient norm became nan/inf (its ``.history`` has the
            steps so far).
        ValueError: no batches, a non-scalar loss, or early stopping without validation batches.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if save_state_every is not None:
        positive_int("save_state_every", save_state_every)
    if config.early_stopping_patience is not None and val_batches is None:
        raise ValueError("early_stopping_patience needs val_batches to measure improvement; pass val_batches=...")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (requires_grad=True); nothing to train")

    torch.manual_seed(config.seed + distributed.rank())  # each process its own dropout masks
    device = pick_device(config.device)
    model.to(device)
    optimizer = _make_optimizer(params, config)
    step_loss = distributed.data_parallel_loss(model, loss_fn)  # this process's shard of each batch
    history = History()
    best_state: dict[str, Tensor] | None = None
    evaluations_without_improvement = 0

    batch_iterator = iter(train_batches)
    restartable = batch_iterator is not train_batches  # a list or other re-iterable collection
    running_loss: float | None = None

    def next_batch(step: int) -> Batch | None:
        """The batch of ``step``, or None when a one-shot iterator has run out."""
        nonlocal batch_iterator
        try:
            return next(batch_iterator)
        except StopIteration:
            if step == 1:
                raise ValueError("train_batches yielded no batches; check the data source") from None
            if not restartable:
                warnings.warn(
                    f"train_batches ran out after {step - 1} of {config.max_steps} steps; training stopped. "
                    "Use an endless sampler (random_batches, stream_batches) or a list of batches.",
                    stacklevel=3,
                )
                return None
            batch_iterator = iter(train_batches)  # next pass (epoch) over the collection
            return next(batch_iterator)

    def save_state(step: int) -> None:
        extra = {"torch_rng": torch.get_rng_state()}
        extra.update({f"best.{k}": v for k, v in (best_state or {}).items()})
        save_training_state(save_state_to, model, optimizer, tensors=extra, metadata={
            "step": step, "history": dataclasses.asdict(history), "running_loss": running_loss,
            "evaluations_without_improvement": evaluations_without_improvement,
            "train_config": dataclasses.asdict(config)})

    first_step = 1
    if resume_from is not None:
        saved, extra = load_training_state(resume_from, model, optimizer)
        history = History(**saved["history"])
        running_loss, evaluations_without_improvement = saved["running_loss"], saved["evaluations_without_improvement"]
        best_state = {k[len("best."):]: v.to(device) for k, v in extra.items() if k.startswith("best.")} or None
        torch.set_rng_state(extra["torch_rng"])
        first_step = saved["step"] + 1
        for step in range(1, first_step):  # the batches the saved run has already trained on
            next_batch(step)

    bar = tqdm(total=config.max_steps, initial=first_step - 1, desc="training", leave=False,
               disable=not config.progress or not distributed.is_main_process())
    try:
        for step in range(first_step, config.max_steps + 1):
            batch = next_batch(step)
            if batch is None:
                break

            model.train()
            loss = step_loss(_to_device(batch, device))
            if not isinstance(loss, Tensor) or loss.dim() != 0:
                shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
                raise ValueError(f"loss_fn must return a scalar tensor, got {shape}; reduce it with .mean()")
            loss_value = distributed.mean_across_processes(float(loss.detach()))
            if not math.isfinite(loss_value):
                raise _diverged("loss", step, history)

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grads = [p.grad for p in params if p.grad is not None]
            if config.clip_grad_norm is not None:
                # clip_grad_norm_ returns the total norm measured before rescaling.
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.clip_grad_norm))
            else:
                grad_norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
            if not math.isfinite(grad_norm):
                raise _diverged("gradient norm", step, history)
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate_at(step)  # the schedule's rate (constant without one)
            optimizer.step()

            history.steps.append(step)
            history.train_loss.append(loss_value)
            history.grad_norm.append(grad_norm)
            running_loss = loss_value if running_loss is None else 0.95 * running_loss + 0.05 * loss_value
            bar.update(1)
            bar.set_postfix(loss=f"{running_loss:.4f}", refresh=False)

            stop = False
            if val_batches is not None and (step % config.eval_every == 0 or step == config.max_steps):
                val_loss = evaluate(model, val_batches, loss_fn, max_batches=config.eval_batches)
                if not math.isfinite(val_loss):
                    raise _diverged("validation loss", step, history)
                history.val_steps.append(step)
                history.val_loss.append(val_loss)
                if history.best_step < 0 or val_loss < history.best_val_loss:
                    history.best_val_loss, history.best_step = val_loss, step
                    evaluations_without_improvement = 0
                    if config.early_stopping_patience is not None:
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    evaluations_without_improvement += 1
                patience = config.early_stopping_patience
                stop = patience is not None and evaluations_without_improvement >= patience
                history.stopped_early = stop and step < config.max_steps

            if save_state_to is not None and distributed.is_main_process() and (
                    stop or step == config.max_steps or (save_state_every and step % save_state_every == 0)):
                save_state(step)
            if on_step is not None:
                on_step(step, history)
            if stop:
                break
    finally:
        bar.close()

    if best_state is not None:
        model.load_state_dict(best_state)
    return history


# --------------------------------------------------------------------------- batches


def random_batches(x: Tensor, y: Tensor, batch_size: int, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless shuffled mini-batches ``(x[i], y[i])`` from tensors of examples.

    Each pass (epoch) is a fresh permutation of the N examples cut into ``N // batch_size``
    batches of exactly ``batch_size``; the few left over in one epoch are seen in others.

    Args:
        x: ``(N, ...)`` inputs, e.g. contexts ``(N, n-1)``.
        y: ``(N, ...)`` targets, e.g. next tokens ``(N,)``.
        batch_size: examples per batch, at most N.
        seed: the shuffling seed; the same seed gives the same batches.
    """
    positive_int("batch_size", batch_size)
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError("x and y must be torch tensors (use torch.as_tensor to convert)")
    if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must hold the same number of examples along their first dimension, "
            f"got shapes {tuple(x.shape)} and {tuple(y.shape)}"
        )
    n = x.shape[0]
    if batch_size > n:
        raise ValueError(f"batch_size {batch_size} is larger than the {n} examples; use batch_size <= {n}")
    return _random_batches(x, y, batch_size, _generator(seed))


def _random_batches(x: Tensor, y: Tensor, batch_size: int, generator: torch.Generator) -> Iterator:
    n = x.shape[0]
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):
            index = order[start : start + batch_size].to(x.device)
            yield x[index], y[index]


def stream_batches(
    ids: Tensor, block_size: int, batch_size: int, seed: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless batches of random windows of a 1-D token stream, for sequence models.

    Each row is ``block_size`` consecutive tokens starting at a random position s; its targets
    are the next tokens, the same window shifted by one::

        inputs[b]  = ids[s     : s + block_size]
        targets[b] = ids[s + 1 : s + block_size + 1]

    Returns:
        an iterator of ``(inputs, targets)``, each ``(batch_size, block_size)`` of ``torch.long``.
    """
    positive_int("block_size", block_size)
    positive_int("batch_size", batch_size)
    ids = token_ids("ids", ids)
    if ids.numel() < block_size + 1:
        raise ValueError(
            f"a stream of {ids.numel()} tokens is too short for windows of block_size={block_size} "
            f"plus the shifted target; use block_size <= {ids.numel() - 1}"
        )
    return _stream_batches(ids, block_size, batch_size, _generator(seed))


def _stream_batches(ids: Tensor, block_size: int, batch_size: int, generator: torch.Generator) -> Iterator:
    last_start = ids.numel() - block_size - 1  # the target window must end inside the stream
    offsets = torch.arange(block_size)
    while True:
        starts = torch.randint(0, last_start + 1, (batch_size,), generator=generator)
        index = (starts[:, None] + offsets).to(ids.device)  # (batch, block_size)
        yield ids[index], ids[index + 1]


# --------------------------------------------------------------------------- small helpers


IGNORE_INDEX = -100  # PyTorch's ignore_index: a padding position has no target


def pad_sequences(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Inputs and next-token targets of equal-length rows, ``(batch, longest - 1)`` each.

    Row ``b`` reads ``sequences[b][:-1]`` and predicts ``sequences[b][1:]``; past its end the inputs
    are ``pad_id`` and the targets ``IGNORE_INDEX``. A recurrent network reads left to right, so
    padding at the end changes nothing at the real positions and adds nothing to the loss.
    """
    if not sequences:
        raise ValueError("pad_sequences needs at least one sequence")
    if any(len(sequence) < 2 for sequence in sequences):
        raise ValueError("every sequence needs at least two ids (an input and the token it predicts)")
    width = max(len(sequence) for sequence in sequences) - 1
    inputs = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    targets = torch.full((len(sequences), width), IGNORE_INDEX, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids = torch.as_tensor(sequence, dtype=torch.long)
        inputs[row, : len(ids) - 1] = ids[:-1]
        targets[row, : len(ids) - 1] = ids[1:]
    return inputs, targets


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(non_negative_int("seed", seed))
