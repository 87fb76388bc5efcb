"""Forbidden APIs: library calls that would do an exercise for the student.

A case set names them (``forbidden=("torch.nn.LSTM",)``); the grading worker replaces each one, before
the notebook's cells run, with a guard that behaves exactly like the original until it is *armed*.
The worker arms the guards of an item only while the student's function runs on that item's cases, so
the same API stays usable in other items and in the notebook's own cells. An armed guard records the
call and raises ``ForbiddenCall``, a BaseException, so that ``except Exception`` cannot hide it; the
recorded call fails the case even if the submission swallows the exception some other way.

Guards are installed where the notebook will find the API: for a class, its ``__init__`` is wrapped (so
every alias and subclass is caught); for anything else, every module attribute that holds it is
replaced (so ``from torch.nn import functional`` and ``torch.nn.functional`` both see the guard).
A function of PyTorch's operator table is guarded at its functional entry points too: ``torch.X``,
``torch._VF.X`` (what ``torch.nn`` layers call) and ``torch.ops.aten.X``.

This stops ordinary use, aliases and re-imports. It cannot stop code that digs the original object
out of the interpreter's memory (``torch._C._VariableFunctions.X`` is read-only and stays unguarded),
nor code that switches a guard off: Python gives a submission the same power over these objects as
the grader's. What the worker does about that: it checks the guards after every case and before
every item (``Guards.repair``: a guard removed, replaced, disarmed or rewired during a case fails
that case, and any change is put back and reported to the instructor as evidence of tampering).
"""
from __future__ import annotations

import contextlib
import importlib
import sys
from typing import Any, Callable, Iterator


class ForbiddenCall(BaseException):
    """Raised in the student's code when it calls an API its exercise forbids."""


class Guards:
    def __init__(self) -> None:
        self._armed: frozenset[str] = frozenset()
        self.calls: list[str] = []
        # where each guard was put, to check and repair: (owner, attribute, guard) and (class, __init__)
        self._placed: list[tuple[Any, str, Callable[..., Any]]] = []
        self._closures: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def install(self, names: list[str]) -> dict[str, str]:
        """Guard each dotted name; return {name: why it could not be guarded} for the others."""
        problems = {}
        for name in dict.fromkeys(names):
            try:
                self._install(name)
            except (ImportError, AttributeError, TypeError, ValueError) as error:
                problems[name] = f"{type(error).__name__}: {error}"
        return problems

    @contextlib.contextmanager
    def armed(self, names: list[str] | tuple[str, ...]) -> Iterator[None]:
        previous, self._armed = self._armed, frozenset(names)
        try:
            yield
        finally:
            self._armed = previous

    def repair(self) -> list[str]:
        """Check that every guard is where it was put, wired as it was made; put back what is not.
        Returns what had changed (empty when nothing was touched)."""
        evidence = []
        for owner, attribute, guard in self._placed:
            holder = vars(owner) if isinstance(owner, type) else getattr(owner, "__dict__", {})
            if holder.get(attribute) is not guard:
                evidence.append(f"the guard of {_describe(owner)}.{attribute} was removed or replaced")
                try:
                    setattr(owner, attribute, guard)
                except (AttributeError, TypeError):
                    pass
        for function, cells in self._closures:
            current = tuple(cell.cell_contents for cell in function.__closure__ or ())
            if any(a is not b for a, b in zip(current, cells)) or len(current) != len(cells):
                evidence.append(f"the guard {function.__qualname__} was rewired")
                for cell, original in zip(function.__closure__ or (), cells):
                    cell.cell_contents = original
        return evidence

    def _check(self, name: str) -> None:
        if name in self._armed:
            self.calls.append(name)
            raise ForbiddenCall(f"forbidden API: {name}")

    def _install(self, name: str) -> None:
        owner, attribute = resolve_owner(name)
        original = getattr(owner, attribute)
        if isinstance(original, type):
            if self._wrap_init(name, original):
                return
        guard = self._guard(name, original)
        for module in list(sys.modules.values()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for key, value in list(namespace.items()):
                if value is original:
                    namespace[key] = guard
                    self._placed.append((module, key, guard))
        for entry_owner, entry in [(owner, attribute), *functional_entry_points(original)]:
            current = getattr(entry_owner, entry, None)
            if current is not guard:
                # torch's own code reads an aten operator's overloads (aten.logsumexp.default): keep them
                for overload in getattr(current, "overloads", lambda: [])():
                    setattr(guard, overload, getattr(current, overload))
                setattr(entry_owner, entry, guard)
                self._placed.append((entry_owner, entry, guard))

    def _wrap_init(self, name: str, cls: type) -> bool:
        original_init = cls.__init__
        check = self._check

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            check(name)
            original_init(self, *args, **kwargs)

        try:
            cls.__init__ = __init__
        except TypeError:  # a built-in type: guard the attribute that names it instead
            return False
        self._placed.append((cls, "__init__", __init__))
        self._closures.append((__init__, tuple(c.cell_contents for c in __init__.__closure__)))
        return True

    def _guard(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        check = self._check

        def guard(*args: Any, **kwargs: Any) -> Any:
            check(name)
            return original(*args, **kwargs)

        guard.__name__ = getattr(original, "__name__", "guard")
        guard.__qualname__ = getattr(original, "__qualname__", "guard")
        guard.__doc__ = getattr(original, "__doc__", None)
        self._closures.append((guard, tuple(c.cell_contents for c in guard.__closure__)))
        return guard


def functional_entry_points(original: Any) -> list[tuple[Any, str]]:
    """Other places a PyTorch operator is called from: ``torch._VF.X`` (used by ``torch.nn``'s
    layers) and ``torch.ops.aten.X``, for an ``original`` of torch's operator table."""
    torch = sys.modules.get("torch")
    name = getattr(original, "__name__", None)
    if torch is None or not isinstance(name, str) or not name.isidentifier():
        return []
    table = getattr(getattr(torch, "_C", None), "_VariableFunctions", None)
    if table is None or getattr(table, name, None) is not original:
        return []
    entries = []
    vf = sys.modules.get("torch._VF") or getattr(torch, "_VF", None)
    if vf is not None:
        entries.append((vf, name))
    try:
        getattr(torch.ops.aten, name)
        entries.append((torch.ops.aten, name))
    except (AttributeError, RuntimeError):
        pass
    return entries


def _describe(owner: Any) -> str:
    return getattr(owner, "__name__", type(owner).__name__)


def resolve_owner(name: str) -> tuple[Any, str]:
    """(object holding the attribute, attribute name) for a dotted name such as ``torch.nn.LSTM``:
    the longest importable module prefix, then attributes."""
    parts = name.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise ValueError(f"a forbidden API is a dotted name like 'torch.nn.LSTM', got {name!r}")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:-1]:
            owner = getattr(owner, part)
        getattr(owner, parts[-1])  # AttributeError now rather than later
        return owner, parts[-1]
    raise ImportError(f"no module found for {name!r}")


GUARDS = Guards()
