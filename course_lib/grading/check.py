"""``check(name, fn)``: instant feedback in the student's own notebook.

It runs the same case sets as ``course grade``, in the student's kernel, under the same rules, so
that a pass here is a pass at grading:

* the item's forbidden APIs are guarded while the function runs (a call fails the case);
* the modules the grader blocks (the graded concept's reference, every course_lib module that
  imports it, the case sets) cannot be imported while the function runs, and a function that uses
  one already imported in the kernel fails with the reason;
* after the first case that runs out of time, the item's other cases are skipped with one message.

It never raises into the notebook: whatever goes wrong is reported as text.
"""
from __future__ import annotations

import contextlib
import sys
import types
from typing import Any, Callable, Iterator

from course_lib.grading.cases import CaseSet, Outcome, find_case_set, judge, load_assignment
from course_lib.grading.execution import call_case
from course_lib.grading.forbidden import GUARDS
from course_lib.grading.import_graph import blocked_modules
from course_lib.grading.report import format_item

CHECK_TIMEOUT_SECONDS = 20.0
_guarded: set[str] = set()   # forbidden APIs already guarded in this kernel


def check(name: str, function: Callable[..., Any]) -> None:
    """Run the graded item ``name`` (e.g. ``"ch01.count_ngrams"``) against ``function`` and print the result."""
    try:
        print(_check(name, function))
    except KeyboardInterrupt:
        raise
    except Exception as error:  # a checker bug must not look like the student's mistake
        print(f"check({name!r}) could not run: {type(error).__name__}: {error}. "
              "This is a problem in the course's checker, not in your code; please report it.")


def _check(name: str, function: Callable[..., Any]) -> str:
    try:
        case_set = find_case_set(name)
    except KeyError as error:
        return f"check: {error.args[0]}"
    if not callable(function):
        return (f"check({name!r}, ...): the second argument must be your function "
                f"`{case_set.function}`, got a {type(function).__name__}")
    cases = case_set.cases()
    blocked = blocked_modules(load_assignment(case_set.assignment).reference_modules)
    own_module = getattr(function, "__module__", None)
    if isinstance(own_module, str) and any(own_module == b or own_module.startswith(b + ".") for b in blocked):
        # the course's own implementation (the case set's self-test): it passes here, and a note says
        # that a notebook cannot hand it in
        outcomes = run_cases(function, case_set, [case.kwargs for case in cases], [])
        return (format_item(judge(case_set, cases, outcomes)) + f"\nnote: this is {own_module}'s own function, "
                "which cannot be imported when the assignment is graded: write yours")
    used = uses_blocked_module(function, blocked)
    if used:
        outcome = Outcome("error", message=f"your function uses {used}, which cannot be imported when this "
                                           "assignment is graded: the exercise asks you to write that code yourself")
        return format_item(judge(case_set, cases, [outcome] * len(cases)))
    outcomes = run_cases(function, case_set, [case.kwargs for case in cases], blocked)
    return format_item(judge(case_set, cases, outcomes))


def run_cases(function: Callable[..., Any], case_set: CaseSet, inputs: list[dict], blocked: list[str]) -> list[Outcome]:
    """Call ``function`` on each input under the grader's rules; the outcomes, one per input."""
    for api in case_set.forbidden:
        if api not in _guarded and not GUARDS.install([api]):
            _guarded.add(api)
    outcomes: list[Outcome] = []
    for kwargs in inputs:
        calls_before = len(GUARDS.calls)
        with modules_hidden(blocked):
            outcome = call_case(function, kwargs, timeout=CHECK_TIMEOUT_SECONDS,
                                around=lambda: GUARDS.armed(case_set.forbidden))
        if len(GUARDS.calls) > calls_before:  # a forbidden call counts even if its exception was swallowed
            outcome = Outcome("forbidden", message=f"forbidden API: {GUARDS.calls[calls_before]}")
        outcomes.append(outcome)
        left = len(inputs) - len(outcomes)
        if outcome.status == "not_implemented":  # no point calling a stub again
            outcomes.extend([outcome] * left)
            break
        if outcome.status == "timeout" and left:
            skipped = Outcome("timeout", message="not run: an earlier case of this item ran out of time")
            outcomes.extend([skipped] * left)
            break
    return outcomes


def uses_blocked_module(function: Callable[..., Any], blocked: list[str]) -> str | None:
    """The blocked module a function reaches through its globals or closure (a module, or anything
    defined in one), named as the grader would refuse it; None when it reaches none."""
    seen: set[int] = set()

    def blocked_name(value: Any) -> str | None:
        module = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        if isinstance(module, str) and any(module == b or module.startswith(b + ".") for b in blocked):
            return module
        return None

    def visit(fn: Any) -> str | None:
        code = getattr(fn, "__code__", None)
        if code is None or id(fn) in seen:
            return None
        seen.add(id(fn))
        namespace = getattr(fn, "__globals__", {})
        values = [namespace[n] for n in _names(code) if n in namespace]
        values += [cell.cell_contents for cell in (fn.__closure__ or ()) if _has_contents(cell)]
        for value in values:
            found = blocked_name(value) or (visit(value) if isinstance(value, types.FunctionType) else None)
            if found:
                return found
        return None

    return visit(function)


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _names(constant)
    return names


def _has_contents(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


class _Blocker:
    """Refuses, while a checked function runs, the imports the grading worker refuses."""

    def __init__(self, blocked: list[str]) -> None:
        self.blocked = blocked

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if any(fullname == b or fullname.startswith(b + ".") for b in self.blocked):
            raise ImportError(f"`{fullname}` cannot be imported while this assignment is graded: "
                              "the exercise asks you to write that code yourself")
        return None


@contextlib.contextmanager
def modules_hidden(blocked: list[str]) -> Iterator[None]:
    """The blocked modules out of ``sys.modules`` (and off their packages) and unimportable, as in
    the grading worker; everything put back afterwards."""
    hidden = {name: module for name, module in sys.modules.items()
              if any(name == b or name.startswith(b + ".") for b in blocked)}
    attributes = []
    for name in hidden:
        parent, _, child = name.rpartition(".")
        package = sys.modules.get(parent)
        if package is not None and getattr(package, child, None) is hidden[name]:
            attributes.append((package, child, hidden[name]))
    blocker = _Blocker(blocked)
    for name in hidden:
        del sys.modules[name]
    for package, child, _ in attributes:
        delattr(package, child)
    sys.meta_path.insert(0, blocker)
    try:
        yield
    finally:
        if blocker in sys.meta_path:
            sys.meta_path.remove(blocker)
        for name in [n for n in sys.modules if any(n == b or n.startswith(b + ".") for b in blocked)]:
            del sys.modules[name]
        sys.modules.update(hidden)
        for package, child, module in attributes:
            setattr(package, child, module)
