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
This stops ordinary use, aliases and re-imports; code that digs the original object out of the
interpreter's memory is not stopped, and is plain to see on review.
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
        replaced = False
        for module in list(sys.modules.values()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for key, value in list(namespace.items()):
                if value is original:
                    namespace[key] = guard
                    replaced = True
        if not replaced or getattr(owner, attribute) is not guard:
            setattr(owner, attribute, guard)

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
        return True

    def _guard(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        check = self._check

        def guard(*args: Any, **kwargs: Any) -> Any:
            check(name)
            return original(*args, **kwargs)

        guard.__name__ = getattr(original, "__name__", "guard")
        guard.__qualname__ = getattr(original, "__qualname__", "guard")
        guard.__doc__ = getattr(original, "__doc__", None)
        return guard


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
