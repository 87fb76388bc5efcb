"""The grading worker: runs one submission's code inside the sandbox, apart from the grader.

The process tree of one submission (each arrow a fork):

    worker          reads the job, prepares the sandbox (limits, namespaces)
     └ supervisor   first process of the new namespaces (pid 1): encloses the sandbox, reports it,
       │            enforces the deadlines, relays results; never runs the submission's code
       └ notebook   runs the cells in one namespace; a cell that kills it is skipped and the
         │          notebook run again without it
         └ item     one per graded item: calls the student's function on each case

Only the supervisor holds the result pipe to the grader. The notebook and item processes send it
JSON records through a pipe of their own; it checks their form and passes on plain data. It never
sees an expected answer, and the grader trusts nothing it says beyond the returned values.
"""
from __future__ import annotations

import argparse
import builtins
import importlib.abc
import io
import json
import linecache
import os
import select
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

from course_lib.grading import codec, sandbox
from course_lib.grading.cases import Outcome
from course_lib.grading.execution import CaseTimeout, call_case, time_limit, where_it_failed
from course_lib.grading.forbidden import GUARDS

MAX_ITEM_RESULT_BYTES = 64_000_000
MAX_RECORD_BYTES = 80_000_000
MAX_ATTEMPTS = 4        # runs of the notebook: the first, then one more for each cell that kills it
GRACE_SECONDS = 2.0     # past a limit the worker enforces itself, before the supervisor steps in
SIGNAL_MEANING = {
    signal.SIGSEGV: "segmentation fault",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "arithmetic error",
    signal.SIGABRT: "aborted",
    signal.SIGILL: "illegal instruction",
    signal.SIGKILL: "killed: out of memory, or stopped by the grader",
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "file size limit exceeded",
}


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


def describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        meaning = SIGNAL_MEANING.get(number)
        return f"{meaning}, signal {number}" if meaning else f"killed by signal {number}"
    if os.WIFEXITED(status):
        return f"exit code {os.WEXITSTATUS(status)}"
    return f"status {status}"


def set_cpu_seconds(seconds: float) -> None:
    """Soft CPU-time limit of this process (SIGXCPU past it); the hard one was set by the worker."""
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = int(seconds) + 1
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    except (ImportError, OSError, ValueError):
        pass


# --- the cells and the items, in the notebook process --------------------------------------------

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
            filename = f"<cell {cell['index']}>"
            # so that tracebacks (and the grader's reading of them) show the cell's lines
            linecache.cache[filename] = (len(cell["source"]), None, cell["source"].splitlines(True), filename)
            code = compile(cell["source"], filename, "exec")
            with time_limit(left):
                exec(code, namespace)
        except CaseTimeout:
            errors.append({"cell": cell["index"], "error": f"stopped: the notebook ran past {seconds:g} s"})
        except KeyboardInterrupt:
            errors.append({"cell": cell["index"], "error": "interrupted"})
        except MemoryError as error:
            errors.append({"cell": cell["index"],
                           "error": "MemoryError: memory limit exceeded" + where_it_failed(error)})
        except BaseException as error:
            line = f" (line {error.lineno})" if isinstance(error, SyntaxError) else where_it_failed(error)
            errors.append({"cell": cell["index"], "error": f"{type(error).__name__}: {error}"[:500] + line})
    return errors


@dataclass(frozen=True)
class ItemJob:
    name: str
    function: str
    cases: list[dict]
    forbidden: tuple[str, ...] = ()


def run_item(function: Callable | None, item: ItemJob, case_seconds: float) -> list[Outcome]:
    if function is None:
        return [Outcome("missing", message=f"no function named `{item.function}` was defined "
                                           "(did a cell above fail?)")] * len(item.cases)
    if not callable(function):
        return [Outcome("missing", message=f"`{item.function}` is a {type(function).__name__}, "
                                           "not a function")] * len(item.cases)
    me = os.getpid()
    outcomes = []
    for kwargs in item.cases:
        calls_before = len(GUARDS.calls)
        outcome = call_case(function, kwargs, timeout=case_seconds, cpu_timeout=case_seconds,
                            around=lambda: GUARDS.armed(item.forbidden))
        if os.getpid() != me:  # a copy forked by the submission's code: it has nothing to report
            os._exit(0)
        if len(GUARDS.calls) > calls_before:  # a forbidden call counts even if its exception was swallowed
            outcome = Outcome("forbidden", message=f"forbidden API: {GUARDS.calls[calls_before]}")
        outcomes.append(outcome)
        if outcome.status == "not_implemented":
            outcomes.extend([outcome] * (len(item.cases) - len(outcomes)))
            break
    return outcomes


