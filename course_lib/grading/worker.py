"""The grading worker: runs one submission's code, apart from the grader.

It is started by the grader as ``python -I -m course_lib.grading.worker --result-fd N`` with the
job (cells to run, items and their encoded case inputs) on standard input. A forked child runs
the cells in one namespace, then each item in a child of its own, so that a crash or a hang
costs that item only; a cell that kills the process is skipped and the notebook run again. It writes one JSON line per result to the file descriptor it was given; it never sees an
expected answer, and the grader trusts nothing it says beyond the returned values.
"""
from __future__ import annotations

import argparse
import builtins
import importlib.abc
import io
import json
import os
import select
import sys
import time
from typing import Any, Callable

from course_lib.grading import codec
from course_lib.grading.cases import Outcome
from course_lib.grading.execution import CaseTimeout, call_case, time_limit, where_it_failed

MAX_ITEM_RESULT_BYTES = 64_000_000


class ReferenceBlocker(importlib.abc.MetaPathFinder):
    """Refuses to import the modules that would solve the assignment for the student."""

    def __init__(self, blocked: list[str]) -> None:
        self.blocked = blocked

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        for name in self.blocked:
            if fullname == name or fullname.startswith(name + "."):
                raise ImportError(
                    f"`{fullname}` cannot be imported while this assignment is graded: "
                    "the exercise asks you to write that code yourself"
                )
        return None


class BoundedText(io.TextIOBase):
    """Where the submission's prints go: kept up to a limit, then dropped."""

    def __init__(self, limit: int = 100_000) -> None:
        self.parts: list[str] = []
        self.left = limit

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.left > 0:
            self.parts.append(text[: self.left])
            self.left -= len(text)
        return len(text)


def run_cells(cells: list[dict], namespace: dict, seconds: float,
              on_start: Callable[[int], None] = lambda index: None) -> list[dict]:
    """Execute the cells in order; a failing cell is reported and the next one still runs."""
    errors = []
    deadline = time.monotonic() + seconds
    for cell in cells:
        on_start(cell["index"])
        left = deadline - time.monotonic()
        if left <= 0:
            errors.append({"cell": cell["index"], "error": f"not run: the notebook ran past {seconds:g} s"})
            continue
        try:
            code = compile(cell["source"], f"<cell {cell['index']}>", "exec")
            with time_limit(left):
                exec(code, namespace)
        except CaseTimeout:
            errors.append({"cell": cell["index"], "error": f"stopped: the notebook ran past {seconds:g} s"})
        except KeyboardInterrupt:
            errors.append({"cell": cell["index"], "error": "interrupted"})
        except BaseException as error:
            line = f" (line {error.lineno})" if isinstance(error, SyntaxError) else where_it_failed(error)
            errors.append({"cell": cell["index"], "error": f"{type(error).__name__}: {error}"[:500] + line})
    return errors


def run_item(function: Callable | None, name: str, cases: list[dict], case_seconds: float) -> list[Outcome]:
    if function is None:
        return [Outcome("missing", message=f"no function named `{name}` was defined (did a cell above fail?)")] * len(cases)
    if not callable(function):
        return [Outcome("missing", message=f"`{name}` is a {type(function).__name__}, not a function")] * len(cases)
    outcomes = []
    for kwargs in cases:
        outcome = call_case(function, kwargs, timeout=case_seconds)
        outcomes.append(outcome)
        if outcome.status == "not_implemented":
            outcomes.extend([outcome] * (len(cases) - len(outcomes)))
            break
    return outcomes


