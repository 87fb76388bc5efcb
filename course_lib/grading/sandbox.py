"""The sandbox a submission's code runs in: limits, namespaces, a private filesystem, no privileges.

It is applied by the grading worker in two steps, around the fork that starts the submission's
process tree (see ``worker``):

``prepare(spec)``
    in the worker, before the fork: a cgroup of its own where cgroup v2 allows one (memory and
    process caps on the submission's processes together), resource limits, then new namespaces
    (network, mount, process ids and System V IPC; with a user namespace when the grader is not
    root).
``enclose(spec, prepared)``
    in the first process of the new namespaces: a private root filesystem (system and Python
    directories read-only, a copy of course_lib without the graded reference, a small writable
    ``/tmp``), a fresh ``/proc``, an unprivileged uid, no capabilities, no new privileges, a cap
    on the number of processes.

What the platform does not allow is skipped, and said: ``Protections`` lists what was active and
why the rest was not, so that the grader can report it for every submission. The Linux calls are
made through ctypes (Python 3.11 has no ``os.unshare``); elsewhere only the resource limits apply.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

NOBODY_UID = 65534

# clone(2) and mount(2) flags
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
CLONE_NEWIPC = 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
MNT_DETACH = 0x2
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217, "armv7l": 218, "i686": 217}
_CAPABILITY_VERSION_3 = 0x20080522

# System directories the submission may read (never write); the Python installation is added.
SYSTEM_DIRECTORIES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
DEVICES = ("null", "zero", "full", "random", "urandom")


@dataclass
class SandboxSpec:
    """What the grader asks of the sandbox, sent to the worker as JSON."""

    workdir: str                      # an empty directory of the grader's: the submission's root or cwd
    package_dir: str                  # the real course_lib folder (hidden)
    overlay_dir: str                  # a copy of course_lib without the graded reference (shown in its place)
    readable: list[str] = field(default_factory=list)  # directories to show read-only (Python, site-packages)
    memory_bytes: int = 4 << 30       # address space of each process (RLIMIT_AS)
    max_processes: int = 64           # processes and threads of the submission (RLIMIT_NPROC)
    max_file_bytes: int = 16 << 20    # largest file it may write (RLIMIT_FSIZE)
    max_open_files: int = 256
    tmp_bytes: int = 64 << 20         # size of its writable /tmp
    uid: int = NOBODY_UID             # whom to run as when the grader is root
    namespaces: bool = True           # False: resource limits only (what is left where namespaces are missing)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "SandboxSpec":
        return cls(**data)


@dataclass
class Protections:
    """Which protections were active for a submission, and why any other was not."""

    active: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"active": list(self.active), "missing": dict(self.missing)}

    @classmethod
    def from_json(cls, data: object) -> "Protections":
        if not isinstance(data, dict):
            return cls(missing={"report": "the worker sent no sandbox report"})
        active = [str(a) for a in data.get("active", []) if isinstance(a, str)]
        missing = {str(k): str(v) for k, v in dict(data.get("missing", {})).items()}
        return cls(active, missing)


@dataclass
class Prepared:
    """What ``prepare`` managed, for ``enclose`` to build on."""

    namespaces: set[str] = field(default_factory=set)   # of "user", "mount", "network", "pid", "ipc"
    was_root: bool = False
    protections: Protections = field(default_factory=Protections)


# --- system calls ------------------------------------------------------------------------------

def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


_LIBC = _libc()


def _call(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unshare(flags: int) -> None:
    _call(_LIBC.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda text: None if text is None else text.encode()  # noqa: E731
    _call(_LIBC.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)),
          f"mount {target}")


def prctl(option: int, value: int) -> None:
    _call(_LIBC.prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)),
          f"prctl {option}")


def drop_capabilities() -> None:
    """Clear every capability of this process (those a user namespace grants inside it, too)."""
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _call(_LIBC.capset(header, data), "capset")


def _pivot_root(new_root: str, put_old: str) -> None:
    number = _PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(f"pivot_root: unknown system call number on {platform.machine()}")
    _call(_LIBC.syscall(ctypes.c_long(number), new_root.encode(), put_old.encode()), "pivot_root")


# --- step 1: before the fork -------------------------------------------------------------------

def set_limit(which: int, soft: int, hard: int | None = None) -> None:
    import resource

    hard = soft if hard is None else hard
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(which, (soft, hard))


def prepare(spec: SandboxSpec) -> Prepared:
    """Resource limits and new namespaces, in the worker before it forks the submission's tree.

    The worker must be single-threaded here (a user namespace cannot be entered otherwise).
    """
    prepared = Prepared(was_root=hasattr(os, "geteuid") and os.geteuid() == 0)
    active, missing = prepared.protections.active, prepared.protections.missing
    active.append("separate process")
    try:
        import resource
    except ImportError:
        missing["limits"] = "no resource limits on this platform"
    else:
        for key, which, value in [
            ("memory", resource.RLIMIT_AS, spec.memory_bytes),
            ("file size", resource.RLIMIT_FSIZE, spec.max_file_bytes),
            ("open files", resource.RLIMIT_NOFILE, spec.max_open_files),
            ("core dumps", resource.RLIMIT_CORE, 0),
        ]:
            try:
                set_limit(which, value)
                active.append(f"{key} cap" if key != "core dumps" else "no core dumps")
            except (OSError, ValueError) as error:
                missing[key] = f"setrlimit failed: {error}"
    group = join_group(spec)
    if group is None:
        active.append("group memory and process cap")
    else:
        missing["group memory cap"] = f"{group}: only the per-process caps apply"
    if not (spec.namespaces and _LIBC is not None):
        missing["namespaces"] = "not used" if _LIBC is not None else f"not available on {sys.platform}"
        return prepared
    flags = {"mount": CLONE_NEWNS, "network": CLONE_NEWNET, "pid": CLONE_NEWPID, "ipc": CLONE_NEWIPC}
    if not prepared.was_root:
        flags = {"user": CLONE_NEWUSER, **flags}
    try:
        unshare(sum(flags.values()))
        prepared.namespaces = set(flags)
    except OSError as error:
        missing["namespaces"] = f"{error} (Linux namespaces are disabled here; see the grading docs)"
        return prepared
    if "user" in prepared.namespaces:
        try:
            _map_own_ids()
        except OSError as error:  # the namespaces still hold; files made inside may be refused
            missing["uid map"] = f"could not map the user into its namespace: {error}"
    active.append("network cut off")
    active.append("own IPC namespace")
    return prepared


# --- a cgroup per submission ---------------------------------------------------------------------

GROUP_PREFIX = "lm-course-worker-"


def _cgroup2_root() -> str | None:
    try:
        with open("/proc/self/mountinfo") as stream:
            for line in stream:
                fields = line.split()
                if " - cgroup2 " in line:
                    return fields[4]
    except OSError:
        pass
    return None


def _own_group(root: str) -> str | None:
    try:
        with open("/proc/self/cgroup") as stream:
            for line in stream:
                if line.startswith("0::"):
                    return os.path.join(root, line[3:].strip().lstrip("/"))
    except OSError:
        pass
    return None


def group_path(pid: int) -> str | None:
    """The cgroup a worker of this pid would make for itself (None without cgroup v2)."""
    root = _cgroup2_root()
    own = _own_group(root) if root else None
    return os.path.join(own, f"{GROUP_PREFIX}{pid}") if own else None


def join_group(spec: SandboxSpec) -> str | None:
    """Move this worker into a cgroup v2 of its own, with ``memory.max`` and ``pids.max``: a cap on
    the submission's processes together (the rlimits cap each process alone). Returns None when
    done, else why not (no cgroup v2, its memory or pids controller not delegated here, no right
    to create a group)."""
    root = _cgroup2_root()
    if root is None:
        return "no cgroup v2 hierarchy is mounted"
    own = _own_group(root)
    if own is None:
        return "this process is in no cgroup v2 group"
    try:
        with open(os.path.join(own, "cgroup.controllers")) as stream:
            controllers = stream.read().split()
    except OSError as error:
        return f"cgroup v2 unreadable: {error.strerror}"
    if not {"memory", "pids"} <= set(controllers):
        return "the cgroup v2 memory and pids controllers are not available to the grader here"
    group = os.path.join(own, f"{GROUP_PREFIX}{os.getpid()}")
    try:
        with open(os.path.join(own, "cgroup.subtree_control"), "w") as stream:
            stream.write("+memory +pids")
        os.mkdir(group)
        for name, value in (("memory.max", spec.memory_bytes), ("memory.swap.max", 0),
                            ("pids.max", spec.max_processes)):
            if name == "memory.swap.max" and not os.path.exists(os.path.join(group, name)):
                continue
            with open(os.path.join(group, name), "w") as stream:
                stream.write(str(value))
        with open(os.path.join(group, "cgroup.procs"), "w") as stream:
            stream.write("0")
    except OSError as error:
        return f"could not create a cgroup: {error.strerror or error}"
    return None


def remove_group(pid: int) -> None:
    """Remove the cgroup of a worker that has ended (called by the grader)."""
    import time

    path = group_path(pid)
    for _ in range(40):  # the worker's last processes may take a moment to go
        if not path or not os.path.isdir(path):
            return
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.05)


def _map_own_ids() -> None:
    """Map our own uid and gid into the new user namespace, so that files we create are ours."""
    uid, gid = os.getuid(), os.getgid()
    with open("/proc/self/setgroups", "w") as stream:
        stream.write("deny")
    with open("/proc/self/uid_map", "w") as stream:
        stream.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as stream:
        stream.write(f"{gid} {gid} 1")


# --- step 2: the first process inside ----------------------------------------------------------

def enclose(spec: SandboxSpec, prepared: Prepared) -> Protections:
    """Finish the sandbox in the first process of the new namespaces (pid 1 when there is a pid
    namespace), before any code of the submission runs; return the protections in force."""
    protections = prepared.protections
    active, missing = protections.active, protections.missing
    if "pid" in prepared.namespaces:
        active.append("own process-id namespace")
    filesystem = False
    if "mount" in prepared.namespaces:
        try:
            _private_root(spec)
            filesystem = True
            active.append("private filesystem")
        except OSError as error:
            missing["filesystem"] = f"could not build the private root: {error}"
    else:
        missing.setdefault("filesystem", "no mount namespace: the submission can read what the worker's user can")
    if not filesystem:
        os.chdir(spec.workdir)
    shared_count = False
    if prepared.was_root:
        shared_count = not _become_unprivileged(spec, filesystem, protections)
    elif "user" in prepared.namespaces:
        _try(protections, "capabilities", drop_capabilities, "no capabilities")
    else:
        missing["uid"] = "the worker runs as your own user (the grader is not root)"
        shared_count = True
    if _LIBC is not None:
        _try(protections, "no new privileges", lambda: prctl(PR_SET_NO_NEW_PRIVS, 1), "no new privileges")
        _try(protections, "dumpable", lambda: prctl(PR_SET_DUMPABLE, 0), None)
    _limit_processes(spec, shared_count, protections)
    return protections


def _try(protections: Protections, key: str, action, label: str | None) -> bool:
    try:
        action()
    except OSError as error:
        protections.missing[key] = str(error)
        return False
    if label:
        protections.active.append(label)
    return True


def _become_unprivileged(spec: SandboxSpec, filesystem: bool, protections: Protections) -> bool:
    """Root drops to ``spec.uid``, then enters a user namespace of its own so that its process
    count is not shared with other workers running as the same uid. True when it is not shared."""
    if not filesystem and not _readable_by_others(Path(sys.base_prefix)):
        protections.missing["uid"] = (
            f"stays root: Python ({sys.base_prefix}) is not readable by uid {spec.uid} and there is no "
            "private filesystem to show it"
        )
        return False
    try:
        os.setgroups([])
        os.setresgid(spec.uid, spec.uid, spec.uid)
        os.setresuid(spec.uid, spec.uid, spec.uid)
    except OSError as error:
        protections.missing["uid"] = f"could not switch to uid {spec.uid}: {error}"
        return False
    protections.active.append(f"unprivileged uid {spec.uid}")
    if _LIBC is None or not spec.namespaces:
        return False
    try:
        unshare(CLONE_NEWUSER)
        drop_capabilities()
    except OSError as error:
        protections.missing["user namespace"] = f"{error}: the process cap is shared by parallel workers"
        return False
    return True


def _readable_by_others(path: Path) -> bool:
    for folder in [path, *path.parents]:
        try:
            if not folder.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def _limit_processes(spec: SandboxSpec, shared_count: bool, protections: Protections) -> None:
    try:
        import resource
    except ImportError:
        return
    limit = spec.max_processes
    if shared_count and os.getuid() != 0:
        # the count is of every process of this uid: allow the ones already running, plus the cap
        limit += _processes_of(os.getuid())
    try:
        set_limit(resource.RLIMIT_NPROC, limit)
    except (OSError, ValueError) as error:
        protections.missing["processes"] = f"setrlimit failed: {error}"
        return
    if os.getuid() == 0:
        protections.missing["processes"] = "not enforced for root"
    elif shared_count:
        protections.active.append("process cap (shared with the user's other processes)")
    else:
        protections.active.append("process cap")


def _processes_of(uid: int) -> int:
    count = 0
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                count += 1 + max(0, len(list((entry / "task").iterdir())) - 1)
        except OSError:
            continue
    return count


def _private_root(spec: SandboxSpec) -> None:
    """Build a root of read-only system and Python directories, course_lib without the reference,
    a small /tmp and a fresh /proc on a tmpfs over ``spec.workdir``, then pivot into it."""
    new = spec.workdir
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=755")
    # /tmp first: a checkout or virtual environment that lives under /tmp is bound inside it below
    os.makedirs(new + "/tmp")
    mount("tmpfs", new + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={spec.tmp_bytes},nr_inodes=8192,mode=1777")
    readable = [p for p in spec.readable if not p.startswith(("/proc/", "/dev/")) and p not in ("/", "/tmp")]
    for source in _outermost([d for d in SYSTEM_DIRECTORIES if os.path.isdir(d)] + readable):
        if source in SYSTEM_DIRECTORIES and os.path.islink(source):  # /lib -> usr/lib on merged systems
            os.symlink(os.readlink(source), new + source)
        else:
            _bind(source, new + source)
    _bind(spec.overlay_dir, new + spec.package_dir)
    os.makedirs(new + "/dev")
    for device in DEVICES:
        if os.path.exists(f"/dev/{device}"):
            open(f"{new}/dev/{device}", "w").close()
            mount(f"/dev/{device}", f"{new}/dev/{device}", None, MS_BIND)
    os.makedirs(new + "/proc")
    # a fresh /proc shows the processes of this namespace only (the grader's are not there)
    mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(new + "/.old-root")
    _pivot_root(new, new + "/.old-root")
    os.chdir("/")
    _call(_LIBC.umount2(b"/.old-root", ctypes.c_int(MNT_DETACH)), "umount the old root")
    os.rmdir("/.old-root")
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir("/tmp")


def _outermost(paths: list[str]) -> list[str]:
    """Existing paths, dropping any inside another one of the list (its bind brings it along)."""
    existing = sorted({os.path.abspath(p) for p in paths if os.path.isdir(p)})
    kept: list[str] = []
    for path in existing:
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def _bind(source: str, target: str) -> None:
    os.makedirs(target, exist_ok=True)
    mount(source, target, None, MS_BIND | MS_REC)
    # read-only; the flags the original mount locks (nosuid, nodev, noexec) must be kept
    locked = os.statvfs(source).f_flag & (os.ST_NOSUID | os.ST_NODEV | os.ST_NOEXEC)
    mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | locked)


# --- what the grader prepares ------------------------------------------------------------------

def readable_directories(package_dir: str | Path) -> list[str]:
    """The directories the worker's Python needs, and no other: the interpreter's prefixes and its
    standard and site-packages folders. Never ``sys.path`` as such, which holds the current folder
    of whoever started the grader (a script next to the hidden cases and the submissions). In a
    source checkout (course_lib next to pyproject.toml), the checkout is left out (solutions, tests,
    .git), except a virtual environment inside it; course_lib itself is shown as the filtered copy."""
    import site
    import sysconfig

    package_dir = os.path.abspath(package_dir)
    parent = os.path.dirname(package_dir)
    checkout = parent if os.path.isfile(os.path.join(parent, "pyproject.toml")) else None
    prefixes = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    libraries = {sysconfig.get_path(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    try:
        libraries |= set(site.getsitepackages()) | {site.getusersitepackages()}
    except AttributeError:  # a virtual environment's old-style site module
        pass
    candidates = prefixes | {os.path.dirname(os.path.realpath(sys.executable))}
    candidates |= {os.path.abspath(p) for p in libraries if p and os.path.isdir(p)}

    def inside(path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip("/") + "/")

    kept = []
    for path in sorted(candidates):
        if inside(path, package_dir):
            continue  # the copy without the reference is shown there instead
        if checkout and inside(checkout, path):
            continue  # the checkout itself, or a folder holding it
        if checkout and inside(path, checkout) and not any(inside(path, p) for p in prefixes):
            continue
        kept.append(path)
    return kept


def filtered_package_copy(package_dir: Path, destination: Path, hidden: list[str]) -> Path:
    """Copy the course_lib folder into ``destination`` without the modules named in ``hidden``
    (dotted names such as ``course_lib.ngram``) and without compiled files; return the copy."""
    package_dir = Path(package_dir)
    skip = set()
    for name in hidden:
        parts = name.split(".")
        if parts[0] != package_dir.name or len(parts) < 2:
            continue
        relative = Path(*parts[1:])
        skip.update({relative, relative.with_suffix(".py")})

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder).relative_to(package_dir)
        return {n for n in names if n == "__pycache__" or n.endswith(".pyc") or here / n in skip}

    target = Path(destination) / package_dir.name
    shutil.copytree(package_dir, target, ignore=ignore, symlinks=False)
    return target
