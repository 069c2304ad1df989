"""Atomic file writes, one message for a failed write, and an inter-process lock.

Every file the app writes goes through here: the data lands in a temporary file (or folder) in the
same folder, is flushed and fsynced, then renamed over the target, so a crash or a full disk leaves
either the old file or the new one, never a torn one. Whatever a writer raises when the disk is
full, read-only or failing (``OSError``, torch's ``RuntimeError``, safetensors' ``SafetensorError``,
PIL's ``OSError``) becomes one :class:`~alchemy_engine.errors.WriteFailed` that names the file and
the cause ("the disk is full: 0.3 MB free on /home"), and the temporary is removed.

``fault_hook`` is the seam the fault-injection tests (``tests/faults``) use: when set, it is called
with ``(phase, path)`` at every write point and may raise, as a failing disk would.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from safetensors import SafetensorError as _SafetensorError  # a light import (no torch)

from alchemy_engine.errors import WriteFailed
from alchemy_engine.write_errors import describe_failure, write_failed  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

fault_hook: Callable[[str, Path], None] | None = None
"""Tests only: called at every write point; may raise (see tests/faults)."""

WRITE_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError, _SafetensorError)
"""What a writer raises when the disk fails it: OSError (PIL, open), RuntimeError (torch.save),
SafetensorError (safetensors)."""

_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
"""Mode of every written file: what ``open()`` would give (0644 under the usual umask), never the
0600 of ``mkstemp``."""

def _point(phase: str, path: Path) -> None:
    if fault_hook is not None:
        fault_hook(phase, Path(path))


def remove_quietly(path: Path) -> None:
    """Delete a temporary file or folder; a failure is logged (the caller is already failing)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove the temporary %s: %s", path, exc)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make renames inside ``folder`` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _link_new(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` unless it exists (FileExistsError). A hard link does it
    atomically; on file systems without hard links (FAT, exFAT, some network shares) a check and
    a rename do it as well as they can."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS):
            raise
        if target.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(target)) from exc
        os.replace(tmp, target)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, then: str = "", *, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically.

    Use for writers that want a file name (``save_file``, ``Image.save``, ``torch.save``). The
    temporary keeps the target's suffix so format detection by extension still works. A failed
    write raises :class:`WriteFailed` (``then`` says what to do after fixing the cause).
    ``exclusive``: never replace an existing ``target``; raise FileExistsError instead (two
    processes picking the same new name both keep their file).
    """
    target = Path(target)
    tmp: Path | None = None
    try:
        _point("open", target)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}",
                                        dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        os.chmod(tmp, FILE_MODE)
        yield tmp
        _point("commit", target)
        _fsync_file(tmp)
        if exclusive:
            _link_new(tmp, target)
        else:
            os.replace(tmp, target)
        fsync_dir(target.parent)
    except (WriteFailed, FileExistsError):
        raise
    except WRITE_ERRORS as exc:
        raise write_failed(target, exc, then) from exc
    finally:
        if tmp is not None and tmp.exists():
            remove_quietly(tmp)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, then: str = "") -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; on success it is renamed to ``target``
    (which must not exist) with every file fsynced. On failure the staging folder is removed.
    Write the files inside with :func:`write_file`, so a failure names the file."""
    target = Path(target)
    staging = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    try:
        _point("open", target)
        staging.mkdir(parents=True)
        yield staging
        _point("commit", target)
        for file in staging.rglob("*"):
            if file.is_file():
                _fsync_file(file)
        os.replace(staging, target)
        fsync_dir(target.parent)
    except WriteFailed:
        raise
    except WRITE_ERRORS as exc:
        raise write_failed(target, exc, then) from exc
    finally:
        if staging.exists():
            remove_quietly(staging)


def write_file(path: Path, writer: Callable[[Path], Any], *, shown_as: Path | None = None,
               then: str = "") -> None:
    """Write one file inside a staging folder with ``writer(path)`` (no rename of its own); a
    failure is reported under the file's final name ``shown_as``."""
    try:
        _point("write", shown_as or path)
        writer(path)
        os.chmod(path, FILE_MODE)
    except WRITE_ERRORS as exc:
        raise write_failed(shown_as or path, exc, then) from exc


