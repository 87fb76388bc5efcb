"""Training on several processes or machines: data parallelism with ``DistributedDataParallel``.

Each of ``N`` processes keeps a copy of the model. At every step the global batch of ``B``
examples is cut into ``N`` shards of ``B / N`` rows; process ``r`` computes the mean loss
``L_r`` of its shard and its gradient, and DDP averages the gradients over the processes
(an all-reduce, overlapped with the backward pass), so every copy takes the same update::

    g = (1/N) Σ_r ∇L_r(θ) = ∇L(θ)          L = mean loss of the global batch (equal shards)

so ``N`` processes train as one process on the same global batch would, up to the order of the
floating-point sums. (With padded batches the shards may hold different numbers of targets; the
average of their means then weighs each shard equally, not each target: close, not equal.) ``torchrun`` starts the processes and tells each one who it is through the
environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``);
:func:`process_group` joins them (``gloo`` for CPU tensors, ``NCCL`` for CUDA ones) and
:func:`course_lib.train.train` does the rest: it shards each batch
(:func:`data_parallel_loss`), averages the loss it records (:func:`mean_across_processes`) and
shows progress only in the main process. Every process draws the same global batch (the batch
helpers are seeded), so nothing else has to be sent between them.

Outside ``torchrun`` (or with one process) everything here does nothing.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from course_lib.checks import ArgumentError

__all__ = ["active", "backend", "data_parallel_loss", "is_main_process", "launched_by_torchrun",
           "mean_across_processes", "process_group", "rank", "shard", "world_size"]


def launched_by_torchrun() -> bool:
    """Whether ``torchrun`` (or another launcher setting its variables) started this process."""
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def active() -> bool:
    """Whether this process trains together with others (a process group of two or more)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's number, 0 .. N-1 (0 when alone)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """The number of processes training together (1 when alone)."""
    return dist.get_world_size() if active() else 1


def is_main_process() -> bool:
    """Process 0, which prints, shows progress and writes checkpoints."""
    return rank() == 0


def backend() -> str:
    """``gloo`` for tensors on CPUs and, where CUDA is present, ``nccl`` for tensors on GPUs."""
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


@contextmanager
def process_group() -> Iterator[None]:
    """Join the processes ``torchrun`` started for the duration of the block, then leave.

    With CUDA each process takes the GPU ``LOCAL_RANK`` of its machine as its ``"cuda"`` device.
    Outside ``torchrun``, or if a group is already set up, the block runs as it is.
    """
    if not launched_by_torchrun() or not dist.is_available() or dist.is_initialized():
        yield
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend())
    try:
        yield
    finally:
        dist.destroy_process_group()


def shard(batch: Any, index: int | None = None, count: int | None = None) -> Any:
    """Rows ``index * B/count .. (index + 1) * B/count`` of every tensor of ``batch`` (first
    dimension ``B``; tuples, lists and dicts of tensors keep their shape): this process's share
    of the global batch by default."""
    index = rank() if index is None else index
    count = world_size() if count is None else count
    if count == 1:
        return batch
    if isinstance(batch, Tensor):
        if batch.shape[0] % count:
            raise ArgumentError(f"a global batch of {batch.shape[0]} rows cannot be shared equally by {count} "
                                f"processes; choose a batch size divisible by {count} (or another process count)")
        size = batch.shape[0] // count
        return batch[index * size:(index + 1) * size]
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard(item, index, count) for item in batch)
    if isinstance(batch, dict):
        return {key: shard(value, index, count) for key, value in batch.items()}
    return batch


class _LossOfModel(nn.Module):
    """``loss_fn(model, batch)`` as a module, so that DDP sees every forward pass the loss makes,
    whichever methods of the model it calls (``model(x)``, ``model.loss(...)``)."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, Any], Tensor]) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Any) -> Tensor:
        return self.loss_fn(self.model, batch)


def data_parallel_loss(model: nn.Module, loss_fn: Callable[[nn.Module, Any], Tensor]) -> Callable[[Any], Tensor]:
    """``batch -> loss``: ``loss_fn(model, batch)`` alone; with other processes, the loss of this
    process's shard of the batch through ``DistributedDataParallel``, whose backward pass leaves
    every process the gradients averaged over all of them. Build it after moving the model to
    its device; DDP copies process 0's parameters to the others."""
    if not active():
        return lambda batch: loss_fn(model, batch)
    device_ids = [torch.cuda.current_device()] if next(model.parameters()).is_cuda else None
    parallel = nn.parallel.DistributedDataParallel(_LossOfModel(model, loss_fn), device_ids=device_ids)
    return lambda batch: parallel(shard(batch))


def mean_across_processes(value: float) -> float:
    """The mean of ``value`` over the processes (``value`` itself when alone): the global batch's
    loss from the shards' losses."""
    if not active():
        return value
    total = torch.tensor([value], dtype=torch.float64)  # on the CPU: gloo
    dist.all_reduce(total)
    return float(total) / dist.get_world_size()
