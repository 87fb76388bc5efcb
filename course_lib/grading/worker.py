"""The grading worker: runs one submission's code inside the sandbox, apart from the grader.

The process tree of one submission (each arrow a fork):

    worker          reads the job, prepares the sandbox (limits, namespaces)
     └ supervisor   first process of the new namespaces (pid 1): encloses the sandbox, reports it,
       │            enforces the deadlines, fetches each item's cases from the grader, relays
       │            results; never runs the submission's code (see ``supervisor``)
       └ notebook   runs the cells in one namespace; a cell that kills it is skipped and the
         │          notebook run again without it
         └ item     one per graded item: reads that item's cases, calls the student's function
                    on each, and reports each case as it starts and ends

No item's inputs are in the job: the supervisor asks the grader for an item's cases when the item
starts, and only the item process reads them (from a pipe the notebook process never reads), so the
process that runs the cells never holds an input, and a hidden item's inputs enter the sandbox only
after every public item has reported. Only the supervisor holds the pipes to the grader; the
notebook and item processes write JSON records into a pipe of their own, which the supervisor
checks against the protocol (a record out of place is evidence of tampering) and never trusts
with a deadline: each case, item and notebook run has a fixed wall-clock deadline kept there.
"""
from __future__ import annotations

import argparse
import builtins
import contextlib
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
from typing import Any, Callable, Iterator

from course_lib.grading import codec, sandbox
from course_lib.grading.cases import Outcome
from course_lib.grading.execution import CaseTimeout, call_case, time_limit, where_it_failed
from course_lib.grading.forbidden import GUARDS
from course_lib.grading.integrity import Snapshot
from course_lib.grading.records import encode_record, write_all

MAX_JOB_BYTES = 200_000_000
MAX_CASES_BYTES = 400_000_000
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
    cases: int                          # how many; the inputs themselves come when the item runs
    forbidden: tuple[str, ...] = ()
    hidden: bool = False

    @classmethod
    def from_json(cls, data: dict) -> "ItemJob":
        return cls(data["name"], data["function"], int(data["cases"]), tuple(data.get("forbidden", ())),
                   bool(data.get("hidden", False)))


class Channel:
    """Where the notebook and item processes write their records: one whole line per write."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, *records: dict) -> None:
        write_all(self.fd, b"".join(encode_record(record) for record in records))


@contextlib.contextmanager
def guards_armed(names: tuple[str, ...], tampering: list[str]) -> Iterator[None]:
    """Arm the item's forbidden-API guards around one call; note in ``tampering`` if the call
    disarmed, removed or rewired any of them (the case then fails as a forbidden call)."""
    with GUARDS.armed(names):
        armed = GUARDS._armed
        try:
            yield
        finally:
            if GUARDS._armed is not armed:
                tampering.append("the forbidden-API guards were disarmed during a case")
    tampering.extend(GUARDS.repair())


def run_item(function: Callable | None, item: ItemJob, cases: list[dict], case_seconds: float,
             channel: Channel) -> None:
    """Call ``function`` on each case, reporting each case as it starts and as it ends (the end of
    one case and the start of the next in one write). After a time-out the remaining cases are not
    run (one message says so)."""
    def start(index: int) -> list[dict]:
        return [{"kind": "case_start", "name": item.name, "index": index}] if index < len(cases) else []

    def report(index: int, outcome: Outcome) -> None:
        channel.send({"kind": "case", "name": item.name, "index": index, "outcome": outcome.to_json()},
                     *start(index + 1))

    channel.send(*start(0))
    if function is None or not callable(function):
        message = (f"no function named `{item.function}` was defined (did a cell above fail?)" if function is None
                   else f"`{item.function}` is a {type(function).__name__}, not a function")
        for index in range(len(cases)):
            report(index, Outcome("missing", message=message))
        return
    me = os.getpid()
    carry: Outcome | None = None   # what the remaining cases get without being run
    for index, kwargs in enumerate(cases):
        if carry is not None:
            report(index, carry)
            continue
        calls_before, tampering = len(GUARDS.calls), []
        outcome = call_case(function, kwargs, timeout=case_seconds, cpu_timeout=case_seconds,
                            around=lambda: guards_armed(item.forbidden, tampering))
        if os.getpid() != me:  # a copy forked by the submission's code: it has nothing to report
            os._exit(0)
        if len(GUARDS.calls) > calls_before:  # a forbidden call counts even if its exception was swallowed
            outcome = Outcome("forbidden", message=f"forbidden API: {GUARDS.calls[calls_before]}")
        elif tampering:
            outcome = Outcome("forbidden", message="the forbidden-API guards were tampered with during this case")
            channel.send({"kind": "tampering", "evidence": tampering[:5]})
        report(index, outcome)
        if outcome.status == "not_implemented":
            carry = outcome
        elif outcome.status == "timeout":
            carry = Outcome("timeout", message="not run: an earlier case of this item ran out of time")


def read_cases(fd: int, name: str) -> list[dict]:
    """This item's cases, as the supervisor passed them on from the grader (one JSON line)."""
    chunks, size = [], 0
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            raise EOFError("the cases of this item never arrived")
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n") or size > MAX_CASES_BYTES:
            break
    message = json.loads(b"".join(chunks))
    if message.get("name") != name:
        raise ValueError(f"expected the cases of {name}")
    return [codec.to_native(codec.decode(kwargs)) for kwargs in message["cases"]]


