"""Evidence of tampering with the grader's code inside the submission's own process.

The notebook's cells run in the same Python process as the grading code that later calls the
student's functions, so a cell can replace that code (``worker.run_item = ...``), switch a
forbidden-API guard off, or remove the import blocker. Python cannot prevent this against
determined code. What the worker does instead: before the first cell it takes a ``Snapshot`` of
the grading modules' functions and classes; before each item it puts back whatever was replaced
(so an ordinary patch has no effect) and reports each change as evidence, which the grader shows
to the instructor in the feedback and the gradebook rather than grading the submission as clean.
The import blocker is only reported, not put back: the copy of course_lib without the reference
stands whether the blocker is there or not.
"""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

GRADING_MODULES = (
    "course_lib.grading.worker", "course_lib.grading.execution", "course_lib.grading.forbidden",
    "course_lib.grading.codec", "course_lib.grading.cases", "course_lib.grading.records",
    "course_lib.grading.integrity",
)


def _is_code(value: Any) -> bool:
    return isinstance(value, (types.FunctionType, type, types.BuiltinFunctionType))


@dataclass
class Snapshot:
    """The grading modules' functions and classes, and the objects the worker relies on."""

    modules: dict[str, tuple[types.ModuleType, dict[str, Any]]] = field(default_factory=dict)
    codes: dict[int, Any] = field(default_factory=dict)          # id(function) -> its __code__
    methods: dict[type, dict[str, Any]] = field(default_factory=dict)  # the grading classes' own functions
    objects: dict[str, tuple[Any, dict[str, Any]]] = field(default_factory=dict)  # name -> (obj, its __dict__)
    meta_path_first: Any = None

    @classmethod
    def take(cls, objects: dict[str, Any], meta_path_first: Any = None) -> "Snapshot":
        snapshot = cls(meta_path_first=meta_path_first)
        for name in GRADING_MODULES:
            module = sys.modules.get(name)
            if module is None:
                continue
            members = {key: value for key, value in vars(module).items() if _is_code(value)}
            snapshot.modules[name] = (module, members)
            for value in members.values():
                if isinstance(value, types.FunctionType):
                    snapshot.codes[id(value)] = value.__code__
                elif isinstance(value, type) and value.__module__ == name:
                    own = {k: v for k, v in vars(value).items() if isinstance(v, types.FunctionType)}
                    snapshot.methods[value] = own
                    for method in own.values():
                        snapshot.codes[id(method)] = method.__code__
        for name, obj in objects.items():
            snapshot.objects[name] = (obj, dict(vars(obj)))
        return snapshot

    def restore(self) -> list[str]:
        """Put back every replaced function, class, method and object attribute; return what had
        changed, one line each, in the grader's words (nothing the submission chose)."""
        evidence = []
        for name, (module, members) in self.modules.items():
            namespace = vars(module)
            for key, original in members.items():
                if namespace.get(key) is not original:
                    evidence.append(f"{name}.{key} was replaced")
                    namespace[key] = original
                if isinstance(original, types.FunctionType) and original.__code__ is not self.codes.get(id(original)):
                    evidence.append(f"the code of {name}.{key} was changed")
                    original.__code__ = self.codes[id(original)]
                if original in self.methods:
                    evidence += self._restore_methods(name, original)
        for name, (obj, attributes) in self.objects.items():
            current = vars(obj)
            for key, original in attributes.items():
                if current.get(key) is not original:
                    evidence.append(f"{name}.{key} was changed")
                    setattr(obj, key, original)
            for key in [k for k in current if k not in attributes]:
                evidence.append(f"{name}.{key} was added")
                delattr(obj, key)
        if self.meta_path_first is not None and (not sys.meta_path or sys.meta_path[0] is not self.meta_path_first):
            # reported, not put back: the copy of course_lib without the reference still stands
            evidence.append("the import blocker was moved or removed from sys.meta_path")
        return evidence

    def _restore_methods(self, module: str, cls: type) -> list[str]:
        evidence = []
        for key, original in self.methods[cls].items():
            if vars(cls).get(key) is not original:
                evidence.append(f"the method {module}.{cls.__name__}.{key} was replaced")
                setattr(cls, key, original)
            if original.__code__ is not self.codes[id(original)]:
                evidence.append(f"the code of {module}.{cls.__name__}.{key} was changed")
                original.__code__ = self.codes[id(original)]
        return evidence

