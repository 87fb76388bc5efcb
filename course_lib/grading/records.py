"""JSON lines between the grading processes, read with a deadline and never trusted.

The grader, the supervisor and the submission's processes talk in JSON records, one per line. A
line that is not a JSON object (malformed, too large, nested deep enough to exhaust the parser's
recursion) is not a record any grading code wrote: it is dropped and counted, so the reader can
report it as evidence of tampering rather than fail.
"""
from __future__ import annotations

import json
import os
import select
import time
from typing import Any, Callable

MAX_LINE_BYTES = 80_000_000


def parse_record(line: bytes | str) -> dict | None:
    """The JSON object on ``line``, or None when it is anything else."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def encode_record(record: dict) -> bytes:
    return (json.dumps(record) + "\n").encode()


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (a pipe may take it in pieces)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class LineReader:
    """Records from a file descriptor, each before a deadline; counts the lines it had to drop."""

    TIMEOUT = object()

    def __init__(self, fd: int, limit: int = MAX_LINE_BYTES) -> None:
        self.fd, self.limit = fd, limit
        self.buffer, self.closed = bytearray(), False
        self.dropped = 0        # malformed lines and lines over the limit
        self.skipping = False   # inside a line over the limit: drop until its end
        self.total = 0          # bytes read so far

    def next(self, deadline: float, on_wait: Callable[[], None] = lambda: None) -> Any:
        """The next record; None once the other end has closed; TIMEOUT past ``deadline``."""
        while True:
            line = self.next_line(deadline, on_wait)
            if line is None or line is self.TIMEOUT:
                return line
            record = parse_record(line)
            if record is not None:
                return record
            self.dropped += 1

    def next_line(self, deadline: float, on_wait: Callable[[], None] = lambda: None) -> Any:
        """The next non-empty line (bytes, without its newline); None at the end; TIMEOUT."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[:end + 1]
                if self.skipping:
                    self.skipping = False
                    continue
                if line.strip():
                    return line
                continue
            if self.closed:
                if self.buffer.strip() and not self.skipping:
                    self.dropped += 1
                self.buffer.clear()
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return self.TIMEOUT
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            on_wait()
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                continue
            self.buffer += chunk
            self.total += len(chunk)
            if len(self.buffer) > self.limit and b"\n" not in self.buffer:
                self.buffer.clear()  # a line this long is no record a grading process wrote
                self.dropped += 1
                self.skipping = True


_LINE_BREAKS = str.maketrans({"\r": "⏎", "\n": "⏎", "\u2028": "⏎", "\u2029": "⏎", "\x85": "⏎"})


def plain_text(value: Any, limit: int = 1000) -> str:
    """Text that came from a submission, made safe to show anywhere: one line (a line break becomes
    ⏎, so it cannot start a forged line in a report), no other control characters, nothing that
    cannot be written as UTF-8 (a lone surrogate becomes its escape), at most ``limit`` characters."""
    text = value if isinstance(value, str) else str(value)
    text = text[: limit * 2].encode("utf-8", "backslashreplace").decode("utf-8").translate(_LINE_BREAKS)
    text = "".join(c if c.isprintable() or c == "⏎" else f"\\x{ord(c):02x}" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