def run_item_isolated(function: Callable | None, item: ItemJob, limits: dict, in_pid_namespace: bool) -> list[Outcome]:
    """Run an item in a forked child, so that a crash, an exit or a hang costs this item only."""
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # no process slot left: the cells keep too many threads or processes running
        os.close(read_end)
        os.close(write_end)
        return [Outcome("processes", message="could not start this item: the notebook's cells left too many "
                                             f"threads or processes running (the grader allows "
                                             f"{limits['max_processes']})")] * len(item.cases)
    if pid == 0:  # the item process: run the cases, send the outcomes, leave without cleanup
        try:
            os.close(read_end)
            os.setpgid(0, 0)
            set_cpu_seconds(limits["item_seconds"])
            me = os.getpid()
            outcomes = run_item(function, item, limits["case_seconds"])
            if os.getpid() == me:
                with os.fdopen(write_end, "wb") as out:
                    out.write(json.dumps([o.to_json() for o in outcomes]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    data, finished = read_until(read_end, time.monotonic() + limits["item_seconds"], MAX_ITEM_RESULT_BYTES)
    os.close(read_end)
    _kill_item(pid, in_pid_namespace)
    status = _wait(pid)
    n = len(item.cases)
    if not finished:
        return [Outcome("timeout", message=f"time limit exceeded: the item ran longer than "
                                           f"{limits['item_seconds']:g} s")] * n
    try:
        outcomes = [Outcome.from_json(o) for o in json.loads(data)]
        if len(outcomes) == n:
            return [_with_limits(o, limits) for o in outcomes]
    except ValueError:
        pass
    return [Outcome("crashed", message=f"your code ended the process ({describe_status(status)})")] * n


def _with_limits(outcome: Outcome, limits: dict) -> Outcome:
    """Name the limit a case ran into, in words a student can act on."""
    if outcome.status == "memory":
        return Outcome("memory", message=f"memory limit exceeded: the grader allows "
                                         f"{limits['memory_mb']:g} MB per process")
    if outcome.status == "processes":
        return Outcome("processes", message=f"process limit exceeded: the grader allows "
                                            f"{limits['max_processes']} processes")
    return outcome


def _kill_item(pid: int, in_pid_namespace: bool) -> None:
    """Kill the item process and whatever it started."""
    if in_pid_namespace:
        # everything of this namespace but pid 1 and this process: also what escaped the group
        _ignore_errors(os.kill, -1, signal.SIGKILL)
    else:
        _ignore_errors(os.killpg, pid, signal.SIGKILL)
    _ignore_errors(os.kill, pid, signal.SIGKILL)


def _wait(pid: int) -> int:
    """Wait for ``pid`` and reap any other child that has ended (orphans come to this process)."""
    status = 0
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    reap()
    return status


def reap() -> dict[int, int]:
    """Collect every child that has ended; return {pid: status}."""
    ended = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended[pid] = status


def _ignore_errors(action: Callable, *args: Any) -> None:
    try:
        action(*args)
    except OSError:
        pass


def read_until(fd: int, deadline: float, limit: int) -> tuple[bytes, bool]:
    """Read ``fd`` to its end; (data, True), or (b"", False) when the deadline passes first."""
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
        if size > limit:
            return b"", True
        chunks.append(chunk)


def _serve_notebook(job: dict, skipped: dict[int, str], done_items: set[str], out_fd: int,
                    in_pid_namespace: bool) -> None:
    """The notebook process: run the cells, then each item not yet graded in its own process."""
    out = os.fdopen(out_fd, "w", encoding="utf-8")

    def send(record: dict) -> None:
        out.write(json.dumps(record) + "\n")
        out.flush()

    try:
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _become_child_subreaper()
        limits = job["limits"]
        sys.meta_path.insert(0, ReferenceBlocker(job["blocked_modules"]))
        if job.get("redirect_package"):
            redirect_package(*job["redirect_package"])
        problems = GUARDS.install([name for item in job["items"] for name in item.get("forbidden", [])])
        for name, problem in problems.items():
            send({"kind": "note", "error": f"the forbidden API {name} could not be guarded: {problem}"})
        sys.stdout, sys.stderr, sys.stdin = BoundedText(), BoundedText(), io.StringIO()
        sys.argv = [""]
        namespace = {"__name__": "__main__", "__builtins__": builtins, "display": lambda *a, **k: None}
        cells = [cell for cell in job["cells"] if cell["index"] not in skipped]
        set_cpu_seconds(limits["notebook_seconds"] + 1)
        for error in run_cells(cells, namespace, limits["notebook_seconds"],
                               on_start=lambda i: send({"kind": "cell_start", "cell": i})):
            send({"kind": "cell_error", **error})
        send({"kind": "cells_done"})
        for item in job["items"]:
            if item["name"] in done_items:
                continue
            send({"kind": "item_start", "name": item["name"]})
            cases = [codec.to_native(codec.decode(kwargs)) for kwargs in item["cases"]]
            spec = ItemJob(item["name"], item["function"], cases, tuple(item.get("forbidden", ())))
            outcomes = run_item_isolated(namespace.get(item["function"]), spec, limits, in_pid_namespace)
            send({"kind": "item", "name": item["name"], "outcomes": [o.to_json() for o in outcomes]})
    finally:
        os._exit(0)


def _become_child_subreaper() -> None:
    """Orphans of the item processes come to this process, which reaps them after each item."""
    if sandbox._LIBC is not None:
        _ignore_errors(sandbox.prctl, 36, 1)  # PR_SET_CHILD_SUBREAPER


def redirect_package(package_dir: str, overlay_dir: str) -> None:
    """Point the loaded course_lib packages at the copy without the reference, so that a submodule
    imported from now on (even with the import blocker removed) comes from the copy."""
    for name, module in list(sys.modules.items()):
        mapping = getattr(module, "MAPPING", None)  # setuptools' finder of an editable install
        if name.startswith("__editable__") and isinstance(mapping, dict):
            for key, value in list(mapping.items()):
                if value == package_dir:
                    mapping[key] = overlay_dir
        paths = getattr(module, "__path__", None)
        if name.split(".")[0] != "course_lib" or paths is None:
            continue
        module.__path__ = [overlay_dir + p[len(package_dir):] if p.startswith(package_dir) else p for p in paths]


# --- the supervisor --------------------------------------------------------------------------------

class Supervisor:
    """Runs the notebook process (again, without a cell that killed it) and relays its records."""

    def __init__(self, job: dict, send: Callable[[dict], None], in_pid_namespace: bool) -> None:
        self.job, self.send, self.in_pid_namespace = job, send, in_pid_namespace
        self.limits = job["limits"]
        self.skipped: dict[int, str] = {}
        self.done_items: set[str] = set()
        self.cases = {item["name"]: len(item["cases"]) for item in job["items"]}
        self.ended: dict[int, int] = {}   # exit statuses of children reaped while waiting

    def run(self, result_fd: int) -> None:
        for _ in range(MAX_ATTEMPTS):
            culprit = self.attempt(result_fd)
            if culprit is None or len(self.done_items) == len(self.cases):
                break
        self.send({"kind": "done"})

    def attempt(self, result_fd: int) -> int | str | None:
        """Run the notebook once. Returns what ended it early (a cell, an item), or None."""
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            os.close(result_fd)  # the submission's processes never hold the pipe to the grader
            _serve_notebook(self.job, self.skipped, self.done_items, write_end, self.in_pid_namespace)
        os.close(write_end)
        culprit, timed_out = self._relay(read_end, pid)
        os.close(read_end)
        status = self._end(pid)
        if culprit is None:
            return None
        if isinstance(culprit, int):
            if timed_out:
                reason = (f"this cell ran past the notebook's time limit of {self.limits['notebook_seconds']:g} s "
                          "and was stopped; the notebook was run again without it")
            else:
                reason = (f"this cell ended the process ({describe_status(status)}); "
                          "the notebook was run again without it")
            self.skipped[culprit] = reason
            self.send({"kind": "cell_error", "cell": culprit, "error": reason})
            return culprit
        # an item whose process took the notebook process down with it, or never came back
        if timed_out:
            outcome = Outcome("timeout", message=f"time limit exceeded: the item ran longer than "
                                                 f"{self.limits['item_seconds']:g} s")
        else:
            outcome = Outcome("crashed", message=f"your code ended the grading process ({describe_status(status)})")
        self._report_item(culprit, [outcome.to_json()] * self.cases[culprit])
        return culprit

    def _relay(self, fd: int, pid: int) -> tuple[int | str | None, bool]:
        """Pass on the notebook process's records until it ends. Returns (what was running when it
        ended early, whether it ran out of time), or (None, False) when it finished."""
        reader = RecordReader(fd)
        running_cell: int | None = None
        running_item: str | None = None
        cells_done = False
        deadline = time.monotonic() + self.limits["notebook_seconds"] + GRACE_SECONDS
        while True:
            record = reader.next(deadline, on_wait=lambda: self.ended.update(reap()))
            if record is RecordReader.TIMEOUT:
                _ignore_errors(os.kill, pid, signal.SIGKILL)
                return (running_item if cells_done else running_cell), True
            if record is None:  # the notebook process has ended
                if cells_done and running_item is None:
                    return None, False
                return (running_item if cells_done else running_cell), False
            kind = record.get("kind")
            if kind == "cell_start" and not cells_done and isinstance(record.get("cell"), int):
                running_cell = record["cell"]
            elif kind in ("cell_error", "note") and not cells_done:
                self.send({"kind": kind, "cell": record.get("cell"), "error": str(record.get("error"))[:1000]})
            elif kind == "cells_done":
                cells_done = True
            elif kind == "item_start" and cells_done and record.get("name") in self.cases:
                running_item = record["name"]
                deadline = time.monotonic() + self.limits["item_seconds"] + GRACE_SECONDS
            elif kind == "item" and cells_done and record.get("name") == running_item:
                self._report_item(running_item, record.get("outcomes"))
                running_item = None

    def _report_item(self, name: str, outcomes: Any) -> None:
        if name in self.done_items:
            return
        if not isinstance(outcomes, list) or len(outcomes) != self.cases[name]:
            outcomes = [Outcome("crashed", message="the worker sent a malformed result").to_json()] * self.cases[name]
        self.done_items.add(name)
        self.send({"kind": "item", "name": name, "outcomes": [Outcome.from_json(o).to_json() for o in outcomes]})

    def _end(self, pid: int) -> int:
        """Make sure the notebook process and everything it started are gone; its exit status."""
        if self.in_pid_namespace:
            _ignore_errors(os.kill, -1, signal.SIGKILL)
        else:
            _ignore_errors(os.killpg, pid, signal.SIGKILL)
        self.ended.update(reap())
        status = self.ended.pop(pid, None)
        if status is None:
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = 0
        self.ended.update(reap())
        self.ended.clear()
        return status


class RecordReader:
    """JSON lines from a pipe, with a deadline; malformed lines are skipped."""

    TIMEOUT = object()

    def __init__(self, fd: int) -> None:
        self.fd, self.buffer, self.closed = fd, b"", False

    def next(self, deadline: float, on_wait: Callable[[], None] = lambda: None) -> Any:
        while True:
            if b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    return record
                continue
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return self.TIMEOUT
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            on_wait()
            if not ready:
                continue
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                self.closed = True
                self.buffer += b"\n"
            elif len(self.buffer) + len(chunk) > MAX_RECORD_BYTES:
                self.buffer = b""  # a record this large is not one the worker wrote: drop it
            else:
                self.buffer += chunk


# --- the worker ------------------------------------------------------------------------------------

def serve(job_fd: int, result_fd: int) -> None:
    """Run one job: read it from ``job_fd``, write result records to ``result_fd``. Never returns."""
    try:
        with os.fdopen(job_fd, "rb") as stream:
            job = json.loads(stream.read())
        spec = sandbox.SandboxSpec.from_json(job["sandbox"])
        os.environ.clear()
        os.environ.update(job["environment"])
        prepared = sandbox.prepare(spec)
        _limit_cpu_total(job["limits"])
        pid = os.fork()
        if pid == 0:
            _supervise(job, spec, prepared, result_fd)
        os.close(result_fd)
        os.waitpid(pid, 0)
    except BaseException as error:  # a fault of the grader's own, before any submission code ran
        try:
            record = {"kind": "worker_error", "error": f"{type(error).__name__}: {error}"[:1000]}
            os.write(result_fd, (json.dumps(record) + "\n").encode())
        except OSError:
            pass
    finally:
        os._exit(0)


def _limit_cpu_total(limits: dict) -> None:
    """A hard CPU-time limit on every process of the submission, above the soft ones set per phase."""
    try:
        import resource

        hard = int(max(limits["notebook_seconds"], limits["item_seconds"])) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
    except (ImportError, OSError, ValueError):
        pass


def _supervise(job: dict, spec: sandbox.SandboxSpec, prepared: sandbox.Prepared, result_fd: int) -> None:
    results = os.fdopen(result_fd, "w", encoding="utf-8")

    def send(record: dict) -> None:
        results.write(json.dumps(record) + "\n")
        results.flush()

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        protections = sandbox.enclose(spec, prepared)
        if sandbox._LIBC is not None:
            _ignore_errors(sandbox.prctl, 1, signal.SIGKILL)  # PR_SET_PDEATHSIG: go when the worker goes
        home = os.getcwd()
        os.environ.update({"HOME": home, "TMPDIR": home})
        if "private filesystem" not in protections.active:
            job["redirect_package"] = [spec.package_dir, spec.overlay_dir]
        send({"kind": "sandbox", "protections": protections.to_json()})
        Supervisor(job, send, in_pid_namespace="pid" in prepared.namespaces and os.getpid() == 1).run(result_fd)
    except BaseException as error:  # a fault of the grader's own: say so rather than vanish
        try:
            send({"kind": "worker_error", "error": f"{type(error).__name__}: {error}"[:1000]})
        except OSError:
            pass
    finally:
        os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job-fd", type=int, default=0)
    parser.add_argument("--result-fd", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.job_fd, args.result_fd)


if __name__ == "__main__":
    main()
