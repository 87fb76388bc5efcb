"""A fork server for grading workers: the heavy libraries are imported once, each worker is a fork.

Starting Python and importing PyTorch takes seconds, longer than grading a whole notebook. The
grader therefore starts one *zygote* process, which imports what notebooks commonly use (NumPy,
PyTorch, course_lib's grading code, never a reference implementation) and then waits. For each
submission the grader sends it two pipe ends (the job to read, the results to write) over a Unix
socket; the zygote forks, and the child becomes that submission's worker: it starts a session of
its own and enters the sandbox (``worker.serve``). The zygote never runs a submission's code and
holds nothing of the grader's but the socket.
"""
from __future__ import annotations

import argparse
import atexit
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading

PRELOAD = ("numpy", "torch", "course_lib", "course_lib.runtime", "course_lib.grading.check",
           "course_lib.grading.worker", "course_lib.grading.supervisor")


def worker_environment() -> dict[str, str]:
    """Only what Python needs; nothing of the grader's own environment (tokens, paths) leaks in."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


# --- the zygote process ------------------------------------------------------------------------

def serve(control: socket.socket, preload: list[str]) -> None:
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception:  # a library that is not installed is simply not preloaded
            pass
    from course_lib.grading import worker

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the workers
    # ready: and how much address space a worker starts with (the memory cap must leave it room)
    control.send(json.dumps({"ready": True, "address_space_mb": address_space_mb()}).encode())
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1024, 2)
        except (OSError, ValueError):
            return
        if not message:
            return  # the grader has gone
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            control.send(json.dumps({"error": "expected two file descriptors"}).encode())
            continue
        job_fd, result_fd = fds
        zygote = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                _die_with_parent(zygote)
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.setsid()
                low, high = sorted((job_fd, result_fd))
                os.closerange(3, low)  # nothing of the zygote's stays open in the worker
                os.closerange(low + 1, high)
                os.closerange(high + 1, 1 << 16)
                worker.serve(job_fd, result_fd)
            finally:
                os._exit(0)
        os.close(job_fd)
        os.close(result_fd)
        control.send(json.dumps({"pid": pid}).encode())


def address_space_mb() -> float | None:
    """This process's virtual memory size (what RLIMIT_AS counts), in MB; None where unknown."""
    try:
        with open("/proc/self/status") as stream:
            for line in stream:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _die_with_parent(parent: int) -> None:
    """The worker goes when the zygote goes (which goes when the grader goes): nothing a submission
    started outlives an interrupted grading run."""
    from course_lib.grading import sandbox

    if sandbox._LIBC is not None:
        sandbox.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the zygote went before the line above
        os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--preload", default=",".join(PRELOAD))
    args = parser.parse_args(argv)
    control = socket.socket(fileno=args.control_fd)
    os.chdir("/")
    serve(control, [name for name in args.preload.split(",") if name])


# --- the grader's side -------------------------------------------------------------------------

class ZygoteError(RuntimeError):
    """The fork server could not start a worker."""


class Zygote:
    """The grader's handle on a fork server; ``start_worker`` is safe to call from many threads."""

    def __init__(self, preload: tuple[str, ...] = PRELOAD) -> None:
        if not hasattr(os, "fork") or not hasattr(socket, "send_fds"):
            raise ZygoteError("grading needs a POSIX system (Linux or macOS) with fork and Unix sockets")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-m", "course_lib.grading.zygote",
             "--control-fd", str(theirs.fileno()), "--preload", ",".join(preload)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),), env=worker_environment(), cwd="/", start_new_session=True,
        )
        theirs.close()
        self.socket = ours
        self.lock = threading.Lock()
        self.address_space_mb: float | None = None
        self.ready = False

    def wait_ready(self) -> None:
        """Wait (once) for the fork server to finish importing; learn a worker's starting size."""
        with self.lock:
            self._wait_ready()

    def _wait_ready(self) -> None:
        if self.ready:
            return
        try:
            reply = json.loads(self.socket.recv(1024) or b"{}")
        except (OSError, ValueError) as error:
            raise ZygoteError(f"the worker fork server did not start: {error}") from None
        if not reply.get("ready"):
            raise ZygoteError("the worker fork server did not start")
        size = reply.get("address_space_mb")
        self.address_space_mb = float(size) if isinstance(size, (int, float)) else None
        self.ready = True

    def alive(self) -> bool:
        return self.process.poll() is None

    def start_worker(self) -> tuple[int, int, int]:
        """Fork a worker: (its pid, the fd to write its job to, the fd to read its results from)."""
        job_read, job_write = os.pipe()
        result_read, result_write = os.pipe()
        try:
            with self.lock:
                self._wait_ready()
                socket.send_fds(self.socket, [b"fork"], [job_read, result_write])
                reply = json.loads(self.socket.recv(1024) or b"{}")
        except (OSError, ValueError, ZygoteError) as error:
            for fd in (job_write, result_read):
                os.close(fd)
            raise ZygoteError(f"the worker fork server failed: {error}") from None
        finally:
            os.close(job_read)
            os.close(result_write)
        if "pid" not in reply:
            os.close(job_write)
            os.close(result_read)
            raise ZygoteError(f"the worker fork server refused: {reply.get('error', 'no reply')}")
        return int(reply["pid"]), job_write, result_read

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_shared: Zygote | None = None
_shared_lock = threading.Lock()


def shared_zygote() -> Zygote:
    """The process-wide fork server, started on first use (and again if it has died)."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.alive():
            _shared = Zygote()
            atexit.register(_shared.close)
        return _shared


if __name__ == "__main__":
    main()
