"""Saving and loading model weights as safetensors files.

A safetensors file is a JSON header (names, dtypes, shapes, byte offsets, and free-form string
metadata) followed by the raw bytes of the tensors. Unlike ``torch.save``, which writes a
pickle, loading one cannot run code, so a checkpoint shared by anyone is safe to open.

Metadata (training configuration, step, vocabulary, ...) is stored in the header, each value
as a JSON string, and comes back as the Python values that were saved.

Models that are not ``nn.Module``s (an n-gram model's counts) are written the same way by
:func:`save_arrays` and read back by :func:`load_arrays`: named arrays and JSON metadata, no pickle.

Tied weights (one parameter reachable under two names, e.g. GPT's token embedding and output
layer) are written once, under the first name in the state dict; loading fills every alias.

A run that should be able to stop and go on saves more than weights: :func:`save_training_state`
adds the optimizer's state (AdamW's moment estimates and step counts) and any further tensors
(random generators' states, the best weights so far), and :func:`load_training_state` puts them
back, so that the resumed run continues exactly as the uninterrupted one would have.
"""
from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

__all__ = ["load_arrays", "load_checkpoint", "load_training_state", "read_checkpoint_metadata", "save_arrays",
           "save_checkpoint", "save_training_state"]


def _alias_key(t: torch.Tensor) -> tuple:
    """Two state-dict entries with the same key are the same tensor (tied weights)."""
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)


