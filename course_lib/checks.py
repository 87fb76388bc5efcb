"""Argument checks shared by every module of the course.

A wrong argument gets one clear message that names the argument, what it must be, and what it
was, before any computation starts:

    >>> from course_lib.checks import positive_int
    >>> positive_int("steps", 0)
    Traceback (most recent call last):
    ...
    course_lib.checks.ArgumentError: steps must be a positive integer, got 0

:class:`ArgumentError` is both a ``TypeError`` and a ``ValueError``: a caller may catch either,
whichever reads more naturally where the call is made.
"""
from __future__ import annotations

import math
from collections.abc import Collection
from numbers import Integral, Real
from typing import Any, TypeVar

__all__ = [
    "ArgumentError",
    "finite_number",
    "integer",
    "non_negative_int",
    "number",
    "one_of",
    "positive_int",
    "positive_number",
    "probability",
    "text",
    "token_ids",
]

T = TypeVar("T")


class ArgumentError(TypeError, ValueError):
    """An argument of the wrong type or out of its range."""


def _describe(value: object) -> str:
    text_form = repr(value)
    if len(text_form) > 60:
        text_form = text_form[:57] + "..."
    return text_form


def integer(name: str, value: object, *, minimum: int | None = None, maximum: int | None = None,
            what: str | None = None) -> int:
    """``value`` as an ``int`` if it is an integer (Python or NumPy, not bool) within the bounds."""
    bounds = what or _integer_bounds(minimum, maximum)
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ArgumentError(f"{name} must be {bounds}, got {_describe(value)} of type {type(value).__name__}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ArgumentError(f"{name} must be {bounds}, got {value}")
    return value


def _integer_bounds(minimum: int | None, maximum: int | None) -> str:
    if minimum == 1 and maximum is None:
        return "a positive integer"
    if minimum == 0 and maximum is None:
        return "a non-negative integer"
    if minimum is not None and maximum is not None:
        return f"an integer from {minimum} to {maximum}"
    if minimum is not None:
        return f"an integer >= {minimum}"
    if maximum is not None:
        return f"an integer <= {maximum}"
    return "an integer"


def positive_int(name: str, value: object) -> int:
    """``value`` if it is an integer >= 1."""
    return integer(name, value, minimum=1)


def non_negative_int(name: str, value: object) -> int:
    """``value`` if it is an integer >= 0 (seeds, counts that may be zero)."""
    return integer(name, value, minimum=0)


def number(name: str, value: object, *, minimum: float | None = None, maximum: float | None = None,
           above: float | None = None, below: float | None = None, finite: bool = True,
           what: str | None = None) -> float:
    """``value`` as a ``float`` if it is a real number (not bool) within the bounds.

    ``minimum``/``maximum`` are inclusive, ``above``/``below`` exclusive; ``finite`` rejects
    NaN and infinities (NaN is always rejected).
    """
    bounds = what or _number_bounds(minimum, maximum, above, below, finite)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ArgumentError(f"{name} must be {bounds}, got {_describe(value)} of type {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ArgumentError(f"{name} must be {bounds}, got {value}")
    if ((minimum is not None and value < minimum) or (maximum is not None and value > maximum)
            or (above is not None and value <= above) or (below is not None and value >= below)):
        raise ArgumentError(f"{name} must be {bounds}, got {value:g}")
    return value


def _number_bounds(minimum, maximum, above, below, finite) -> str:
    kind = "a finite number" if finite else "a number"
    if above == 0 and minimum is None and maximum is None and below is None:
        return "a positive number"
    parts = []
    if minimum is not None:
        parts.append(f">= {minimum:g}")
    if above is not None:
        parts.append(f"> {above:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    if below is not None:
        parts.append(f"< {below:g}")
    return kind + (" " + " and ".join(parts) if parts else "")


def finite_number(name: str, value: object) -> float:
    """``value`` if it is a finite real number."""
    return number(name, value)


def positive_number(name: str, value: object) -> float:
    """``value`` if it is a finite number > 0."""
    return number(name, value, above=0.0)


def probability(name: str, value: object) -> float:
    """``value`` if it is a number from 0 to 1."""
    return number(name, value, minimum=0.0, maximum=1.0, what="a probability from 0 to 1")


def one_of(name: str, value: T, choices: Collection[Any]) -> T:
    """``value`` if it is one of ``choices``."""
    try:
        allowed = value in choices
    except TypeError:  # unhashable value against a set
        allowed = False
    if not allowed:
        listed = ", ".join(repr(choice) for choice in choices)
        raise ArgumentError(f"{name} must be one of {listed}; got {_describe(value)}")
    return value


def text(name: str, value: object) -> str:
    """``value`` if it is a ``str``."""
    if not isinstance(value, str):
        raise ArgumentError(f"{name} must be a str, got {type(value).__name__}: {_describe(value)}")
    return value


def token_ids(name: str, value: object):
    """``value`` (a list or tensor of token ids, possibly empty) as a 1-D ``torch.long`` tensor ``(L,)``."""
    import torch  # here, not at the top: the other checks serve code that never loads torch

    ids = torch.as_tensor(value)
    if ids.numel() == 0:
        ids = ids.long()  # an empty list would otherwise become a float tensor
    if ids.dim() != 1:
        raise ArgumentError(f"{name} must be a 1-D sequence of token ids, got shape {tuple(ids.shape)}")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ArgumentError(f"{name} must be integer token ids, got dtype {ids.dtype}")
    return ids.long()
