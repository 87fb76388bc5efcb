"""Calling a student's function on one case, turning whatever happens into an Outcome.

Used both inside a student's own kernel (``check``) and inside a grading worker, so the two
report the same things in the same words.
"""
from __future__ import annotations

import contextlib
import copy
import errno
import signal
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator

from course_lib.grading import codec
from course_lib.grading.cases import Outcome
from course_lib.grading.forbidden import ForbiddenCall

COURSE_LIB_DIR = str(Path(__file__).resolve().parent.parent)


class CaseTimeout(BaseException):
    """Raised in the student's code when a case runs past its time limit.

    A BaseException, so that a bare ``except Exception`` in the submission cannot swallow it.
    """


class CaseCPUTimeout(CaseTimeout):
    """Raised when a case has used more CPU time than allowed (threads count: it can exceed wall time)."""


@contextlib.contextmanager
def time_limit(seconds: float | None, cpu_seconds: float | None = None) -> Iterator[None]:
    """Interrupt the block after ``seconds`` of wall time and, if given, ``cpu_seconds`` of the
    process's CPU time (POSIX main thread; otherwise no limit)."""
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

    def on_cpu(signum: int, frame: Any) -> None:
        raise CaseCPUTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    previous_cpu = signal.signal(signal.SIGPROF, on_cpu) if cpu_seconds else None
    signal.setitimer(signal.ITIMER_REAL, seconds)
    if cpu_seconds:
        signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if cpu_seconds:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, previous_cpu)


def where_it_failed(error: BaseException) -> str:
    """' (in NAME, line N)' for the innermost frame of the student's own code, or ''."""
    own = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(COURSE_LIB_DIR)]
    if not own:
        return ""
    return f" (in {own[-1].name}, line {own[-1].lineno})"


def call_case(function: Callable[..., Any], kwargs: dict[str, Any], timeout: float | None = None,
              around: Callable[[], ContextManager[Any]] = contextlib.nullcontext,
              cpu_timeout: float | None = None) -> Outcome:
    """Call ``function(**kwargs)`` on a private copy of the inputs and report what happened.

    ``around`` makes the context the call runs in (the grading worker arms forbidden-API guards
    there); it encloses the call only, not the copying of the inputs or the reading of the answer.
    """
    inputs = copy.deepcopy(kwargs)
    try:
        with time_limit(timeout, cpu_timeout), around():
            result = function(**inputs)
    except NotImplementedError:
        return Outcome("not_implemented")
    except CaseCPUTimeout:
        return Outcome("timeout", message=f"CPU time limit exceeded: the case used more than {cpu_timeout:g} s of CPU")
    except CaseTimeout:
        return Outcome("timeout", message=f"time limit exceeded: the case ran longer than {timeout:g} s")
    except KeyboardInterrupt:
        raise
    except ForbiddenCall as error:
        return Outcome("forbidden", message=str(error))
    except MemoryError:
        return Outcome("memory", message="memory limit exceeded: the case ran out of memory")
    except BaseException as error:  # the submission's code may raise anything, SystemExit included
        return _outcome_of_exception(error, kwargs)
    try:
        return Outcome("ok", value=codec.encode(result))
    except codec.CodecError as error:
        return Outcome("unencodable", message=str(error))
    except CaseTimeout:
        return Outcome("timeout", message=f"time limit exceeded: the case ran longer than {timeout:g} s")
    except Exception as error:  # a strange object's own methods failed while it was being read
        return Outcome("unencodable", message=f"the answer could not be read: {type(error).__name__}: {error}"[:500])


_STARTS_A_PROCESS = ("fork", "Popen", "spawn", "system", "start", "Process", "Thread")


def _starting_a_process(error: BaseException) -> bool:
    """A fork or thread refused for want of process slots (RLIMIT_NPROC), as far as can be told."""
    if isinstance(error, RuntimeError) and "can't start new thread" in str(error):
        return True
    if not (isinstance(error, OSError) and error.errno == errno.EAGAIN):
        return False
    frames = traceback.extract_tb(error.__traceback__)
    return any(word in (frame.line or "") for frame in frames for word in _STARTS_A_PROCESS)


def _outcome_of_exception(error: BaseException, kwargs: dict[str, Any]) -> Outcome:
    if isinstance(error, RuntimeError) and "can't allocate memory" in str(error):  # PyTorch's allocator
        return Outcome("memory", message="memory limit exceeded: the case ran out of memory")
    if _starting_a_process(error):
        return Outcome("processes", message="process limit exceeded: the case started too many processes")
    message = f"{type(error).__name__}: {error}"[:500]
    if isinstance(error, TypeError) and "argument" in str(error):
        expected = ", ".join(kwargs)
        message += f" — the function should accept ({expected})"
    return Outcome("error", message=f"raised {message}{where_it_failed(error)}")
