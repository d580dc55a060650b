"""Compiled Hyperscan databases kept on disk, so that a start with the same rules skips compilation.

A database is found by a key: the SHA-256 of everything that decides its bytes (each expression, its id
and flags, the mode, this file's format, the Hyperscan library's version and the features it compiles
for on this CPU, the machine and the operating system). A file holds the key again and a digest of the
serialised database; one whose header, key or digest does not check out (truncated, corrupt, written
for other patterns or another machine) is ignored, and the database compiled again and written over it.
Hyperscan does not check a serialised database's body itself, so nothing unchecked reaches it.

Writes go to a temporary file in the same directory, renamed into place: a reader sees a whole file or
none, and two processes that compile the same rules at once both end with a good one. A directory that
cannot be written is not an error: the database is simply compiled next time too.

The directory: ``$AFGW_CACHE_DIR`` when set (empty: no cache), else ``$XDG_CACHE_HOME/afgw``, else
``~/.cache/afgw``; the databases go in its ``hyperscan/`` folder, at most :data:`MAX_FILES` of them (the
least recently used go first). A cached database scans exactly as a freshly compiled one: it is the
same bytes.

A database carries the rules, and its key and digest are public (anyone with the packs can compute
them), so the cache is only as trustworthy as its directory: it is made private (0700), and a
directory that another account could write, or a file that is a link, a FIFO, a device, another
account's or larger than :data:`MAX_BYTES`, is never read (the rules are compiled instead).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import stat
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import hyperscan

__all__ = ["MAX_FILES", "DatabaseCache", "default_cache", "default_directory"]

#: Bumped when the file layout or what goes into a key changes.
FORMAT = b"afgw-hyperscan-cache 1\n"
MAX_FILES = 256
#: The largest file read back: the shipped packs' databases are a few MB; a file beyond this is not ours.
MAX_BYTES = 256 * 1024 * 1024
_SUFFIX = ".hsdb"
_DIGEST = 32


@cache
def _target() -> bytes:
    """The Hyperscan library's version and the CPU features it builds databases for here.

    Hyperscan says both in a database's ``info()``; a one-pattern database costs a millisecond."""
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=[b"a"], ids=[0], flags=[0])
    return repr(db.info()).encode()  # bytes at run time, str in the library's type stubs


def default_directory() -> Path | None:
    """Where the databases go when no directory is given (None: the cache is turned off)."""
    chosen = os.environ.get("AFGW_CACHE_DIR")
    if chosen is not None:
        return Path(chosen) / "hyperscan" if chosen else None
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "afgw" / "hyperscan"
    try:
        home = Path.home()
    except (RuntimeError, KeyError):  # a service account with no home: compile every time
        return None
    return home / ".cache" / "afgw" / "hyperscan"


def default_cache() -> DatabaseCache | None:
    directory = default_directory()
    return DatabaseCache(directory) if directory is not None else None


class DatabaseCache:
    """Serialised databases in ``directory``, by key."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @staticmethod
    def key(expressions: Sequence[bytes], ids: Sequence[int], flags: Sequence[int], mode: int) -> bytes:
        h = hashlib.sha256(FORMAT)
        for part in (_target(), platform.machine().encode(), sys.platform.encode(), str(mode).encode()):
            h.update(len(part).to_bytes(4, "big") + part)
        for expression, ident, flag in zip(expressions, ids, flags, strict=True):
            h.update(len(expression).to_bytes(4, "big") + expression)
            h.update(ident.to_bytes(8, "big", signed=True) + flag.to_bytes(8, "big", signed=True))
        return h.digest()

    def path(self, key: bytes) -> Path:
        return self.directory / (key.hex() + _SUFFIX)

    def load(self, key: bytes, mode: int) -> hyperscan.Database | None:
        """The database stored under ``key``, ready to scan; None when there is none or it is not sound."""
        path = self.path(key)
        data = _read_private(self.directory, path)
        if data is None:
            return None
        head = len(FORMAT)
        payload = data[head + 2 * _DIGEST :]
        if (
            data[:head] != FORMAT
            or data[head : head + _DIGEST] != key
            or data[head + _DIGEST : head + 2 * _DIGEST] != hashlib.sha256(payload).digest()
        ):
            return None
        try:
            db = hyperscan.loadb(payload, mode)
            db.scratch = hyperscan.Scratch(db)
        except hyperscan.error:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept when the directory is pruned
        return db

    def store(self, key: bytes, db: hyperscan.Database) -> None:
        """Write ``db`` under ``key`` (atomically); a directory that cannot be written is left alone."""
        payload = hyperscan.dumpb(db)
        data = FORMAT + key + hashlib.sha256(payload).digest() + payload
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not _private(self.directory):
                return
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=_SUFFIX)
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path(key))
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        self._prune()

    def _prune(self) -> None:
        """Keep the :data:`MAX_FILES` most recently used databases, and no temporary file that a process
        which died while writing it left behind for more than an hour."""
        try:
            found = [(p.stat().st_mtime, p) for p in self.directory.glob("*" + _SUFFIX)]
        except OSError:
            return
        entries = [(mtime, p) for mtime, p in found if not p.name.startswith(".")]
        stale = time.time() - 3600
        for mtime, path in found:
            if path.name.startswith(".tmp-") and mtime < stale:
                with contextlib.suppress(OSError):
                    path.unlink()
        if len(entries) <= MAX_FILES:
            return
        entries.sort()
        for _, path in entries[: len(entries) - MAX_FILES]:
            with contextlib.suppress(OSError):
                path.unlink()


def _private(directory: Path) -> bool:
    """Whether only this user (or root) can put a file in ``directory``: a database is trusted to
    carry the rules, so one that another account could plant is never read, and nothing is written
    where it could be swapped."""
    try:
        st = os.lstat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _read_private(directory: Path, path: Path) -> bytes | None:
    """The bytes of ``path`` when it is a regular file of this user's in a private directory, not a
    link, a FIFO or a device, and no larger than :data:`MAX_BYTES`; None otherwise."""
    if not _private(directory):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        try:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_size > MAX_BYTES:
                return None
            return f.read(MAX_BYTES + 1)
        except OSError:
            return None
