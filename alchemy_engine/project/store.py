"""A project on disk: ``projects_dir()/<slug>/`` with ``project.json`` and its folders.

Layout: ``project.json`` (the record), ``references/`` (normalised PNG photos, subject masks
``<stem>.mask.png``), ``runs/``, ``scenes/``, ``outputs/`` and ``cache/`` (safe to delete).
The folder name is the slug and is the truth for finding a project; captions live in
``project.json``; a photo has a mask exactly when its mask file exists.

Concurrency: every change is a read-modify-write of ``project.json`` under ``<project>/.lock``
(an OS file lock), re-reading the file inside the lock, so two processes changing one project
both land. Creating, renaming and deleting projects also hold ``projects_dir()/.lock``.
Every write is atomic (:mod:`alchemy_engine.atomic`); a damaged or newer ``project.json`` is
reported and never overwritten.
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from alchemy_engine import paths
from alchemy_engine.atomic import atomic_write_json, make_dirs, move, remove_quietly
from alchemy_engine.errors import ImageImportError, ProjectError
from alchemy_engine.project.locks import refuse_if_busy
from alchemy_engine.project.photos import (
    ImportReport,
    PhotoRef,
    ReferencePhoto,
    RefusedPhoto,
    find_entry,
    stage_and_commit,
)
from alchemy_engine.project.reference_masks import write_mask
from alchemy_engine.project.schema import (
    PROJECT_FILE,
    SCHEMA_VERSION,
    check_settings,
    locked,
    read_project_file,
    slugify,
    utc_now,
    validate_class_noun,
    validate_name,
    validate_token,
)
from alchemy_engine.project.trash import trash_dir

__all__ = ["SCHEMA_VERSION", "Project", "ProjectSummary", "ReferencePhoto", "RefusedPhoto",
           "ImportReport", "create_project", "list_projects", "open_project", "rename_project",
           "delete_project", "slugify", "validate_name", "validate_token", "validate_class_noun"]

T = TypeVar("T")
SUBDIRS = ("references", "runs", "scenes", "outputs", "cache")


@dataclasses.dataclass(frozen=True)
class ProjectSummary:
    """One row of :func:`list_projects`; ``error`` is set (and the rest may be empty) when the
    project cannot be opened."""

    name: str
    slug: str
    path: Path
    token: str = ""
    class_noun: str = ""
    photo_count: int = 0
    modified: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "path": str(self.path)}


class Project:
    """An open project. Every method that changes it saves at once, under the project lock."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().resolve()
        self._data = read_project_file(self.root)
        self.last_import: ImportReport | None = None  # report of this object's latest import

    def __repr__(self) -> str:
        return f"Project({self.name!r}, root={str(self.root)!r})"

    name = property(lambda self: self._data["name"])
    token = property(lambda self: self._data["token"])
    class_noun = property(lambda self: self._data["class_noun"])
    created = property(lambda self: self._data.get("created", ""))
    modified = property(lambda self: self._data.get("modified", ""))
    slug = property(lambda self: self.root.name, doc="The folder name; it follows renames.")
    project_file = property(lambda self: self.root / PROJECT_FILE)
    references_dir = property(lambda self: self.root / "references")
    runs_dir = property(lambda self: self.root / "runs")
    scenes_dir = property(lambda self: self.root / "scenes")
    outputs_dir = property(lambda self: self.root / "outputs")
    cache_dir = property(lambda self: self.root / "cache", doc="Safe to delete; may be missing.")

    @property
    def settings(self) -> dict[str, Any]:
        """A copy; change settings with :meth:`update`."""
        return json.loads(json.dumps(self._data["settings"]))

    @property
    def instance_prompt(self) -> str:
        """The subject phrase for training and insertion, e.g. ``"sks dog"``."""
        return f"{self.token} {self.class_noun}"

    def reload(self) -> None:
        """Re-read ``project.json`` (other processes may have changed it)."""
        self._data = read_project_file(self.root)

    def reference_photos(self) -> list[ReferencePhoto]:
        return [ReferencePhoto.from_entry(self.references_dir, e) for e in self._data["references"]]

    def photo(self, photo: PhotoRef) -> ReferencePhoto:
        """Look a photo up by its stored file name (or refresh a ReferencePhoto)."""
        return ReferencePhoto.from_entry(self.references_dir,
                                         find_entry(self._data, photo, self.name))

    def import_photos(self, photo_paths: Iterable[str | os.PathLike]) -> ImportReport:
        """Import photos one by one; refused ones are reported with the reason.

        Raises :class:`ImageImportError` when photos were given and none could be imported.
        """
        self._require_here()
        report = stage_and_commit(self.references_dir, [Path(p) for p in photo_paths],
                                  self._mutate)
        if report.refused and not report.imported:
            raise ImageImportError("No photo was imported. " +
                                   " ".join(r.reason for r in report.refused))
        self.last_import = report
        return report

    def remove_photo(self, photo: PhotoRef) -> None:
        """Forget a photo and delete its stored copy and mask (the original is not touched)."""
        def change(data: dict[str, Any]) -> ReferencePhoto:
            entry = find_entry(data, photo, self.name)
            data["references"].remove(entry)
            return ReferencePhoto.from_entry(self.references_dir, entry)

        removed = self._mutate(change)
        removed.path.unlink(missing_ok=True)
        removed.default_mask_path.unlink(missing_ok=True)

    def set_mask(self, photo: PhotoRef, mask: Any) -> ReferencePhoto:
        """Store a subject mask (PIL image or 2-D array, white = subject) of the photo's size;
        ``None`` removes it."""
        def change(data: dict[str, Any]) -> None:
            ref = ReferencePhoto.from_entry(self.references_dir, find_entry(data, photo, self.name))
            write_mask(ref, mask)

        self._mutate(change)
        return self.photo(photo)

    def set_caption(self, photo: PhotoRef, caption: str | None) -> ReferencePhoto:
        text = " ".join(str(caption).split()) if caption is not None else ""

        def change(data: dict[str, Any]) -> None:
            find_entry(data, photo, self.name)["caption"] = text or None

        self._mutate(change)
        return self.photo(photo)

    def update(self, *, token: str | None = None, class_noun: str | None = None,
               settings: dict[str, Any] | None = None) -> None:
        """Change the token or class noun, and merge ``settings`` key by key (None deletes)."""
        token = validate_token(token) if token is not None else None
        class_noun = validate_class_noun(class_noun) if class_noun is not None else None
        settings = check_settings(settings) if settings is not None else {}

        def change(data: dict[str, Any]) -> None:
            validate_class_noun(class_noun or data["class_noun"], token or data["token"])
            data["token"] = token or data["token"]
            data["class_noun"] = class_noun or data["class_noun"]
            for key, value in settings.items():
                if value is None:
                    data["settings"].pop(key, None)
                else:
                    data["settings"][key] = value

        self._mutate(change)

    def new_run_dir(self) -> Path:
        """Create and return an empty, unique ``runs/<YYYYmmdd-HHMMSS>-<hex>/`` folder."""
        self._require_here()
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        for _ in range(20):
            run = self.runs_dir / f"{stamp}-{uuid.uuid4().hex[:6]}"
            try:
                run.mkdir(parents=True)
                return run
            except FileExistsError:
                continue
        raise ProjectError(f"Could not create a new run folder in {self.runs_dir}. Check it.")

    def save(self) -> None:
        """Rewrite ``project.json`` in the current format (changes are saved as they happen)."""
        self._mutate(lambda data: None)

    def summary(self) -> ProjectSummary:
        return ProjectSummary(name=self.name, slug=self.slug, path=self.root, token=self.token,
                              class_noun=self.class_noun, modified=self.modified,
                              photo_count=len(self._data["references"]))

    def to_dict(self) -> dict[str, Any]:
        runs = sorted(p.name for p in self.runs_dir.iterdir()) if self.runs_dir.is_dir() else []
        return {"name": self.name, "slug": self.slug, "path": str(self.root),
                "token": self.token, "class_noun": self.class_noun, "created": self.created,
                "modified": self.modified, "settings": self.settings,
                "photos": [p.to_dict() for p in self.reference_photos()], "runs": runs}

    def _require_here(self) -> None:
        """Refuse to write into a folder that was renamed or deleted (never recreate it)."""
        if not self.project_file.is_file():
            raise ProjectError(f"Project {self.name!r} is no longer at {self.root}; it was "
                               "renamed or deleted. Open it again.")

    def _mutate(self, change: Callable[[dict[str, Any]], T],
                undo: Callable[[], None] | None = None) -> T:
        """Read-modify-write ``project.json`` under the project lock; re-reads inside it.
        ``undo`` reverts files ``change`` made when the record cannot be saved (under the lock)."""
        self._require_here()
        with locked(self.root):
            try:
                data = read_project_file(self.root)
                result = change(data)
                data["schema_version"] = SCHEMA_VERSION
                data["modified"] = utc_now()
                atomic_write_json(self.project_file, data, then="try again (the previous version is kept)")
            except BaseException:
                if undo is not None:
                    undo()
                raise
            self._data = data
        return result


