"""Calling a student's function on one case, turning whatever happens into an Outcome.

Used both inside a student's own kernel (``check``) and inside a grading worker, so the two
report the same things in the same words.
"""
from __future__ import annotations

import contextlib
import copy
import signal
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

from course_lib.grading import codec
from course_lib.grading.cases import Outcome

COURSE_LIB_DIR = str(Path(__file__).resolve().parent.parent)


class CaseTimeout(BaseException):
    """Raised in the student's code when a case runs past its time limit.

    A BaseException, so that a bare ``except Exception`` in the submission cannot swallow it.
    """


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after ``seconds`` of wall time (POSIX main thread; otherwise no limit)."""
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise CaseTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def where_it_failed(error: BaseException) -> str:
    """' (in NAME, line N)' for the innermost frame of the student's own code, or ''."""
    own = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(COURSE_LIB_DIR)]
    if not own:
        return ""
    return f" (in {own[-1].name}, line {own[-1].lineno})"


def call_case(function: Callable[..., Any], kwargs: dict[str, Any], timeout: float | None = None) -> Outcome:
    """Call ``function(**kwargs)`` on a private copy of the inputs and report what happened."""
    try:
        with time_limit(timeout):
            result = function(**copy.deepcopy(kwargs))
    except NotImplementedError:
        return Outcome("not_implemented")
    except CaseTimeout:
        return Outcome("timeout", message=f"time limit exceeded: the case ran longer than {timeout:g} s")
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # the submission's code may raise anything, SystemExit included
        message = f"{type(error).__name__}: {error}"[:500]
        if isinstance(error, TypeError) and "argument" in str(error):
            expected = ", ".join(kwargs)
            message += f" — the function should accept ({expected})"
        return Outcome("error", message=f"raised {message}{where_it_failed(error)}")
    try:
        return Outcome("ok", value=codec.encode(result))
    except codec.CodecError as error:
        return Outcome("unencodable", message=str(error))
