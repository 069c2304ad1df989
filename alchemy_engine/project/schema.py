"""What ``project.json`` may hold: the schema version, checks on names, tokens and class
nouns, reading (with migration of older files), and the project lock.

Reading never writes: a damaged file, or one from a newer Image Alchemy, is reported with a
:class:`ProjectError` and left exactly as it is.
"""

from __future__ import annotations

import contextlib
import json
import re
import unicodedata
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alchemy_engine.atomic import FileLock, FileLockTimeout
from alchemy_engine.errors import InvalidRequest, ProjectError
from alchemy_engine.safe_read import read_json

SCHEMA_VERSION = 1
PROJECT_FILE = "project.json"
LOCK_FILE = ".lock"
LOCK_TIMEOUT_S = 30.0
_TOKEN_RE = re.compile(r"[A-Za-z0-9]{1,32}")
_NOUN_RE = re.compile(r"[^\W_]+(?:[ '-][^\W_]+)*")
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                     *(f"lpt{i}" for i in range(10))}


def slugify(name: str) -> str:
    """Folder name for a project name: lower-case words joined by '-', at most 60 characters."""
    text = unicodedata.normalize("NFKC", name).casefold()
    slug = re.sub(r"[\W_]+", "-", text).strip("-")[:60].strip("-") or "project"
    return f"{slug}-project" if slug in _WINDOWS_RESERVED else slug


def validate_name(name: str) -> str:
    clean = " ".join(str(name).split())
    if not clean:
        raise InvalidRequest("The project name is empty. Give the project a name.")
    if len(clean) > 100:
        raise InvalidRequest("The project name is longer than 100 characters. Shorten it.")
    return clean


def validate_token(token: str) -> str:
    if not _TOKEN_RE.fullmatch(str(token)):
        raise InvalidRequest(f"Token {token!r} must be one word of letters and digits (at most "
                             "32), such as 'sks'. Choose a rare word.")
    return str(token)


def validate_class_noun(class_noun: str, token: str | None = None) -> str:
    clean = " ".join(str(class_noun).split())
    if not _NOUN_RE.fullmatch(clean) or len(clean) > 60:
        raise InvalidRequest(f"Class noun {class_noun!r} must be one or a few plain words that "
                             "say what the subject is, such as 'dog' or 'coffee mug'.")
    if token is not None and clean.casefold() == token.casefold():
        raise InvalidRequest(f"The token {token!r} must differ from the class noun; use a rare "
                             "word such as 'sks'.")
    return clean


def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(settings, dict):
        raise InvalidRequest("Project settings must be a dictionary of names to values.")
    try:
        return json.loads(json.dumps(settings))
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"Project settings must be plain JSON values ({exc}).") from exc


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _damaged(path: Path, detail: str) -> ProjectError:
    return ProjectError(f"{path} is damaged ({detail}). It was left untouched: fix it by hand or "
                        "restore it from a backup, then try again.")


def read_project_file(root: Path) -> dict[str, Any]:
    """Read, check and migrate ``root/project.json``; never writes."""
    path = root / PROJECT_FILE
    if not path.is_file():
        raise ProjectError(f"{root} is not an Image Alchemy project (no {PROJECT_FILE}); it may "
                           "have been moved or deleted. Open or create a project.")
    data = read_json(path, what="project file", damaged=lambda detail: _damaged(path, detail),
                     error=ProjectError)
    if not isinstance(data, dict):
        raise _damaged(path, "it does not hold a JSON object")
    version = data.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise _damaged(path, f"schema_version {version!r} is not a version number")
    if version > SCHEMA_VERSION:
        raise ProjectError(f"{path} was made by a newer Image Alchemy (project format {version}; "
                           f"this version reads up to {SCHEMA_VERSION}). Update Image Alchemy "
                           "to open it.")
    if version < 1:
        data = _migrate_v0(data, root)
    _check_fields(data, path)
    return data


def _migrate_v0(data: dict[str, Any], root: Path) -> dict[str, Any]:
    """Files from before schema versions: only name, token and class noun were required."""
    stamp = datetime.fromtimestamp((root / PROJECT_FILE).stat().st_mtime, timezone.utc)
    created = stamp.isoformat(timespec="seconds").replace("+00:00", "Z")
    defaults = {"slug": root.name, "token": "sks", "settings": {}, "references": [],
                "created": created, "modified": created}
    return {**defaults, **data, "schema_version": SCHEMA_VERSION}


MAX_PHOTOS = 1000
MAX_SETTINGS_DEPTH = 8
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def _check_fields(data: dict[str, Any], path: Path) -> None:
    """Types and bounds of every field the app uses; anything else is reported as damage."""
    for key, kind in (("name", str), ("token", str), ("class_noun", str), ("settings", dict),
                      ("references", list)):
        if not isinstance(data.get(key), kind):
            raise _damaged(path, f"field {key!r} is missing or not a {kind.__name__}")
    for key in ("slug", "created", "modified"):
        if key in data and not (isinstance(data[key], str) and len(data[key]) <= 200):
            raise _damaged(path, f"field {key!r} is not a short text")
    try:
        validate_name(data["name"])
        validate_class_noun(data["class_noun"], validate_token(data["token"]))
    except InvalidRequest as exc:
        raise _damaged(path, str(exc)) from exc
    if _depth(data["settings"]) > MAX_SETTINGS_DEPTH:
        raise _damaged(path, "its settings are nested too deeply")
    if len(data["references"]) > MAX_PHOTOS:
        raise _damaged(path, f"it lists more than {MAX_PHOTOS} photos")
    for entry in data["references"]:
        problem = _photo_record_problem(entry)
        if problem:
            raise _damaged(path, f"reference entry {str(entry)[:120]} is not a photo record ({problem})")


def _photo_record_problem(entry: Any) -> str:
    if not isinstance(entry, dict):
        return "not an object"
    name = entry.get("file")
    if not (isinstance(name, str) and 0 < len(name) <= 255 and "/" not in name and "\\" not in name
            and not name.startswith(".") and name.isprintable()):
        return "'file' is not a plain file name"
    if not (isinstance(entry.get("sha256"), str) and _SHA256_RE.fullmatch(entry["sha256"])):
        return "'sha256' is not a SHA-256 hex digest"
    for key in ("width", "height"):
        value = entry.get(key, 0)
        if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100_000):
            return f"{key!r} is not a pixel count"
    for key, limit in (("caption", 10_000), ("original_name", 1000), ("imported", 200)):
        value = entry.get(key)
        if value is not None and not (isinstance(value, str) and len(value) <= limit):
            return f"{key!r} is not a text of at most {limit} characters"
    return ""


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_SETTINGS_DEPTH or not isinstance(value, (dict, list)):
        return level
    children = value.values() if isinstance(value, dict) else value
    return max((_depth(child, level + 1) for child in children), default=level + 1)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    lock = FileLock(folder / LOCK_FILE, timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()  # a read-only folder raises WriteFailed, which says so
    except FileLockTimeout as exc:
        raise ProjectError(f"{folder} is busy: another Image Alchemy window or command is "
                           "changing it. Wait for it to finish, then try again.") from exc
    try:
        yield
    finally:
        lock.release()
