"""The supervisor: the first process inside a submission's sandbox, which never runs its code.

It encloses the sandbox, reports it, then runs the notebook process (again, without a cell that
killed it) and reads the records the notebook and item processes write, holding them to the
protocol, in this order:

    cell_start, cell_error, note ...        while the cells run
    cells_done
    then for each item, in the job's order (public items first, hidden ones last):
      item_start                            the supervisor asks the grader for this item's cases
                                            and passes them on to the item process only
      case_start, case  (once per case)     each case's outcome, as it ends
      item_end                              how the item process ended

Every deadline is fixed here, when its phase starts, and no record extends it: the notebook's
cells (``notebook_seconds``), each item (``item_seconds``) and each case (``case_seconds``, timed
from its ``case_start``: an outcome that arrives later than the limit is a time-out whatever the
submission's own timers did). Past a deadline the supervisor kills every process of the
submission and runs the notebook again for the items left. A record out of place, out of order,
or unreadable is not one the grading code wrote: it is dropped and reported as evidence of
tampering.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Callable

from course_lib.grading import sandbox
from course_lib.grading.cases import Outcome
from course_lib.grading.records import LineReader, encode_record, write_all
from course_lib.grading.worker import ItemJob, describe_status, ignore_errors, reap, serve_notebook

MAX_ATTEMPTS = 4          # runs of the notebook: the first, then one more for each cell that kills it
GRACE_SECONDS = 2.0       # past a limit the notebook process enforces itself, before the supervisor kills
BETWEEN_ITEMS_SECONDS = 5.0   # from one item's end to the next item's start (the notebook forks, no more)
MAX_NOTES = 200           # notes relayed per run of the notebook
CASES_REPLY_SECONDS = 60.0


def case_slack(case_seconds: float) -> float:
    """How much later than the case limit an outcome may arrive (encoding it, writing it)."""
    return 0.25 + 0.1 * case_seconds


class Supervisor:
    def __init__(self, job: dict, send: Callable[[dict], None], cases_source: LineReader,
                 in_pid_namespace: bool) -> None:
        self.job, self.send, self.cases_source = job, send, cases_source
        self.in_pid_namespace = in_pid_namespace
        self.limits = job["limits"]
        self.items = [ItemJob.from_json(item) for item in job["items"]]
        self.cell_indices = {cell["index"] for cell in job["cells"]}
        self.skipped: dict[int, str] = {}
        self.done_items: set[str] = set()
        self.ended: dict[int, int] = {}   # exit statuses of children reaped while waiting
        self.violations = 0

    def run(self, keep_closed: tuple[int, ...]) -> None:
        for _ in range(MAX_ATTEMPTS):
            culprit = self.attempt(keep_closed)
            if culprit is None or len(self.done_items) == len(self.items):
                break
        for item in self.items:  # what no run of the notebook reached
            if item.name not in self.done_items:
                self._report(item, [], Outcome("crashed", message="not graded: the notebook was stopped too "
                                                                  "many times before this item"))
        if self.violations:
            self.send({"kind": "tampering", "evidence": [
                f"{self.violations} record(s) out of protocol on the grader's pipe (forged or malformed)"]})
        self.send({"kind": "done"})

    def next_item(self) -> ItemJob | None:
        return next((item for item in self.items if item.name not in self.done_items), None)

    def attempt(self, keep_closed: tuple[int, ...]) -> Any:
        """Run the notebook once. Returns what ended it early (a cell index, an item), or None."""
        read_end, write_end = os.pipe()
        cases_read, cases_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            for fd in (read_end, cases_write, *keep_closed):  # never held by the submission's processes
                os.close(fd)
            serve_notebook(self.job, self.skipped, self.done_items, write_end, cases_read, self.in_pid_namespace)
        os.close(write_end)
        os.close(cases_read)
        try:
            culprit, timed_out, running = self._relay(read_end, cases_write, pid)
        finally:
            os.close(read_end)
            os.close(cases_write)
        status = self._end(pid)
        if running is not None:  # an item whose process took the notebook process down, or never came back
            item, outcomes = running
            self._report(item, outcomes, Outcome("crashed", message=f"your code ended the grading process "
                                                                    f"({describe_status(status)})"))
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

    def _relay(self, fd: int, cases_fd: int, pid: int) -> tuple[Any, bool, Any]:
        """Hold the notebook process's records to the protocol until it ends or runs out of time.
        Returns (what was running when it ended early or None, whether it ran out of time, the item
        left unfinished with its outcomes so far, or None)."""
        reader = LineReader(fd)
        limits = self.limits
        cells_deadline = time.monotonic() + limits["notebook_seconds"] + GRACE_SECONDS
        running_cell: int | None = None
        cells_done, notes = False, 0
        item: ItemJob | None = None
        outcomes: list[Outcome] = []
        item_deadline = case_deadline = between_deadline = 0.0
        case_started: float | None = None
        while True:
            now = time.monotonic()
            if not cells_done:
                deadline = cells_deadline
            elif item is None:
                deadline = between_deadline or now + BETWEEN_ITEMS_SECONDS
                between_deadline = deadline
            else:
                deadline = min(item_deadline, case_deadline) if case_started is not None else item_deadline
            record = reader.next(deadline, on_wait=lambda: self.ended.update(reap()))
            self.ended.update(reap())
            if item is not None and self.ended.get(pid, 0) != 0:
                # the notebook process was killed while an item ran (by the item's code): whatever
                # that item reported counts for nothing (an item is complete only once the notebook
                # process, still alive, confirms its end)
                self.violations += reader.dropped
                return item.name, False, (item, [])
            if record is LineReader.TIMEOUT:
                ignore_errors(os.kill, pid, signal.SIGKILL)
                self.violations += reader.dropped
                if not cells_done:
                    return running_cell, True, None
                if item is None:
                    return "between items", True, None
                if case_started is not None and time.monotonic() >= case_deadline:
                    self._report(item, outcomes, self._case_timeout(),
                                 Outcome("timeout", message="not run: an earlier case of this item ran out of time"))
                else:
                    ran_out = Outcome("timeout", message=f"time limit exceeded: the item ran longer than "
                                                         f"{limits['item_seconds']:g} s")
                    self._report(item, outcomes, ran_out)
                return item.name, True, None
            if record is None:  # the notebook process has ended
                self.violations += reader.dropped
                if not cells_done:
                    return running_cell, False, None
                if item is not None:
                    return item.name, False, (item, [])
                return (None if self.next_item() is None else "between items"), False, None
            kind = record.get("kind")
            if not cells_done:
                if kind == "cell_start" and self._is_cell(record.get("cell")):
                    running_cell = record["cell"]
                elif kind in ("cell_error", "note") and (record.get("cell") is None
                                                         or self._is_cell(record.get("cell"))):
                    notes += 1
                    if notes <= MAX_NOTES:
                        self.send({"kind": kind, "cell": record.get("cell"), "error": str(record.get("error"))[:1000]})
                elif kind == "cells_done":
                    cells_done = True
                elif kind == "tampering":
                    self._relay_evidence(record)
                else:
                    self.violations += 1
                continue
            if kind == "tampering":
                self._relay_evidence(record)
            elif item is None:
                expected = self.next_item()
                if kind == "item_start" and expected is not None and record.get("name") == expected.name:
                    item, outcomes, case_started = expected, [], None
                    item_deadline = time.monotonic() + limits["item_seconds"] + GRACE_SECONDS
                    if not self._pass_cases_on(item, cases_fd):
                        self._report(item, [], Outcome("crashed", message="grader fault: the cases of this item "
                                                                          "did not arrive"))
                        return item.name, False, None
                elif kind == "item_end" and isinstance(record.get("name"), str) and record["name"] in self.done_items:
                    pass  # the end of an item already reported in full
                else:
                    self.violations += 1
            elif record.get("name") != item.name:
                self.violations += 1
            elif kind == "case_start" and record.get("index") == len(outcomes) < item.cases and case_started is None:
                case_started = time.monotonic()
                case_deadline = case_started + limits["case_seconds"] + GRACE_SECONDS
            elif kind == "case" and record.get("index") == len(outcomes) and case_started is not None:
                elapsed, case_started = time.monotonic() - case_started, None
                outcome = self._with_limits(Outcome.from_json(record.get("outcome")))
                if elapsed > limits["case_seconds"] + case_slack(limits["case_seconds"]) \
                        and outcome.status != "timeout":
                    outcome = self._case_timeout()
                outcomes.append(outcome)  # final once the notebook process confirms the item's end
            elif kind == "item_end" and len(outcomes) == item.cases and case_started is None:
                self._report(item, outcomes)
                item, between_deadline = None, 0.0
            elif kind == "item_end":
                status = record.get("status")
                status = status if status in ("timeout", "crashed", "processes") else "crashed"
                message = str(record.get("message") or "the item process ended before its last case")[:500]
                self._report(item, outcomes, Outcome(status, message=message))
                item, between_deadline = None, 0.0
            else:
                self.violations += 1

    def _is_cell(self, value: Any) -> bool:
        return isinstance(value, int) and value in self.cell_indices

    def _pass_cases_on(self, item: ItemJob, cases_fd: int) -> bool:
        """Ask the grader for the item's cases and write them, in a thread, into the pipe only the
        item process reads (a thread, so that an item that never reads cannot block this process)."""
        self.send({"kind": "cases_wanted", "name": item.name})
        line = self.cases_source.next_line(time.monotonic() + CASES_REPLY_SECONDS)
        if not isinstance(line, bytes):
            return False
        own_fd = os.dup(cases_fd)

        def write() -> None:
            try:
                write_all(own_fd, line + b"\n")
            except OSError:
                pass
            finally:
                os.close(own_fd)

        threading.Thread(target=write, daemon=True).start()
        return True

    def _case_timeout(self) -> Outcome:
        return Outcome("timeout", message=f"time limit exceeded: the case ran longer than "
                                          f"{self.limits['case_seconds']:g} s")

    def _with_limits(self, outcome: Outcome) -> Outcome:
        """Name the limit a case ran into, in words a student can act on."""
        if outcome.status == "memory":
            return Outcome("memory", message=f"memory limit exceeded: the grader allows "
                                             f"{self.limits['memory_mb']:g} MB per process")
        if outcome.status == "processes":
            return Outcome("processes", message=f"process limit exceeded: the grader allows "
                                                f"{self.limits['max_processes']} processes")
        return outcome

    def _report(self, item: ItemJob, outcomes: list[Outcome], fill: Outcome | None = None,
                rest: Outcome | None = None) -> None:
        """Send the item's outcomes, completing them: ``fill`` for the next case, ``rest`` (or
        ``fill``) for the ones after it."""
        if item.name in self.done_items:
            return
        outcomes = list(outcomes)
        if len(outcomes) < item.cases and fill is not None:
            outcomes.append(fill)
        outcomes += [rest or fill or Outcome("crashed", message="no outcome")] * (item.cases - len(outcomes))
        self.done_items.add(item.name)
        self.send({"kind": "item", "name": item.name, "outcomes": [o.to_json() for o in outcomes]})

    def _relay_evidence(self, record: dict) -> None:
        evidence = record.get("evidence")
        if isinstance(evidence, list):
            self.send({"kind": "tampering", "evidence": [str(e)[:300] for e in evidence[:10]]})
        else:
            self.violations += 1

    def _end(self, pid: int) -> int:
        """Make sure the notebook process and everything it started are gone; its exit status."""
        if self.in_pid_namespace:
            ignore_errors(os.kill, -1, signal.SIGKILL)
        else:
            ignore_errors(os.killpg, pid, signal.SIGKILL)
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


def supervise(job: dict, spec: sandbox.SandboxSpec, prepared: sandbox.Prepared, job_fd: int,
              result_fd: int) -> None:
    """The supervisor's life: enclose the sandbox, report it, run the notebook. Never returns."""
    def send(record: dict) -> None:
        write_all(result_fd, encode_record(record))

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        protections = sandbox.enclose(spec, prepared)
        if sandbox._LIBC is not None:
            ignore_errors(sandbox.prctl, 1, signal.SIGKILL)  # PR_SET_PDEATHSIG: go when the worker goes
        home = os.getcwd()
        os.environ.update({"HOME": home, "TMPDIR": home})
        if "private filesystem" not in protections.active:
            job["redirect_package"] = [spec.package_dir, spec.overlay_dir]
        send({"kind": "sandbox", "protections": protections.to_json()})
        in_pid_namespace = "pid" in prepared.namespaces and os.getpid() == 1
        Supervisor(job, send, LineReader(job_fd), in_pid_namespace).run(keep_closed=(job_fd, result_fd))
    except BaseException as error:  # a fault of the grader's own: say so rather than vanish
        try:
            send({"kind": "worker_error", "error": f"{type(error).__name__}: {error}"[:1000]})
        except OSError:
            pass
    finally:
        os._exit(0)