def run_item_isolated(function: Callable | None, name: str, cases: list[dict], case_seconds: float,
                      item_seconds: float) -> list[Outcome]:
    """Run an item in a forked child, so a crash, an exit or a hang costs this item only."""
    if not hasattr(os, "fork"):
        return run_item(function, name, cases, case_seconds)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the cases, send the outcomes, leave without cleanup
        os.close(read_end)
        try:
            outcomes = run_item(function, name, cases, case_seconds)
            payload = json.dumps([o.to_json() for o in outcomes]).encode()
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
        finally:
            os._exit(0)
    os.close(write_end)
    data, finished = _read_until(read_end, time.monotonic() + item_seconds)
    os.close(read_end)
    if not finished:
        _kill(pid)
        return [Outcome("timeout", message=f"time limit exceeded: the item ran longer than {item_seconds:g} s")] * len(cases)
    _, status = os.waitpid(pid, 0)
    try:
        outcomes = [Outcome.from_json(o) for o in json.loads(data)]
        if len(outcomes) == len(cases):
            return outcomes
    except ValueError:
        pass
    return [Outcome("crashed", message=f"your code ended the process ({_describe_status(status)})")] * len(cases)


def _read_until(fd: int, deadline: float) -> tuple[bytes, bool]:
    chunks, size = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"", False
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks), True
        size += len(chunk)
        if size > MAX_ITEM_RESULT_BYTES:
            return b"", True
        chunks.append(chunk)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    if os.WIFEXITED(status):
        return f"exit code {os.WEXITSTATUS(status)}"
    return f"status {status}"


def run_notebook_attempt(job: dict, skipped: dict[int, str], send: Callable[[dict], None]) -> int | None:
    """Run the cells (less ``skipped``) and then the items in a forked child, relaying its records.

    Returns the index of the cell that ended the child, or None when the child finished the cells.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _serve_notebook(job, skipped, os.fdopen(write_end, "w", encoding="utf-8"))
    os.close(write_end)
    running_cell, cells_done = None, False
    with os.fdopen(read_end, "r", encoding="utf-8", errors="replace") as records:
        for line in records:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("kind") == "cell_start":
                running_cell = record.get("cell")
            elif record.get("kind") == "cells_done":
                cells_done = True
            else:
                send(record)
    _, status = os.waitpid(pid, 0)
    if cells_done or running_cell is None:
        return None
    skipped[running_cell] = (
        f"this cell ended the process ({_describe_status(status)}); "
        "the notebook was run again without it"
    )
    return running_cell


def _serve_notebook(job: dict, skipped: dict[int, str], out: io.TextIOBase) -> None:
    """In the notebook child: set up the sandbox, run cells, then each item in its own child."""
    def send(record: dict) -> None:
        out.write(json.dumps(record) + "\n")
        out.flush()

    try:
        sys.meta_path.insert(0, ReferenceBlocker(job["blocked_modules"]))
        sys.stdout, sys.stderr = BoundedText(), BoundedText()
        namespace = {"__name__": "__main__", "__builtins__": builtins, "display": lambda *a, **k: None}
        cells = [cell for cell in job["cells"] if cell["index"] not in skipped]
        for error in run_cells(cells, namespace, job["notebook_seconds"], on_start=lambda i: send(
                {"kind": "cell_start", "cell": i})):
            send({"kind": "cell_error", **error})
        send({"kind": "cells_done"})
        for item in job["items"]:
            cases = [codec.decode(kwargs) for kwargs in item["cases"]]
            outcomes = run_item_isolated(namespace.get(item["function"]), item["function"], cases,
                                         job["case_seconds"], job["item_seconds"])
            send({"kind": "item", "name": item["name"], "outcomes": [o.to_json() for o in outcomes]})
    finally:
        os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--result-fd", type=int, required=True)
    args = parser.parse_args(argv)
    results = os.fdopen(args.result_fd, "w", encoding="utf-8")

    def send(record: dict) -> None:
        results.write(json.dumps(record) + "\n")
        results.flush()

    job = json.loads(sys.stdin.read())
    skipped: dict[int, str] = {}
    # A cell that kills the process is skipped and the notebook run again, at most once per cell.
    while len(skipped) <= len(job["cells"]):
        crashed = run_notebook_attempt(job, skipped, send)
        if crashed is None:
            break
        send({"kind": "cell_error", "cell": crashed, "error": skipped[crashed]})
    send({"kind": "done"})
    results.close()
    os._exit(0)


if __name__ == "__main__":
    main()
