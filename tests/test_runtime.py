"""Seeding and device choice."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from course_lib import pick_device, seed_everything


def draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_same_seed_gives_the_same_draws_everywhere_and_another_seed_differs():
    threads = torch.get_num_threads()
    try:
        seed_everything(3)
        first = draws()
        seed_everything(3)
        assert draws() == first
        seed_everything(4)
        assert all(a != b for a, b in zip(draws(), first))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("seed, threads", [(-1, 1), (1.5, 1), ("0", 1), (True, 1), (0, 0)])
def test_bad_seeds_and_thread_counts_are_refused(seed, threads):
    with pytest.raises(ValueError):
        seed_everything(seed, threads=threads)


def test_cpu_is_the_default_and_auto_falls_back_to_cpu_here():
    assert pick_device() == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert pick_device("auto").type in {"cpu", "mps"}
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            pick_device("cuda")
