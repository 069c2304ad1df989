"""Deleted projects: ``data_root()/trash/<slug>-<YYYYmmdd-HHMMSS>-<hex>/``, listed and restored.

:func:`~alchemy_engine.project.store.delete_project` moves a project folder here; nothing is
destroyed until the user empties the folder by hand. :func:`restore_project` moves one back under
``projects_dir()`` with its old slug, refusing when that name is taken again.
"""

from __future__ import annotations

import dataclasses
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from alchemy_engine import paths
from alchemy_engine.atomic import make_dirs
from alchemy_engine.errors import ProjectError
from alchemy_engine.project.schema import PROJECT_FILE, locked, read_project_file

_TRASH_NAME = re.compile(r"^(?P<slug>.+)-(?P<stamp>\d{8}-\d{6})-[0-9a-f]{4}$")


def trash_dir() -> Path:
    return paths.data_root() / "trash"


@dataclasses.dataclass(frozen=True)
class TrashedProject:
    """One deleted project; ``deleted`` is local time as ``YYYY-mm-dd HH:MM:SS`` ("" if unknown)."""

    name: str
    slug: str
    path: Path
    deleted: str

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "path": str(self.path)}


def _describe(folder: Path) -> TrashedProject | None:
    if not (folder / PROJECT_FILE).is_file():
        return None
    match = _TRASH_NAME.match(folder.name)
    slug = match["slug"] if match else folder.name
    deleted = (datetime.strptime(match["stamp"], "%Y%m%d-%H%M%S").strftime("%Y-%m-%d %H:%M:%S")
               if match else "")
    try:
        name = read_project_file(folder)["name"]
    except ProjectError:
        name = slug
    return TrashedProject(name=name, slug=slug, path=folder, deleted=deleted)


def list_trash() -> list[TrashedProject]:
    """Deleted projects that can be restored, most recently deleted first."""
    base = trash_dir()
    if not base.is_dir():
        return []
    found = [t for t in (_describe(child) for child in base.iterdir() if child.is_dir()) if t]
    return sorted(found, key=lambda t: (t.deleted, t.path.name), reverse=True)


def restore_project(trashed: TrashedProject | str | os.PathLike) -> Path:
    """Move a deleted project back to ``projects_dir()/<slug>`` and return its folder.

    ``trashed``: a :class:`TrashedProject`, a trash folder, its name, or a project's slug or name
    (the most recently deleted one of that name).
    """
    entry = _find(trashed)
    target = paths.projects_dir() / entry.slug
    make_dirs(target.parent)
    with locked(paths.projects_dir()):
        if target.exists():
            raise ProjectError(f"Cannot restore {entry.name!r}: a project already uses the folder {target}. "
                               "Rename or delete that project first.")
        try:
            os.rename(entry.path, target)
        except OSError as exc:
            raise ProjectError(f"Cannot move {entry.path} back to {target} ({exc}). Close anything "
                               "using the folder and try again.") from exc
    return target


def _find(trashed: TrashedProject | str | os.PathLike) -> TrashedProject:
    if isinstance(trashed, TrashedProject):
        return trashed
    text = os.fspath(trashed)
    entries = list_trash()
    for entry in entries:
        if text in (str(entry.path), entry.path.name):
            return entry
    for entry in entries:  # newest first
        if text == entry.slug or text.casefold() == entry.name.casefold():
            return entry
    names = ", ".join(sorted({repr(e.name) for e in entries})) or "the trash is empty"
    raise ProjectError(f"No deleted project {text!r} in {trash_dir()} ({names}).")
