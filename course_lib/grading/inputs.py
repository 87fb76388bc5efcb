"""What ``course grade`` was given: notebooks, folders of notebooks, zip archives of them.

Archives are extracted by the grader with care: a member's name never decides where it is written
(names with ``..``, absolute paths or backslashes are refused), symbolic links are not extracted,
and the number of members, each notebook's size and the total are capped, counting the bytes
actually inflated rather than the sizes the archive declares. A member that cannot be extracted
safely becomes a submission with a clear error and zero points, so that it shows in the gradebook;
so does an archive that cannot be read at all (corrupt, too many members, names that are not text)
and a notebook that is a symbolic link: one bad input never costs the rest of the batch.
"""
from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from course_lib.grading.notebook import MAX_NOTEBOOK_BYTES

MAX_ARCHIVE_MEMBERS = 10_000
MAX_ARCHIVE_BYTES = 2_000_000_000   # inflated, over all the notebooks of an archive
SKIPPED_FOLDERS = {".ipynb_checkpoints", "__MACOSX", ".git"}


class InputError(ValueError):
    """The grader was given something it cannot grade from at all (the message says what)."""


@dataclass(frozen=True)
class Submitted:
    name: str                   # how the gradebook names it: the path given, or archive:member
    path: Path | None           # the notebook to grade; None when it could not be extracted
    problem: str | None = None  # why it could not, for the student and the instructor


def collect(paths: list[str | Path], workspace: Path) -> list[Submitted]:
    """Every submission found in ``paths``; archives are extracted under ``workspace``."""
    found: list[Submitted] = []
    for given in paths:
        path = Path(given)
        if path.is_symlink() and not path.exists():
            raise InputError(f"{path} is a broken symbolic link")
        if not path.exists():
            raise InputError(f"no such file or folder: {path}")
        if path.is_dir():
            notebooks = _notebooks_in(path)
            if not notebooks:
                raise InputError(f"no notebooks (.ipynb) in the folder {path}")
            found.extend(notebooks)
        elif path.suffix.lower() == ".zip":
            found.extend(extract_archive(path, workspace / f"archive{len(found)}"))
        else:
            found.append(Submitted(str(path), path))
    return _unique_names(found)


def _notebooks_in(folder: Path) -> list[Submitted]:
    notebooks = []
    for root, folders, files in os.walk(folder, followlinks=False):
        folders[:] = sorted(f for f in folders if f not in SKIPPED_FOLDERS and not f.startswith("."))
        for name in sorted(files):
            candidate = Path(root) / name
            if not name.endswith(".ipynb") or name.startswith("."):
                continue
            if candidate.is_symlink():
                notebooks.append(Submitted(str(candidate), None, "this notebook is a symbolic link; it was not "
                                                                  "graded (submit the notebook itself)"))
            else:
                notebooks.append(Submitted(str(candidate), candidate))
    return notebooks


def extract_archive(archive: Path, destination: Path) -> list[Submitted]:
    """Extract the notebooks of a zip archive safely; one Submitted per notebook member, or one
    Submitted with the problem when the archive cannot be read at all."""
    try:
        return _extract_archive(archive, destination)
    except _Unreadable as problem:
        return [Submitted(str(archive), None, str(problem))]


class _Unreadable(Exception):
    pass


def _extract_archive(archive: Path, destination: Path) -> list[Submitted]:
    try:
        bundle = zipfile.ZipFile(archive)
    except Exception as error:  # corrupt, truncated, names that are not text: whatever zipfile raises
        raise _Unreadable(f"not a readable zip archive: {type(error).__name__}: {error}") from None
    with bundle:
        members = bundle.infolist()
        if len(members) > MAX_ARCHIVE_MEMBERS:
            raise _Unreadable(f"the archive has {len(members):,} members, over the limit of "
                              f"{MAX_ARCHIVE_MEMBERS:,}; it was not extracted")
        destination.mkdir(parents=True, exist_ok=True)
        submitted, budget, written = [], MAX_ARCHIVE_BYTES, set()
        for member in members:
            if member.is_dir() or not member.filename.lower().endswith(".ipynb"):
                continue
            name = f"{archive.name}:{member.filename}"
            parts = _safe_parts(member.filename)
            if parts is None:
                submitted.append(Submitted(name, None, "the archive names this file with an unsafe path "
                                                       "(absolute, '..' or backslashes); it was not extracted"))
                continue
            if any(part in SKIPPED_FOLDERS for part in parts[:-1]) or parts[-1].startswith("."):
                continue
            if stat.S_ISLNK(member.external_attr >> 16):
                submitted.append(Submitted(name, None, "this archive member is a symbolic link; it was not extracted"))
                continue
            target = destination.joinpath(*parts)
            if target in written:
                submitted.append(Submitted(name, None, "the archive holds two files of this name; "
                                                       "only the first was graded"))
                continue
            try:
                size = _extract_member(bundle, member, target, min(budget, MAX_NOTEBOOK_BYTES))
            except _TooLarge:
                submitted.append(Submitted(name, None, f"the notebook is larger than {MAX_NOTEBOOK_BYTES / 1e6:.0f} MB "
                                                       "once extracted; it was not graded"))
                continue
            except Exception as error:  # a corrupt member, an unsupported compression, a password
                submitted.append(Submitted(name, None, f"could not be extracted from the archive: "
                                                       f"{type(error).__name__}: {error}"))
                continue
            budget -= size
            written.add(target)
            submitted.append(Submitted(name, target))
    return submitted


class _TooLarge(Exception):
    pass


def _safe_parts(name: str) -> tuple[str, ...] | None:
    if "\\" in name or name.startswith("/") or "\x00" in name or (len(name) > 1 and name[1] == ":"):
        return None
    parts = PurePosixPath(name).parts
    if not parts or any(part in ("..", ".", "") for part in parts):
        return None
    return parts


def _extract_member(bundle: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path, limit: int) -> int:
    """Write one member, counting the bytes as they inflate; refuse past ``limit``."""
    if member.file_size > limit:
        raise _TooLarge()
    target.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with open(target, "xb") as sink:
        try:
            with bundle.open(member) as source:
                while chunk := source.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise _TooLarge()
                    sink.write(chunk)
        except BaseException:
            sink.close()
            target.unlink()  # nothing half-written is left behind
            raise
    return size


def _unique_names(found: list[Submitted]) -> list[Submitted]:
    seen: dict[str, int] = {}
    unique = []
    for item in found:
        count = seen.get(item.name, 0) + 1
        seen[item.name] = count
        unique.append(item if count == 1 else Submitted(f"{item.name}#{count}", item.path, item.problem))
    return unique