def _as_project(project: Project | str | os.PathLike) -> Project:
    return project if isinstance(project, Project) else open_project(project)


def open_project(ref: str | os.PathLike) -> Project:
    """Open by name, slug, project folder or ``project.json`` path."""
    text = os.fspath(ref)
    looks_like_path = os.sep in text or bool(os.altsep and os.altsep in text)
    if isinstance(ref, os.PathLike) or (looks_like_path and Path(text).expanduser().exists()):
        root = Path(text).expanduser()
        return Project(root.parent if root.name == PROJECT_FILE else root)
    candidate = paths.projects_dir() / slugify(text)
    if (candidate / PROJECT_FILE).is_file():
        return Project(candidate)
    known = [s for s in list_projects() if s.error is None]
    for summary in known:
        if summary.name.casefold() == text.casefold():
            return Project(summary.path)
    names = ", ".join(repr(s.name) for s in known) or "none yet"
    raise ProjectError(f"No project named {text!r} (projects: {names}). Check the name, or "
                       "create it with `image-alchemy project create`.")


def list_projects() -> list[ProjectSummary]:
    """Every project folder, by name; ones that cannot be opened carry an ``error``."""
    base = paths.projects_dir()
    if not base.is_dir():
        return []
    found = []
    for child in base.iterdir():
        if child.name.startswith(".") or not child.is_dir():
            continue
        try:
            found.append(Project(child).summary())
        except ProjectError as exc:
            found.append(ProjectSummary(name=child.name, slug=child.name, path=child,
                                        error=str(exc)))
    return sorted(found, key=lambda s: (s.name.casefold(), s.slug))


