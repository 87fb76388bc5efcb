"""Reproducibility and device choice, shared by every chapter.

Every notebook starts with ``seed_everything(0)`` so that what the book shows is what the
tests re-execute; the thread count is fixed for the same reason (floating-point sums can
change with the number of threads that compute them).
"""
from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from course_lib.checks import integer, non_negative_int

DEFAULT_THREADS = 1  # small models gain little from more, and one thread gives the same sums everywhere


def seed_everything(seed: int = 0, threads: int = DEFAULT_THREADS) -> None:
    """Seed Python's, NumPy's and PyTorch's generators and fix PyTorch's thread count."""
    seed = non_negative_int("seed", seed)
    threads = integer("threads", threads, minimum=1)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)


def pick_device(preference: str | None = None) -> "torch.device":
    """The device to compute on: ``preference`` if given, else CPU.

    CPU is the default everywhere so that every result in the book reproduces on a laptop;
    pass ``"auto"`` to take CUDA or Apple's MPS when present.
    """
    import torch

    if preference is None or preference == "cpu":
        return torch.device("cpu")
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {preference!r} was asked for but CUDA is not available; use 'cpu' or 'auto'")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError("device 'mps' was asked for but MPS is not available; use 'cpu' or 'auto'")
    return torch.device(preference)


@contextmanager
def evaluation_mode(model: object) -> Iterator[object]:
    """Run the block with ``model`` in evaluation mode (dropout off) and without gradients, then
    put it back in the mode it was in, even if the block raises.

    Any object is accepted: one that is not a ``torch.nn.Module`` (an n-gram model) has no mode,
    and only the gradients are switched off.
    """
    import torch

    was_training = getattr(model, "training", None)
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        if isinstance(model, torch.nn.Module):
            model.train(bool(was_training))