def _tensors_to_write(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with each tied tensor once, under its first name, on the CPU."""
    tensors: dict[str, torch.Tensor] = {}
    seen: set[tuple] = set()
    storages_used: set[int] = set()
    for name, t in model.state_dict().items():
        key = _alias_key(t)
        if key in seen:
            continue
        seen.add(key)
        ptr = t.untyped_storage().data_ptr()
        # safetensors refuses tensors that overlap in memory; a partial view of a stored tensor
        # is written as its own copy (same values, so loading stays consistent).
        shares_memory = ptr in storages_used and t.numel() > 0
        storages_used.add(ptr)
        tensors[name] = t.detach().to("cpu").clone() if shares_memory else t.detach().to("cpu").contiguous()
    return tensors


def save_checkpoint(model: nn.Module, path: str | PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s state dict to a safetensors file at ``path`` (parent folders are created).

    Args:
        model: any ``nn.Module``.
        path: the file to write, conventionally ending in ``.safetensors``.
        metadata: optional ``{name: value}``; every value must be JSON-serialisable
            (numbers, strings, lists, dicts, booleans, None).

    Returns:
        The path written.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return _write(_tensors_to_write(model), path, metadata)


def save_arrays(arrays: dict[str, Any], path: str | PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write named arrays (NumPy arrays or tensors) and JSON ``metadata`` to a safetensors file."""
    tensors = {name: torch.as_tensor(array).detach().to("cpu").contiguous() for name, array in arrays.items()}
    return _write(tensors, path, metadata)


def load_arrays(path: str | PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The arrays and the metadata of a file written by :func:`save_arrays`."""
    path = _open_checked(path)
    try:
        return load_file(str(path)), read_checkpoint_metadata(path)
    except SafetensorError as err:
        raise ValueError(f"{str(path)!r} is not a readable safetensors file: {err}") from err


def _write(tensors: dict[str, torch.Tensor], path: str | PathLike, metadata: dict[str, Any] | None) -> Path:
    header: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str):
            raise TypeError(f"metadata keys must be strings, got {key!r}")
        try:
            header[key] = json.dumps(value)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"metadata[{key!r}] of type {type(value).__name__} cannot be written as JSON; "
                "use numbers, strings, lists, dicts, booleans or None (e.g. dataclasses.asdict(config))"
            ) from err
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=header)
    return path


def _decode_metadata(header: dict[str, str] | None) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for key, text in (header or {}).items():
        try:
            decoded[key] = json.loads(text)
        except json.JSONDecodeError:
            decoded[key] = text  # written by another tool: keep the plain string
    return decoded


def _open_checked(path: str | PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}; check the path (save_checkpoint writes one)")
    return path


def read_checkpoint_metadata(path: str | PathLike) -> dict[str, Any]:
    """The metadata stored in a checkpoint, without loading its tensors."""
    path = _open_checked(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return _decode_metadata(f.metadata())
    except SafetensorError as err:
        raise ValueError(f"{str(path)!r} is not a readable safetensors file: {err}") from err


def load_checkpoint(model: nn.Module, path: str | PathLike) -> dict[str, Any]:
    """Load the weights saved at ``path`` into ``model`` (in place) and return the metadata.

    The checkpoint must match the model exactly: every tensor present, no extra tensor, every
    shape equal. Otherwise a ``ValueError`` lists the missing and unexpected names and the
    shape mismatches, and the model is left untouched.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    path = _open_checked(path)
    try:
        stored = load_file(str(path))
        metadata = read_checkpoint_metadata(path)
    except SafetensorError as err:
        raise ValueError(
            f"{str(path)!r} is not a readable safetensors file ({err}); checkpoints are written by save_checkpoint"
        ) from err

    _load_state(model, stored, path)
    return metadata


def _load_state(model: nn.Module, stored: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    # Tied weights: a name is satisfied when the file holds it or any name it shares memory with.
    alias_groups: dict[tuple, set[str]] = {}
    for k, t in expected.items():
        alias_groups.setdefault(_alias_key(t), set()).add(k)
    missing = [k for k, t in expected.items() if not alias_groups[_alias_key(t)] & stored.keys()]
    unexpected = [k for k in stored if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(stored[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in stored
        if k in expected and stored[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"missing from the checkpoint: {missing}")
        if unexpected:
            problems.append(f"in the checkpoint but not in the model: {unexpected}")
        if mismatched:
            problems.append("shape mismatches: " + "; ".join(mismatched))
        raise ValueError(
            f"checkpoint {str(path)!r} does not match {type(model).__name__}: "
            + " | ".join(problems)
            + ". Build the model with the same configuration as the one that was saved."
        )
    # Aliases absent from the file are filled through the tensor they share memory with.
    model.load_state_dict(stored, strict=False)


# ---------------------------------------------------------------------------------------------
# Training state: weights, optimizer, and whatever else a resumed run needs
# ---------------------------------------------------------------------------------------------
_OPTIMIZER = "optimizer."  # optimizer.<parameter index>.<name>, e.g. optimizer.3.exp_avg
_EXTRA = "extra."
_OPTIMIZER_METADATA = "optimizer"  # the optimizer's settings and its state's plain numbers


def save_training_state(path: str | PathLike, model: nn.Module, optimizer: torch.optim.Optimizer,
                        metadata: dict[str, Any] | None = None,
                        tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write everything needed to resume training to one safetensors file: ``model``'s weights
    (as :func:`save_checkpoint`), ``optimizer``'s state (its tensors under
    ``optimizer.<parameter index>.<name>``, its settings in the metadata), ``tensors`` under
    ``extra.<name>``, and the JSON ``metadata``. :func:`load_training_state` reads it back."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    metadata = dict(metadata or {})
    if _OPTIMIZER_METADATA in metadata:
        raise ValueError(f"metadata[{_OPTIMIZER_METADATA!r}] is where the optimizer's settings go; use another name")
    written = _tensors_to_write(model)
    state = optimizer.state_dict()
    plain: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                written[f"{_OPTIMIZER}{index}.{name}"] = value.detach().to("cpu").contiguous()
            else:
                plain.setdefault(str(index), {})[name] = value
    for name, tensor in (tensors or {}).items():
        written[_EXTRA + name] = tensor.detach().to("cpu").contiguous()
    metadata[_OPTIMIZER_METADATA] = {"param_groups": state["param_groups"], "plain_state": plain}
    return _write(written, path, metadata)


def load_training_state(path: str | PathLike, model: nn.Module,
                        optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Load a file written by :func:`save_training_state` into ``model`` and ``optimizer`` (built
    as for the saved run) and return ``(metadata, tensors)``, the extra tensors by their names."""
    path = _open_checked(path)
    try:
        stored = load_file(str(path))
        metadata = read_checkpoint_metadata(path)
    except SafetensorError as err:
        raise ValueError(f"{str(path)!r} is not a readable safetensors file: {err}") from err
    settings = metadata.pop(_OPTIMIZER_METADATA, None)
    if settings is None:
        raise ValueError(f"{str(path)!r} holds no optimizer state: it was written by save_checkpoint, not "
                         "save_training_state, so training cannot resume from it (load_checkpoint loads its weights)")
    weights = {k: v for k, v in stored.items() if not k.startswith((_OPTIMIZER, _EXTRA))}
    _load_state(model, weights, path)
    optimizer_state: dict[int, dict[str, Any]] = {}
    for key, value in stored.items():
        if key.startswith(_OPTIMIZER):
            index, name = key[len(_OPTIMIZER):].split(".", 1)
            optimizer_state.setdefault(int(index), {})[name] = value
    for index, values in settings["plain_state"].items():
        optimizer_state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": optimizer_state, "param_groups": settings["param_groups"]})
    extra = {k[len(_EXTRA):]: v for k, v in stored.items() if k.startswith(_EXTRA)}
    return metadata, extra