def _refuse_existing(target: Path, name: str) -> None:
    if target.exists() or target.is_symlink():
        what = "a project" if (target / PROJECT_FILE).exists() else "a folder"
        raise ProjectError(f"Cannot use the name {name!r}: {what} already exists at {target}. "
                           "Choose another name.")


def create_project(name: str, *, class_noun: str, token: str = "sks",
                   images: Iterable[str | os.PathLike] = (),
                   settings: dict[str, Any] | None = None) -> Project:
    """Create a project, importing ``images`` first; nothing is created if every photo is
    refused (:class:`ImageImportError`). The import report is ``project.last_import``."""
    name, token = validate_name(name), validate_token(token)
    class_noun = validate_class_noun(class_noun, token)
    settings = check_settings(settings or {})
    base, slug, images = paths.projects_dir(), slugify(name), list(images)
    _refuse_existing(base / slug, name)
    staging = base / f".new-{slug}-{uuid.uuid4().hex[:8]}"
    try:
        for sub in SUBDIRS:
            make_dirs(staging / sub)
        atomic_write_json(staging / PROJECT_FILE, {
            "schema_version": SCHEMA_VERSION, "name": name, "slug": slug, "token": token,
            "class_noun": class_noun, "created": utc_now(), "modified": utc_now(),
            "settings": settings, "references": []})
        report = Project(staging).import_photos(images) if images else None
        with locked(base):
            _refuse_existing(base / slug, name)
            move(staging, base / slug)
    finally:
        if staging.exists():
            remove_quietly(staging)
    project = Project(base / slug)
    if report is not None:
        project.last_import = ImportReport(
            imported=tuple(project.photo(p.name) for p in report.imported),
            refused=report.refused)
    return project


def _move_project_dir(source: Path, target: Path) -> None:
    """Move a project folder once no other process is writing to it."""
    if source.parent.resolve() != paths.projects_dir().resolve():
        raise ProjectError(f"{source} is outside {paths.projects_dir()}; Image Alchemy only "
                           "renames or deletes projects it keeps there. Use your file manager.")
    if not (source / PROJECT_FILE).is_file():  # the lock would recreate a vanished folder
        raise ProjectError(f"There is no project at {source} any more. Reload the project list.")
    make_dirs(target.parent)
    with locked(source):  # waits for a writer in another process to finish
        refuse_if_busy(source, "rename or delete")
        if os.name != "nt":
            _rename(source, target)
    if os.name == "nt":  # pragma: no cover - Windows cannot rename a folder with an open file
        _rename(source, target)


def _rename(source: Path, target: Path) -> None:
    try:
        os.rename(source, target)
    except OSError as exc:
        raise ProjectError(f"Cannot move {source} to {target} ({exc}). Close anything using "
                           "the project folder and try again.") from exc


def rename_project(project: Project | str | os.PathLike, new_name: str) -> Project:
    """Give a project a new name; its folder follows the new slug. Returns the renamed project
    (the old object points at a folder that no longer exists)."""
    project, new_name = _as_project(project), validate_name(new_name)
    base, new_slug = paths.projects_dir(), slugify(new_name)
    with locked(base):
        root = project.root
        if new_slug != project.slug:
            _refuse_existing(base / new_slug, new_name)
            _move_project_dir(project.root, root := base / new_slug)
        renamed = Project(root)

        def change(data: dict[str, Any]) -> None:
            data["name"], data["slug"] = new_name, new_slug

        try:
            renamed._mutate(change)
        except BaseException:  # the record keeps the old name: so does the folder
            if root != project.root:
                _move_project_dir(root, project.root)
            raise
    return renamed


def delete_project(project: Project | str | os.PathLike) -> Path:
    """Move a project folder to ``data_root()/trash/<slug>-<time>/`` and return that path.

    Nothing is destroyed: :func:`~alchemy_engine.project.trash.restore_project` brings it back;
    empty the trash folder by hand to free the space.
    """
    project = _as_project(project)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = trash_dir() / f"{project.slug}-{stamp}-{uuid.uuid4().hex[:4]}"
    with locked(paths.projects_dir()):
        _move_project_dir(project.root, target)
    return target
