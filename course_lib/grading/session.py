"""The grader's side of one worker: send the job, hand out each item's cases when asked, collect.

The grader holds what matters and decides alone:

* the cases: the job carries none; the supervisor asks for an item's cases when the item starts,
  and the grader answers only for the next item in order (public items first, hidden ones last);
* the clock: a hard ceiling for the whole submission, fixed before the worker starts from the stated
  limits, and a deadline for each item from the moment its cases are sent; no record extends them;
* what reaches a report: once a hidden item's cases have been sent, nothing the submission's code
  can word (notes, messages, evidence text) is kept; hidden items keep their pass or fail only.

Everything read from the worker is untrusted text: made one safe line (``plain_text``), capped in
length and in number.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from course_lib.grading.cases import Outcome
from course_lib.grading.records import LineReader, plain_text, write_all
from course_lib.grading.sandbox import Protections

MAX_RESULT_BYTES = 256_000_000
MAX_NOTES = 50
MAX_EVIDENCE = 20
ITEM_MARGIN_SECONDS = 6.0   # past an item's own limit: the supervisor's grace, reading and judging
STATUSES = {"ok", "not_implemented", "error", "missing", "timeout", "crashed", "forbidden", "unencodable",
            "memory", "processes"}
HIDDEN_OUTCOME = "this hidden case did not pass"


@dataclass
class Collected:
    """What one worker reported, already checked."""

    protections: Protections | None = None
    notes: list[str] = field(default_factory=list)
    notes_withheld: int = 0
    tampering: list[str] = field(default_factory=list)
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)
    ending: str = "the worker stopped before reporting this item"
    _seen_notes: set[str] = field(default_factory=set)

    def note(self, text: str) -> None:
        if text in self._seen_notes:   # a notebook run again repeats its problems
            return
        if len(self.notes) >= MAX_NOTES:
            self.notes_withheld += 1
            return
        self._seen_notes.add(text)
        self.notes.append(text)

    def evidence(self, text: str) -> None:
        if text not in self.tampering and len(self.tampering) < MAX_EVIDENCE:
            self.tampering.append(text)


@dataclass(frozen=True)
class ItemCases:
    name: str
    hidden: bool
    encoded: list[Any]              # the cases' inputs, tagged JSON
    forbidden: tuple[str, ...] = ()

    def grader_messages(self) -> set[str]:
        """The messages of a hidden case the grader words itself (a forbidden API the item names)."""
        return {f"forbidden API: {name}" for name in self.forbidden}


def safe_outcome(data: Any, item: ItemCases) -> Outcome:
    """An outcome from the worker, as the grader keeps it: a known status, a one-line message
    (for a hidden item, none of the submission's words: only messages the grader itself words),
    the value left for the judge to decode."""
    outcome = Outcome.from_json(data)
    status = outcome.status if outcome.status in STATUSES else "crashed"
    if item.hidden:
        if status == "ok":
            return Outcome(status, outcome.value)
        kept = outcome.message if outcome.message in item.grader_messages() else HIDDEN_OUTCOME
        return Outcome(status, None, kept)
    return Outcome(status, outcome.value, plain_text(outcome.message, 600))


class WorkerSession:
    """Talks to one worker through its two pipes until it is done or out of time."""

    def __init__(self, pid: int, job_fd: int, result_fd: int, items: list[ItemCases], ceiling: float,
                 item_seconds: float) -> None:
        self.pid, self.job_fd, self.result_fd = pid, job_fd, result_fd
        self.items = items
        self.started = time.monotonic()
        self.ceiling = self.started + ceiling   # fixed now: nothing the worker sends moves it
        self.item_seconds = item_seconds
        self.sent: list[str] = []
        self.hidden_phase = False
        self.collected = Collected()

    def run(self, job: dict) -> Collected:
        try:
            writer = threading.Thread(target=self._write_job, args=(json.dumps(job).encode() + b"\n",), daemon=True)
            writer.start()
            self._read()
        finally:
            for fd in (self.job_fd, self.result_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass
        return self.collected

    def _write_job(self, data: bytes) -> None:
        try:
            write_all(self.job_fd, data)
        except OSError:
            pass

    def _read(self) -> None:
        reader, collected = LineReader(self.result_fd), self.collected
        item_deadline = None
        while True:
            deadline = self.ceiling if item_deadline is None else min(self.ceiling, item_deadline)
            record = reader.next(deadline)
            if record is LineReader.TIMEOUT:
                limit = "its time limit" if deadline != self.ceiling else \
                    f"the grader's limit of {self.ceiling - self.started:.0f} s for the whole submission"
                collected.ending = f"the grader stopped the submission: it ran past {limit}"
                self._stop()
                return
            if record is None:
                break
            if reader.total > MAX_RESULT_BYTES:
                collected.ending = "the grader stopped the submission: it sent more data than any answer needs"
                self._stop()
                return
            kind = record.get("kind")
            if kind == "sandbox" and collected.protections is None:
                collected.protections = Protections.from_json(record.get("protections"))
            elif kind in ("cell_error", "note"):
                if self.hidden_phase:
                    collected.notes_withheld += 1
                    continue
                cell = record.get("cell")
                where = f"cell {cell}: " if isinstance(cell, int) else ""
                collected.note(plain_text(f"{where}{record.get('error')}", 1200))
            elif kind == "worker_error":
                collected.note(plain_text(f"grader fault: {record.get('error')}", 1200))
            elif kind == "tampering":
                self._evidence(record.get("evidence"))
            elif kind == "cases_wanted":
                if self._send_cases(record.get("name")):
                    item_deadline = time.monotonic() + self.item_seconds + ITEM_MARGIN_SECONDS
            elif kind == "item":
                name = record.get("name")
                if self.sent and name == self.sent[-1] and name not in collected.outcomes \
                        and isinstance(record.get("outcomes"), list):
                    item = self._item(name)
                    collected.outcomes[name] = [safe_outcome(o, item) for o in record["outcomes"]]
                    item_deadline = None
                else:
                    collected.evidence("the worker reported an item out of order")
            elif kind == "done":
                break
        if reader.dropped:
            collected.evidence(f"{reader.dropped} unreadable record(s) on the grader's pipe")

    def _item(self, name: str) -> ItemCases:
        return next(item for item in self.items if item.name == name)

    def _send_cases(self, name: Any) -> bool:
        """Send the cases of ``name`` if it is the next item in order; refuse anything else."""
        expected = next((item for item in self.items if item.name not in self.sent), None)
        if expected is None or name != expected.name or (self.sent and self.sent[-1] not in self.collected.outcomes):
            self.collected.evidence("the worker asked for cases out of order")
            reply = {"name": None, "refused": True}
        else:
            self.sent.append(expected.name)
            self.hidden_phase = self.hidden_phase or expected.hidden
            reply = {"name": expected.name, "cases": expected.encoded}
        try:
            write_all(self.job_fd, json.dumps(reply).encode() + b"\n")
        except OSError:
            return False
        return reply.get("refused") is None

    def _evidence(self, evidence: Any) -> None:
        if self.hidden_phase:  # the words may be the submission's: keep the fact only
            self.collected.evidence("evidence of tampering while a hidden item ran")
            return
        if not isinstance(evidence, list):
            self.collected.evidence("a malformed tampering report")
            return
        for text in evidence[:MAX_EVIDENCE]:
            self.collected.evidence(plain_text(text, 300))

    def _stop(self) -> None:
        """Kill the worker's session: the worker and everything it started."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
