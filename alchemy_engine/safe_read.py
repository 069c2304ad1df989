"""Reading files from disk as data, never trusting them: regular files only, sizes checked first.

A FIFO given as a photo would block ``open()`` forever, a device would read without end, and a
multi-gigabyte "JSON" file would exhaust memory; so every file is ``stat``-ed before it is opened
and refused with a message naming it. JSON is parsed with NaN/Infinity refused and deep nesting
caught.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alchemy_engine.errors import AlchemyError

MAX_JSON_BYTES = 16 * 1024 * 1024
"""No JSON file the app writes comes near this (project.json, train_request.json, state.json)."""


def _size_text(size: int) -> str:
    return f"{size / 1e6:,.1f} MB" if size >= 1e6 else f"{size:,} bytes"


def regular_file(path: str | os.PathLike, *, max_bytes: int, what: str,
                 error: Callable[[str], Exception] = AlchemyError) -> int:
    """The size of ``path`` if it is a regular file of at most ``max_bytes``; else ``error(message)``.

    Symlinks are followed (a link to a photo is fine); pipes, devices and sockets are refused.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: file not found. Check the path and try again.") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc}). Check that you may read it.") from exc
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path}: is a folder, not a {what}. Choose a file.")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: is not a regular file (a pipe, device or socket), so it cannot be a "
                    f"{what}. Choose a {what} file.")
    if info.st_size > max_bytes:
        raise error(f"{path}: {_size_text(info.st_size)} is over the {_size_text(max_bytes)} limit "
                    f"for a {what}. Is it the right file?")
    return info.st_size


def read_bytes(path: str | os.PathLike, *, max_bytes: int, what: str,
               error: Callable[[str], Exception] = AlchemyError) -> bytes:
    regular_file(path, max_bytes=max_bytes, what=what, error=error)
    try:
        with open(path, "rb") as handle:
            return handle.read(max_bytes + 1)[:max_bytes]
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc}). Check that you may read it.") from exc


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def parse_json(text: str | bytes) -> Any:
    """``json.loads`` that refuses NaN, Infinity and overflowing numbers; raises ValueError for
    anything malformed (deep nesting included)."""
    try:
        return json.loads(text, parse_constant=_no_constants, parse_float=_finite)
    except RecursionError as exc:
        raise ValueError("it is nested too deeply") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8 text ({exc.reason})") from exc


def read_json(path: str | os.PathLike, *, what: str, damaged: Callable[[str], Exception],
              error: Callable[[str], Exception] = AlchemyError, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Read a JSON file; ``damaged(detail)`` is raised when it does not parse."""
    data = read_bytes(path, max_bytes=max_bytes, what=what, error=error)
    try:
        return parse_json(data)
    except ValueError as exc:
        raise damaged(str(exc)) from exc
