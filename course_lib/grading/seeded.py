"""Seeded inputs for the case sets: the same arrays on every run, in the precision the items grade.

Each case draws from its own seed, so adding or reordering cases never changes another case's inputs.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["float64_tensor", "layer_weights", "normal_array", "seeded_rng"]


def seeded_rng(seed: int) -> np.random.Generator:
    """NumPy's generator for one case."""
    return np.random.default_rng(seed)


def normal_array(seed: int, *shape: int, scale: float = 1.0) -> np.ndarray:
    """A float64 array of ``shape`` drawn from N(0, scale²) with ``seed``."""
    return seeded_rng(seed).normal(0.0, scale, shape)


def layer_weights(seed: int, shapes: dict[str, tuple[int, ...]], norms: tuple[str, ...], width: int,
                  scale: float = 0.3) -> dict[str, np.ndarray]:
    """A layer's weights drawn with ``seed``: each of ``shapes`` from N(0, scale²), in order, then
    each layer norm ``n`` of ``norms`` a gain ``n.weight`` near 1 and a bias ``n.bias`` near 0
    (N(1, 0.2²) and N(0, 0.2²), ``width`` entries each)."""
    rng = seeded_rng(seed)
    weights = {name: rng.normal(0.0, scale, shape) for name, shape in shapes.items()}
    for norm in norms:
        weights[f"{norm}.weight"] = rng.normal(1.0, 0.2, width)
        weights[f"{norm}.bias"] = rng.normal(0.0, 0.2, width)
    return weights


def float64_tensor(array: np.ndarray) -> torch.Tensor:
    """The array as a float64 tensor, for a reference computed with PyTorch."""
    return torch.as_tensor(np.asarray(array, dtype=np.float64))
