"""Which modules of a package import which, read from the source with ``ast`` (nothing is run).

The grading worker must not be able to import the graded concept's reference, nor any module that
imports it: when ``gpt.py`` imports ``transformer.py``, grading the Transformer blocks both. So the
modules blocked for an assignment are its reference modules and everything in the package that
imports them, directly or through others (``importers_of``). Every import form counts, wherever it
stands (inside a function too): ``import a.b``, ``from a import b`` (``b`` a module or not),
``from . import b``, ``from ..a import b``.
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent   # the course_lib folder
CASE_SETS_PACKAGE = "course_lib.grading.assignments"


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> its file, for every module of the package in ``package_dir``."""
    package_dir = Path(package_dir)
    root = package_dir.name
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).with_suffix("").parts
        if any(part.startswith(".") or part == "__pycache__" for part in parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((root, *parts))] = path
    return modules


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` (its source at ``path``) imports."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return set()
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found |= _with_parents(alias.name, known)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(name, is_package, node.module, node.level)
            if base is None:
                continue
            found |= _with_parents(base, known)
            for alias in node.names:  # `from a import b`: b may be a submodule
                if f"{base}.{alias.name}" in known:
                    found.add(f"{base}.{alias.name}")
    found.discard(name)
    return found


def _absolute(name: str, is_package: bool, module: str | None, level: int) -> str | None:
    if level == 0:
        return module
    package = name.split(".") if is_package else name.split(".")[:-1]
    if level - 1 > len(package) - 1:
        return None
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _with_parents(dotted: str, known: set[str]) -> set[str]:
    """``a.b.c`` imports ``a.b.c`` (and runs ``a`` and ``a.b``, which are not what it uses)."""
    return {dotted} if dotted in known else set()


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    files = module_files(package_dir)
    known = set(files)
    return {name: imports_of(name, path, known) for name, path in files.items()}


def importers_of(targets: list[str], package_dir: Path) -> list[str]:
    """``targets`` and every module of the package that imports one of them, transitively; a
    target that is a package brings its submodules along. Sorted, targets first."""
    graph = import_graph(package_dir)

    def inside(module: str, target: str) -> bool:
        return module == target or module.startswith(target + ".")

    blocked = {m for m in graph for t in targets if inside(m, t)}
    changed = True
    while changed:
        changed = False
        for module, imported in graph.items():
            if module not in blocked and imported & blocked:
                blocked.add(module)
                changed = True
    return list(dict.fromkeys([*targets, *sorted(blocked - set(targets))]))


@functools.lru_cache(maxsize=None)
def _blocked(reference_modules: tuple[str, ...]) -> tuple[str, ...]:
    return (*importers_of(list(reference_modules), PACKAGE_DIR), CASE_SETS_PACKAGE)


def blocked_modules(reference_modules: tuple[str, ...] | list[str]) -> list[str]:
    """What a student's code may not import while an assignment with these reference modules is
    graded (or checked): the references, course_lib's modules that import them, the case sets."""
    return list(_blocked(tuple(reference_modules)))