def run_item_isolated(function: Callable | None, item: ItemJob, limits: dict, cases_fd: int, channel: Channel,
                      snapshot: Snapshot, in_pid_namespace: bool) -> tuple[str, str] | None:
    """Run an item in a forked child, so that a crash, an exit or a hang costs this item only.
    Returns how the child ended early, (status, message), or None when it ended normally."""
    done_read, done_write = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # no process slot left: the cells keep too many threads or processes running
        os.close(done_read)
        os.close(done_write)
        return ("processes", "could not start this item: the notebook's cells left too many threads or "
                             f"processes running (the grader allows {limits['max_processes']})")
    if pid == 0:  # the item process: check the grader's code, read the cases, run them, leave
        try:
            os.close(done_read)
            os.setpgid(0, 0)
            set_cpu_seconds(limits["item_seconds"])
            evidence = snapshot.restore() + GUARDS.repair()
            if evidence:
                channel.send({"kind": "tampering", "evidence": evidence[:10]})
            cases = read_cases(cases_fd, item.name)
            os.close(cases_fd)
            run_item(function, item, cases, limits["case_seconds"], channel)
        finally:
            os._exit(0)
    os.close(done_write)
    _, finished = read_until(done_read, time.monotonic() + limits["item_seconds"], 0)
    os.close(done_read)
    _kill_item(pid, in_pid_namespace)
    status = _wait(pid)
    if not finished:
        return ("timeout", f"time limit exceeded: the item ran longer than {limits['item_seconds']:g} s")
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return None
    return ("crashed", f"your code ended the process ({describe_status(status)})")


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
            chunks.clear()
            continue
        chunks.append(chunk)


def _kill_item(pid: int, in_pid_namespace: bool) -> None:
    """Kill the item process and whatever it started."""
    if in_pid_namespace:
        # everything of this namespace but pid 1 and this process: also what escaped the group
        ignore_errors(os.kill, -1, signal.SIGKILL)
    else:
        ignore_errors(os.killpg, pid, signal.SIGKILL)
    ignore_errors(os.kill, pid, signal.SIGKILL)


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


def ignore_errors(action: Callable, *args: Any) -> None:
    try:
        action(*args)
    except OSError:
        pass


def serve_notebook(job: dict, skipped: dict[int, str], done_items: set[str], out_fd: int, cases_fd: int,
                   in_pid_namespace: bool) -> None:
    """The notebook process: run the cells, then each item not yet graded in its own process."""
    try:
        channel = Channel(out_fd)
        send = channel.send
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _become_child_subreaper()
        limits = job["limits"]
        blocker = ReferenceBlocker(job["blocked_modules"])
        sys.meta_path.insert(0, blocker)
        if job.get("redirect_package"):
            redirect_package(*job["redirect_package"])
        items = [ItemJob.from_json(item) for item in job["items"]]
        problems = GUARDS.install([name for item in items for name in item.forbidden])
        for name, problem in problems.items():
            send({"kind": "note", "error": f"the forbidden API {name} could not be guarded: {problem}"})
        # what the grading code is before any cell runs: put back and reported before each item
        snapshot = Snapshot.take({"GUARDS": GUARDS}, meta_path_first=blocker)
        run_isolated = run_item_isolated
        sys.stdout, sys.stderr, sys.stdin = BoundedText(), BoundedText(), io.StringIO()
        sys.argv = [""]
        namespace = {"__name__": "__main__", "__builtins__": builtins, "display": lambda *a, **k: None}
        cells = [cell for cell in job["cells"] if cell["index"] not in skipped]
        set_cpu_seconds(limits["notebook_seconds"] + 1)
        for error in run_cells(cells, namespace, limits["notebook_seconds"],
                               on_start=lambda i: send({"kind": "cell_start", "cell": i})):
            send({"kind": "cell_error", **error})
        send({"kind": "cells_done"})
        for item in items:
            if item.name in done_items:
                continue
            send({"kind": "item_start", "name": item.name})
            ended = run_isolated(namespace.get(item.function), item, limits, cases_fd, channel, snapshot,
                                 in_pid_namespace)
            send({"kind": "item_end", "name": item.name, "status": ended[0] if ended else "ok",
                  "message": ended[1] if ended else ""})
    finally:
        os._exit(0)


def _become_child_subreaper() -> None:
    """Orphans of the item processes come to this process, which reaps them after each item."""
    if sandbox._LIBC is not None:
        ignore_errors(sandbox.prctl, 36, 1)  # PR_SET_CHILD_SUBREAPER


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


# --- the worker ------------------------------------------------------------------------------------

def read_job(fd: int) -> dict:
    """The job: the first line the grader writes (the cases come later, one item at a time)."""
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1 << 16)  # nothing follows the job until the supervisor asks
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_JOB_BYTES:
            raise ValueError("the job is too large")
    return json.loads(data)


def serve(job_fd: int, result_fd: int) -> None:
    """Run one job: read it from ``job_fd``, write result records to ``result_fd``. Never returns."""
    try:
        job = read_job(job_fd)
        spec = sandbox.SandboxSpec.from_json(job["sandbox"])
        os.environ.clear()
        os.environ.update(job["environment"])
        prepared = sandbox.prepare(spec)
        _limit_cpu_total(job["limits"])
        pid = os.fork()
        if pid == 0:
            from course_lib.grading.supervisor import supervise

            supervise(job, spec, prepared, job_fd, result_fd)
        os.close(result_fd)
        os.close(job_fd)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job-fd", type=int, default=0)
    parser.add_argument("--result-fd", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.job_fd, args.result_fd)


if __name__ == "__main__":
    main()
