"""Fetch a real corpus once, check it, and keep it: ``download(url, sha256)``.

The course itself never downloads anything (its corpora are generated); this is for readers who
want to train on real text. A file is identified by its SHA-256 digest: if the cached copy has
the expected digest the network is not touched; a fresh copy is written to a temporary file next
to its final place, checked, then renamed in one step, so the cache never holds a partial or
corrupted file under the real name. Standard library only.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from course_lib import checks

CACHE_ENV = "LM_COURSE_CACHE"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 16


class DownloadError(OSError):
    """The file could not be fetched (HTTP error, unreachable host, timeout); the message names the URL."""


def default_cache_dir() -> Path:
    """``$LM_COURSE_CACHE`` if set, else ``~/.cache/lm-course``."""
    override = os.environ.get(CACHE_ENV)
    return Path(override).expanduser() if override else Path.home() / ".cache" / "lm-course"


def sha256_of(path: str | Path) -> str:
    """The SHA-256 digest of a file, as 64 lowercase hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _filename_from(url: str) -> str:
    name = urllib.parse.unquote(Path(urllib.parse.urlsplit(url).path).name)
    if not name:
        raise ValueError(f"cannot take a file name from {url!r}; pass filename=")
    return name


def download(
    url: str,
    sha256: str,
    cache_dir: str | Path | None = None,
    filename: str | None = None,
    timeout: float = 30.0,
) -> Path:
    """The path of a verified local copy of ``url``, downloading it only if needed.

    ``sha256`` is the expected digest (64 hex digits). The file is kept in ``cache_dir``
    (default :func:`default_cache_dir`) under ``filename`` (default: the last part of the URL).
    Raises ``ValueError`` naming both digests if the content does not match (nothing is kept),
    and :class:`DownloadError` naming the URL for HTTP and network errors; ``timeout`` is in
    seconds, per blocking network operation.
    """
    checks.text("url", url)
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"url must start with http:// or https://, got {url!r}")
    if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256.strip().lower()):
        raise ValueError(f"sha256 must be 64 hexadecimal digits (as printed by `sha256sum`), got {sha256!r}")
    expected = sha256.strip().lower()
    checks.number("timeout", timeout, above=0.0, what="a positive number of seconds")
    filename = _filename_from(url) if filename is None else filename
    if not isinstance(filename, str) or not filename or filename in (".", "..") or "/" in filename or "\\" in filename:
        raise ValueError(f"filename must be a plain file name without directories, got {filename!r}")

    cache = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    target = cache / filename
    if target.is_file() and sha256_of(target) == expected:
        return target
    cache.mkdir(parents=True, exist_ok=True)

    handle, temporary_name = tempfile.mkstemp(dir=cache, prefix=f".{filename}.", suffix=".part")
    temporary = Path(temporary_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as file:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        digest.update(chunk)
                        file.write(chunk)
            except urllib.error.HTTPError as error:
                raise DownloadError(f"could not download {url}: HTTP {error.code} {error.reason}") from None
            except (urllib.error.URLError, OSError) as error:
                reason = getattr(error, "reason", error)
                raise DownloadError(f"could not download {url}: {reason}") from None
        actual = digest.hexdigest()
        if actual != expected:
            raise ValueError(
                f"checksum mismatch for {url}: expected sha256 {expected}, got {actual}; "
                "the file was not kept (check the URL and the digest)"
            )
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target