def append_text(target: str | os.PathLike, text: str, then: str = "") -> None:
    """Append to a log file (``loss.csv``); its reader skips a row cut short by a crash."""
    target = Path(target)
    try:
        _point("append", target)
        with open(target, "a", encoding="utf-8", newline="") as handle:
            handle.write(text)
    except WRITE_ERRORS as exc:
        raise write_failed(target, exc, then) from exc


def move(source: Path, target: Path, then: str = "") -> None:
    """Rename ``source`` over ``target`` (same folder), reported like any other write."""
    try:
        _point("move", target)
        os.replace(source, target)
    except WRITE_ERRORS as exc:
        raise write_failed(target, exc, then) from exc


def delete_file(target: str | os.PathLike, then: str = "") -> None:
    """Remove a file (gone already is fine), reported like any other write."""
    target = Path(target)
    try:
        _point("delete", target)
        target.unlink(missing_ok=True)
    except WRITE_ERRORS as exc:
        raise write_failed(target, exc, then) from exc


def make_dirs(folder: str | os.PathLike, then: str = "") -> Path:
    """``mkdir -p``, reported like any other write."""
    folder = Path(folder)
    try:
        _point("mkdir", folder)
        folder.mkdir(parents=True, exist_ok=True)
    except WRITE_ERRORS as exc:
        raise write_failed(folder, exc, then) from exc
    return folder


def atomic_copy(source: str | os.PathLike, target: str | os.PathLike, then: str = "", *,
                exclusive: bool = False) -> Path:
    """Copy a file so that ``target`` is either absent or complete."""
    with atomic_path(target, then, exclusive=exclusive) as tmp:
        shutil.copyfile(source, tmp)
    return Path(target)


def write_new(folder: str | os.PathLike, stem: str, suffix: str,
              write: Callable[[Path], Any]) -> Path:
    """Write a new file ``folder/stem{suffix}`` (or ``stem-2``, ``stem-3`` …), never replacing
    one, even when another process picks the same name at the same moment. ``write(target)``
    must call an atomic writer with ``exclusive=True``; returns the path written."""
    folder = Path(folder)
    for n in range(1, 100_000):
        target = folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
        if target.exists() or target.is_symlink():
            continue
        try:
            write(target)
            return target
        except FileExistsError:
            continue
    raise WriteFailed(f"could not find a free file name for {folder / stem}{suffix}; clear out {folder}")


def atomic_write_bytes(target: str | os.PathLike, data: bytes, then: str = "") -> None:
    with atomic_path(target, then) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str, then: str = "") -> None:
    atomic_write_bytes(target, text.encode("utf-8"), then)


def atomic_write_json(target: str | os.PathLike, obj: Any, then: str = "") -> None:
    atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", then)


class FileLockTimeout(TimeoutError):
    pass


class FileLock:
    """An exclusive advisory lock on ``path`` held across processes (fcntl / msvcrt).

    The OS releases it when the holder dies, even under ``kill -9``, so no stale lock survives.
    """

    def __init__(self, path: str | os.PathLike, timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a read-only or vanished folder: say so, no traceback
            raise write_failed(self.path, exc) from exc
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                _lock_fd(fd)
                self._fd = fd
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise FileLockTimeout(f"{self.path} is held by another process") from None
                time.sleep(0.05)
            except BaseException:  # e.g. ENOLCK on a network drive: do not leak the descriptor
                os.close(fd)
                raise

    def describe(self, text: str) -> None:
        """Write who holds the lock into the lock file, for :func:`read_description`."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.write(self._fd, text.encode("utf-8")[:4096])

    @staticmethod
    def read_description(path: str | os.PathLike) -> str:
        try:
            with open(path, "rb") as handle:
                return handle.read(4096).decode("utf-8", errors="replace").strip()
        except OSError:
            return ""

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False at once if another process holds it."""
        previous, self.timeout = self.timeout, 0.0
        try:
            self.acquire()
            return True
        except FileLockTimeout:
            return False
        finally:
            self.timeout = previous

    def release(self) -> None:
        if self._fd is not None:
            _unlock_fd(self._fd)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_fd(fd: int) -> None:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError as exc:
            raise BlockingIOError(str(exc)) from exc

    def _unlock_fd(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]

else:
    import fcntl

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
