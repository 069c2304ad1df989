"""What a failed write means, in words: the cause found in any writer's error (the errno of an
``OSError``, or the text of torch's and safetensors' errors), the free space left on the disk, and
one :class:`~alchemy_engine.errors.WriteFailed` that names the file, the cause and what to do."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path

from alchemy_engine.errors import WriteFailed

log = logging.getLogger(__name__)

__all__ = ["describe_failure", "write_failed"]

_MESSAGE_ERRNO = (  # errno hidden in the text of torch / safetensors errors
    (("no space left", "code: 28", "os error 28", "storagefull"), errno.ENOSPC),
    (("disk quota", "code: 122", "os error 122"), errno.EDQUOT),
    (("read-only file system", "code: 30", "os error 30", "readonlyfilesystem"), errno.EROFS),
    (("input/output error", "code: 5,", "os error 5)"), errno.EIO),
    (("permission denied", "code: 13", "os error 13"), errno.EACCES),
    (("file too large", "code: 27", "os error 27"), errno.EFBIG),
)


def _errno_of(exc: BaseException | None) -> int | None:
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OSError) and exc.errno:
            return exc.errno
        text = str(exc).lower()
        for needles, code in _MESSAGE_ERRNO:
            if any(n in text for n in needles):
                return code
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _existing_parent(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _mount_of(path: Path) -> Path:
    path = _existing_parent(path)
    while not os.path.ismount(path) and path.parent != path:
        path = path.parent
    return path


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(_existing_parent(path)).free
    except OSError:
        return None


def describe_failure(path: str | os.PathLike, exc: BaseException) -> str:
    """The cause of a failed write of ``path`` in words, e.g. "the disk is full: 0.3 MB free on /home"."""
    path = Path(path)
    code = _errno_of(exc)
    free = _free_bytes(path)
    if code is None and free is not None and free < 1 << 20:
        code = errno.ENOSPC  # torch's "file write failed" says no more than that
    if code in (errno.ENOSPC, errno.EDQUOT):
        room = f"{free / 1e6:.1f} MB free" if free is not None else "no space left"
        what = "the disk is full" if code == errno.ENOSPC else "the disk quota is used up"
        return f"{what}: {room} on {_mount_of(path)}"
    if code == errno.EROFS:
        return f"{_mount_of(path)} is read-only"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied on {_existing_parent(path.parent)}"
    if code == errno.EIO:
        return "an input/output error (the disk may be failing or was disconnected)"
    if code == errno.EFBIG:
        return "the file is larger than this file system allows"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    log.warning("writing %s failed: %r", path, exc)  # the library's own words, for the log only
    return "the file system refused the write (the disk may be full, read-only or failing)"


def write_failed(path: str | os.PathLike, exc: BaseException, then: str = "") -> WriteFailed:
    """One user-facing error for a failed write: file, cause, what to do (``then``, a clause such as
    "resume with `train Rex --resume RUN`")."""
    cause = describe_failure(path, exc)
    if "full" in cause or "quota" in cause:
        todo = "free some space"
    elif "read-only" in cause or "permission" in cause:
        todo = "make the folder writable (or choose another one)"
    else:
        todo = "check the disk"
    error = WriteFailed(f"could not write {path}: {cause}; {todo} and {then or 'try again'}. "
                        "Nothing was left half-written.")
    error.errno = _errno_of(exc) or errno.EIO  # str() stays the message alone
    return error
