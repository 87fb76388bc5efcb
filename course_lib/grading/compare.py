"""Comparing a submission's answer with the reference answer, with a reason a student can act on.

Both answers arrive as decoded plain data (see ``codec``), so the comparison never calls a
method of an object the submission made: an object whose ``==`` always says yes cannot exist here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Number
from typing import Any

import numpy as np

from course_lib.grading.codec import TaggedArray


@dataclass(frozen=True)
class Tolerance:
    """|actual - expected| <= atol + rtol * |expected|, elementwise (as ``numpy.isclose``)."""

    rtol: float = 1e-7
    atol: float = 1e-9

    def describe(self) -> str:
        return f"rtol={self.rtol:g}, atol={self.atol:g}"


class Mismatch(Exception):
    """Raised inside the comparison with the first difference found, phrased for the student."""


RETURNED_NONE = "your function returned None — did you forget `return`?"


def compare(expected: Any, actual: Any, tolerance: Tolerance = Tolerance()) -> str | None:
    """None when ``actual`` matches ``expected``; otherwise a one-line reason.

    **The dtype rule**, the same for every item: a floating-point answer must be at least as
    precise as the reference's. Where the reference is float64, a float32 (or float16) answer is
    wrong whatever its values, and the reason says so; where the reference is float32, float32
    and float64 both pass.
    """
    if actual is None and expected is not None:
        return RETURNED_NONE
    try:
        _compare(expected, actual, tolerance, where="")
    except Mismatch as mismatch:
        return str(mismatch)
    return None


def _at(where: str) -> str:
    return f" at {where}" if where else ""


def _type_name(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, TaggedArray) and value.source == "torch":
        return "torch tensor"
    if isinstance(value, np.ndarray):
        return "NumPy array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Number):
        return "number"
    return type(value).__name__


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, Number) and not isinstance(value, (bool, np.bool_)) or (
        isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"
    )


def _compare(expected: Any, actual: Any, tol: Tolerance, where: str) -> None:
    if isinstance(expected, np.ndarray) and expected.ndim > 0:
        _compare_arrays(expected, actual, tol, where)
    elif isinstance(expected, (bool, np.bool_)):
        if not isinstance(actual, (bool, np.bool_)) or bool(actual) != bool(expected):
            raise Mismatch(f"expected {bool(expected)}{_at(where)}, got {_short(actual)}")
    elif _is_number(expected):
        _compare_numbers(expected, actual, tol, where)
    elif isinstance(expected, dict):
        _compare_dicts(expected, actual, tol, where)
    elif isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)) or (isinstance(actual, np.ndarray)):
            raise Mismatch(f"expected a {type(expected).__name__}{_at(where)}, got a {_type_name(actual)}")
        if len(actual) != len(expected):
            raise Mismatch(
                f"expected {len(expected)} items{_at(where)}, got {len(actual)}"
            )
        for index, (e, a) in enumerate(zip(expected, actual)):
            _compare(e, a, tol, f"{where}[{index}]")
    elif isinstance(expected, set):
        if not isinstance(actual, set):
            raise Mismatch(f"expected a set{_at(where)}, got a {_type_name(actual)}")
        missing, extra = expected - actual, actual - expected
        if missing or extra:
            raise Mismatch(_difference_message("set", where, missing, extra))
    else:
        if type(actual) is not type(expected) or actual != expected:
            raise Mismatch(f"expected {_short(expected)}{_at(where)}, got {_short(actual)}")


def _compare_numbers(expected: Any, actual: Any, tol: Tolerance, where: str) -> None:
    if not _is_number(actual):
        if actual is None:
            raise Mismatch(f"expected a number{_at(where)}, got None")
        raise Mismatch(f"expected a number{_at(where)}, got a {_type_name(actual)}: {_short(actual)}")
    _check_precision(_float_dtype(expected), _float_dtype(actual), where)
    e, a = float(expected), float(actual)
    if math.isnan(e) or math.isnan(a):
        if math.isnan(e) and math.isnan(a):
            return
        raise Mismatch(f"expected {e:.10g}{_at(where)}, got {a:.10g}")
    if math.isinf(e) or math.isinf(a):
        if e == a:
            return
        raise Mismatch(f"expected {e:.10g}{_at(where)}, got {a:.10g}")
    error = abs(a - e)
    if error > tol.atol + tol.rtol * abs(e):
        raise Mismatch(
            f"expected {e:.10g}{_at(where)}, got {a:.10g} (abs error {error:.3g}, tolerance {tol.describe()})"
        )


def _float_dtype(value: Any) -> np.dtype | None:
    """The floating-point dtype of a number: float64 for a Python float, None for integers."""
    if isinstance(value, float):
        return np.dtype(np.float64)
    dtype = getattr(value, "dtype", None)
    return dtype if dtype is not None and dtype.kind == "f" else None


def _check_precision(expected: np.dtype | None, actual: np.dtype | None, where: str) -> None:
    """The dtype rule (see :func:`compare`): an answer less precise than the reference is wrong."""
    if expected is None or actual is None or actual.itemsize >= expected.itemsize:
        return
    raise Mismatch(
        f"wrong dtype{_at(where)}: expected {expected}, got {actual}, which keeps only about "
        f"{np.finfo(actual).precision} significant digits; compute in {expected} throughout"
    )


def _difference_message(kind: str, where: str, missing: Any, extra: Any) -> str:
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} (e.g. {_short(sorted(missing, key=repr)[0])})")
    if extra:
        parts.append(f"unexpected {len(extra)} (e.g. {_short(sorted(extra, key=repr)[0])})")
    noun = "keys" if kind == "dict" else "items"
    return f"{noun} differ{_at(where)}: " + "; ".join(parts)


def _compare_dicts(expected: dict, actual: Any, tol: Tolerance, where: str) -> None:
    if not isinstance(actual, dict):
        raise Mismatch(f"expected a dict{_at(where)}, got a {_type_name(actual)}")
    missing = expected.keys() - actual.keys()
    extra = actual.keys() - expected.keys()
    if missing or extra:
        raise Mismatch(_difference_message("dict", where, missing, extra))
    for key in sorted(expected, key=repr):
        _compare(expected[key], actual[key], tol, f"{where}[{key!r}]")


def _compare_arrays(expected: np.ndarray, actual: Any, tol: Tolerance, where: str) -> None:
    expected_kind = _type_name(expected)
    if not isinstance(actual, np.ndarray):
        raise Mismatch(f"expected a {expected_kind}{_at(where)}, got a {_type_name(actual)}")
    if expected_kind != _type_name(actual):
        raise Mismatch(f"expected a {expected_kind}{_at(where)}, got a {_type_name(actual)}")
    expected_device, actual_device = getattr(expected, "device", None), getattr(actual, "device", None)
    if expected_device and actual_device and expected_device != actual_device:
        raise Mismatch(f"wrong device{_at(where)}: expected a tensor on {expected_device}, got one on {actual_device}")
    if actual.shape != expected.shape:
        raise Mismatch(f"wrong shape{_at(where)}: expected {tuple(expected.shape)}, got {tuple(actual.shape)}")
    if expected.dtype.kind in "fc" and actual.dtype.kind not in "fc":
        raise Mismatch(f"wrong dtype{_at(where)}: expected floating point ({expected.dtype}), got {actual.dtype}")
    if expected.dtype.kind in "iub" and actual.dtype.kind != expected.dtype.kind:
        raise Mismatch(f"wrong dtype{_at(where)}: expected {expected.dtype}, got {actual.dtype}")
    if expected.dtype.kind == "f" and actual.dtype.kind == "f":
        _check_precision(expected.dtype, actual.dtype, where)
    e = expected.astype(np.float64) if expected.dtype.kind != "c" else expected
    a = actual.astype(np.float64) if actual.dtype.kind != "c" else actual
    bad_nan = np.isnan(a) & ~np.isnan(e)
    if bad_nan.any():
        index = tuple(int(i) for i in np.argwhere(bad_nan)[0])
        raise Mismatch(f"NaN{_at(where)} at index {index} where {e[index]:.6g} was expected")
    close = np.isclose(a, e, rtol=tol.rtol, atol=tol.atol, equal_nan=True)
    if not close.all():
        with np.errstate(invalid="ignore"):
            error = np.where(close, 0.0, np.abs(a - e))
        index = tuple(int(i) for i in np.unravel_index(int(np.nanargmax(error)), error.shape))
        raise Mismatch(
            f"values differ{_at(where)}: {int((~close).sum())} of {close.size} elements outside tolerance "
            f"({tol.describe()}); max abs error {float(error[index]):.3g} at index {index} "
            f"(expected {e[index]:.6g}, got {a[index]:.6g})"
        )


# --------------------------------------------------------------------------- errors about shapes

# Words of NumPy's and PyTorch's messages when the shapes of two operands do not fit together.
_SHAPE_ERROR_WORDS = (
    "could not be broadcast", "mismatch in its core dimension", "not aligned",
    "shapes cannot be multiplied", "must match the size of tensor", "size mismatch",
    "inconsistent tensor size", "except for the concatenation axis must match",
    "must have the same shape", "cannot reshape array", "is invalid for input of size",
    "dimension out of range", "is out of bounds for array of dimension",
)
_SHAPE_ERROR_TYPES = ("ValueError", "RuntimeError", "AxisError")
_MAX_SHAPES_NAMED = 12


def is_shape_error(message: str) -> bool:
    """Whether an error message (as the worker words it: ``raised ValueError: ...``) says that
    the shapes of two operands were incompatible."""
    kind = message.removeprefix("raised ").split(":", 1)[0]
    lowered = message.lower()
    return kind in _SHAPE_ERROR_TYPES and any(words in lowered for words in _SHAPE_ERROR_WORDS)


def argument_shapes(kwargs: dict[str, Any]) -> list[str]:
    """``name (shape)`` for every array or tensor among the arguments, inside dicts and lists too."""
    found: list[str] = []

    def visit(name: str, value: Any) -> None:
        shape = getattr(value, "shape", None)
        if shape is not None and hasattr(value, "dtype"):
            found.append(f"{name} {tuple(int(n) for n in shape)}")
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(f"{name}[{key!r}]", item)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                visit(f"{name}[{index}]", item)

    for name, value in kwargs.items():
        visit(name, value)
    return found


def shape_note(message: str, kwargs: dict[str, Any]) -> str:
    """One sentence naming the shapes that went into the student's function, when ``message``
    reports incompatible shapes inside it (NumPy's gufunc signature means little to a student);
    otherwise ''. ``check`` and the grader append it to the error's reason."""
    shapes = argument_shapes(kwargs)
    if not shapes or not is_shape_error(message):
        return ""
    listed = ", ".join(shapes[:_MAX_SHAPES_NAMED]) + (", ..." if len(shapes) > _MAX_SHAPES_NAMED else "")
    return (f". Two shapes did not fit together inside your function; it was called with {listed}: "
            "check which axis each product and sum runs over")
