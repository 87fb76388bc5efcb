"""Plain-data transport between a grading worker and the grader.

Only JSON crosses the process boundary, never pickles: a submission's return value is turned
into tagged JSON here, and turned back into Python/NumPy values on the other side. Every
container is tagged, so a student's dict that happens to contain a key named like a tag cannot
be mistaken for one. Arrays travel as raw little-endian bytes (base64) with their dtype and
shape; only numeric and boolean dtypes are accepted, so decoding never runs code.
"""
from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

MAX_DEPTH = 40
MAX_ELEMENTS = 2_000_000  # numbers, strings and container entries, summed over the whole value
MAX_STRING = 100_000
_ARRAY_KINDS = "biufc"  # bool, int, uint, float, complex


class CodecError(ValueError):
    """A value that cannot be sent to the grader (an unsupported type, or too large)."""


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_ELEMENTS

    def spend(self, n: int = 1) -> None:
        self.left -= n
        if self.left < 0:
            raise CodecError(f"the value is too large to grade (more than {MAX_ELEMENTS:,} elements)")


def encode(value: Any) -> Any:
    """Turn ``value`` into tagged JSON-compatible data, or raise CodecError naming the problem."""
    return _encode(value, 0, _Budget())


def _encode(value: Any, depth: int, budget: _Budget) -> Any:
    if depth > MAX_DEPTH:
        raise CodecError(f"the value is nested more than {MAX_DEPTH} levels deep")
    budget.spend()
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise CodecError(f"a string of {len(value):,} characters is too long to grade")
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else {"t": "bigint", "v": str(value)}
    if isinstance(value, float):
        # repr(float(...)): NumPy 2 spells np.float64(inf) "np.float64(inf)", a float subclass
        return float(value) if math.isfinite(value) else {"t": "float", "v": repr(float(value))}
    if isinstance(value, np.generic):
        if value.dtype.kind not in _ARRAY_KINDS:
            raise CodecError(f"a NumPy scalar of dtype {value.dtype} cannot be graded")
        return {"t": "scalar", "dtype": value.dtype.str, "v": _encode(value.item(), depth + 1, budget)}
    if isinstance(value, np.ndarray):
        return _encode_array(value, "numpy", budget)
    if _is_torch_tensor(value):
        device = str(value.device)
        array = value.detach().cpu().resolve_conj().resolve_neg().numpy()
        encoded = _encode_array(array, "torch", budget)
        encoded["device"] = device
        return encoded
    if isinstance(value, tuple):
        return {"t": "tuple", "v": [_encode(item, depth + 1, budget) for item in value]}
    if isinstance(value, list):
        return {"t": "list", "v": [_encode(item, depth + 1, budget) for item in value]}
    if isinstance(value, (set, frozenset)):
        items = [_encode(item, depth + 1, budget) for item in value]
        return {"t": "set", "v": items}
    if isinstance(value, dict):
        pairs = [[_encode(k, depth + 1, budget), _encode(v, depth + 1, budget)] for k, v in value.items()]
        return {"t": "dict", "v": pairs}
    raise CodecError(
        f"a value of type {type(value).__name__} cannot be graded; return numbers, strings, lists, "
        "tuples, dicts, NumPy arrays or torch tensors"
    )


def _is_torch_tensor(value: Any) -> bool:
    cls = type(value)
    return cls.__module__.startswith("torch") and cls.__name__ in {"Tensor", "Parameter"}


def _encode_array(array: np.ndarray, source: str, budget: _Budget) -> dict:
    if array.dtype.kind not in _ARRAY_KINDS:
        raise CodecError(f"an array of dtype {array.dtype} cannot be graded; use a numeric or boolean dtype")
    budget.spend(int(array.size))
    little = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
    return {
        "t": "array",
        "source": source,
        "dtype": little.dtype.str,
        "shape": list(array.shape),
        "data": base64.b64encode(little.tobytes()).decode("ascii"),
    }


def decode(data: Any) -> Any:
    """Inverse of :func:`encode`. Raises CodecError on anything that is not well-formed."""
    return _decode(data, 0)


def _decode(data: Any, depth: int) -> Any:
    if depth > MAX_DEPTH + 2:
        raise CodecError("malformed value: nested too deeply")
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if not isinstance(data, dict) or "t" not in data:
        raise CodecError(f"malformed value of JSON type {type(data).__name__}")
    tag = data["t"]
    if tag == "float":
        text = data.get("v")
        if text not in ("nan", "inf", "-inf"):
            raise CodecError(f"malformed float {text!r}")
        return float(text)
    if tag == "bigint":
        return int(data["v"])
    if tag == "scalar":
        dtype = _checked_dtype(data.get("dtype"))
        return dtype.type(_decode(data.get("v"), depth + 1))
    if tag in ("list", "tuple", "set"):
        items = data.get("v")
        if not isinstance(items, list):
            raise CodecError(f"malformed {tag}")
        decoded = [_decode(item, depth + 1) for item in items]
        if tag == "list":
            return decoded
        if tag == "tuple":
            return tuple(decoded)
        return set(_hashable(item) for item in decoded)
    if tag == "dict":
        pairs = data.get("v")
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise CodecError("malformed dict")
        return {_hashable(_decode(k, depth + 1)): _decode(v, depth + 1) for k, v in pairs}
    if tag == "array":
        return _decode_array(data)
    raise CodecError(f"unknown tag {tag!r}")


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError as error:
        raise CodecError(f"a dict key or set item of type {type(value).__name__} is not hashable") from error
    return value


def _checked_dtype(text: Any) -> np.dtype:
    try:
        dtype = np.dtype(text)
    except TypeError as error:
        raise CodecError(f"malformed dtype {text!r}") from error
    if dtype.kind not in _ARRAY_KINDS or dtype.hasobject:
        raise CodecError(f"dtype {dtype} is not allowed")
    return dtype


def _decode_array(data: dict) -> np.ndarray:
    dtype = _checked_dtype(data.get("dtype"))
    shape = data.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise CodecError("malformed array shape")
    raw = base64.b64decode(data.get("data", ""), validate=True)
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise CodecError(f"array data has {len(raw)} bytes, expected {expected}")
    array = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    return TaggedArray.wrap(array, data.get("source", "numpy"), data.get("device"))


class TaggedArray(np.ndarray):
    """A NumPy array that remembers whether it was a torch tensor (and on which device) when sent."""

    source: str = "numpy"
    device: str | None = None

    @classmethod
    def wrap(cls, array: np.ndarray, source: str, device: str | None) -> "TaggedArray":
        tagged = array.view(cls)
        tagged.source = source if source in ("numpy", "torch") else "numpy"
        tagged.device = device if isinstance(device, str) else None
        return tagged

    def __array_finalize__(self, obj: Any) -> None:
        self.source = getattr(obj, "source", "numpy")
        self.device = getattr(obj, "device", None)


def to_native(value: Any) -> Any:
    """A decoded value as the code that receives it expects: arrays sent as torch tensors become
    torch tensors again (on the CPU), the others plain NumPy arrays. Used for the case inputs a
    grading worker hands to the student's function."""
    if isinstance(value, TaggedArray):
        array = np.asarray(value).view(np.ndarray)
        if value.source == "torch":
            import torch

            return torch.from_numpy(array.copy())
        return array
    if isinstance(value, list):
        return [to_native(item) for item in value]
    if isinstance(value, tuple):
        return tuple(to_native(item) for item in value)
    if isinstance(value, dict):
        return {key: to_native(item) for key, item in value.items()}
    return value
