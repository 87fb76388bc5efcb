"""What the plot functions accept as data: vectors, labels and (x, y) series, checked once."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from course_lib.checks import ArgumentError


def as_vector(values: object, what: str) -> np.ndarray:
    """A 1-D float array without NaN, or a clear error naming ``what``."""
    if isinstance(values, (str, bytes)):
        raise ArgumentError(f"{what} must be a sequence of numbers, not a str")
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentError(f"{what} must be a sequence of numbers, got {type(values).__name__}") from None
    if array.ndim != 1:
        raise ArgumentError(f"{what} must be one-dimensional, got shape {array.shape}")
    if np.isnan(array).any():
        raise ArgumentError(f"{what} contains NaN; drop those points or pass inf for an infinite value")
    return array


def as_labels(labels: object, what: str) -> list[str]:
    """A list of str, or a clear error naming ``what``."""
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise ArgumentError(f"{what} must be a list of str, got {type(labels).__name__}")
    if not all(isinstance(label, str) for label in labels):
        raise ArgumentError(f"{what} must contain only str")
    return list(labels)


def as_points(points: object, what: str) -> np.ndarray:
    """A ``(k, 2)`` float array of finite points, k >= 1."""
    try:
        array = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentError(f"{what} must be numbers of shape (k, 2)") from None
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] == 0:
        raise ArgumentError(f"{what} must have shape (k, 2) with k >= 1, got {array.shape}")
    if not np.isfinite(array).all():
        raise ArgumentError(f"{what} contain NaN or inf")
    return array


def series_pair(label: object, pair: object, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The checked ``(x, y)`` of one series ``{label: (x, y)}``; ``where`` names it in errors."""
    if not isinstance(label, str):
        raise ArgumentError(f"series labels must be str, got {type(label).__name__} {label!r}")
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ArgumentError(f"{where} must be a pair (x, y) of equal-length sequences")
    x, y = as_vector(pair[0], f"x of {label!r}"), as_vector(pair[1], f"y of {label!r}")
    if x.shape != y.shape:
        raise ArgumentError(f"{where} has {x.size} x values but {y.size} y values")
    return x, y


def label_value_pairs(pairs: object, where: str) -> tuple[list[str], np.ndarray]:
    """``[(label, value), ...]`` or ``{label: value}`` as labels and finite values, at least one."""
    rows = list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)  # type: ignore[arg-type]
    if not rows or not all(isinstance(row, (tuple, list)) and len(row) == 2 for row in rows):
        raise ArgumentError(f"{where} must hold at least one (label, value) pair")
    labels = as_labels([label for label, _ in rows], f"the labels of {where}")
    values = as_vector([value for _, value in rows], f"the values of {where}")
    if not np.isfinite(values).all():
        raise ArgumentError(f"the values of {where} must be finite to draw bars")
    return labels, values
