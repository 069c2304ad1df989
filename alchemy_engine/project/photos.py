"""The reference photos stored in a project: importing (normalise, stage, commit) and records.

:func:`normalise_photo` adds the reference-photo rules to :func:`~alchemy_engine.image_files.load_rgb`:
at least :data:`MIN_SIDE` px on the short side, a hash of the decoded pixels (duplicates), a
downscale to :data:`MAX_STORED_SIDE` px on the long side (SDXL trains at 1024 px; twice that leaves
room for crops without 40 MB PNGs).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
import unicodedata
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Union

from PIL import Image

from alchemy_engine.atomic import atomic_path, fsync_dir, make_dirs, move, remove_quietly
from alchemy_engine.errors import ImageImportError, ProjectError
from alchemy_engine.image_files import load_rgb, pixel_sha256

log = logging.getLogger(__name__)

MIN_SIDE = 256
"""Reference photos need at least this many pixels on the short side (1024+ works best)."""

MAX_STORED_SIDE = 2048
"""Imported reference photos are downscaled to this long side (never upscaled)."""

STAGING_PREFIX = ".import-"
STALE_STAGING_S = 3600

MASK_SUFFIX = ".mask.png"
"""A reference photo ``<stem>.png`` has a subject mask when ``<stem>.mask.png`` exists."""


@dataclasses.dataclass(frozen=True)
class NormalisedPhoto:
    """A reference photo ready to store: RGB, oriented, at most MAX_STORED_SIDE on the long side."""

    image: Image.Image
    sha256: str  # of the decoded, oriented, full-size RGB pixels (and their size)
    source: Path
    original_size: tuple[int, int]  # (width, height) after orientation, before downscaling


def normalise_photo(path: str | os.PathLike) -> NormalisedPhoto:
    """Load a reference photo with :func:`load_rgb`, check its size, hash it and downscale it."""
    path = Path(path)
    image = load_rgb(path)
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        raise ImageImportError(
            f"{path}: {width}×{height} px is too small; reference photos need at least "
            f"{MIN_SIDE} px on the short side (1024 px or more works best). Use a larger photo.")
    digest = pixel_sha256(image)
    if max(width, height) > MAX_STORED_SIDE:
        scale = MAX_STORED_SIDE / max(width, height)
        new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(new_size, Image.Resampling.LANCZOS)
    return NormalisedPhoto(image=image, sha256=digest, source=path, original_size=(width, height))


# ------------------------------------------------------------------ reference photos of a project

@dataclasses.dataclass(frozen=True)
class ReferencePhoto:
    """A stored reference photo: an RGB PNG in ``references/``, maybe with a subject mask."""

    path: Path
    original_name: str
    sha256: str  # see pixel_sha256; of the photo as decoded, before downscaling
    width: int  # of the stored PNG
    height: int
    caption: str | None = None
    mask_path: Path | None = None  # set when the mask file exists
    imported: str = ""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def default_mask_path(self) -> Path:
        return self.path.with_name(self.path.stem + MASK_SUFFIX)

    @classmethod
    def from_entry(cls, references_dir: Path, entry: dict[str, Any]) -> ReferencePhoto:
        path = references_dir / entry["file"]
        mask = path.with_name(path.stem + MASK_SUFFIX)
        return cls(path=path, original_name=str(entry.get("original_name", entry["file"])),
                   sha256=entry["sha256"], width=int(entry.get("width", 0)),
                   height=int(entry.get("height", 0)), caption=entry.get("caption") or None,
                   mask_path=mask if mask.is_file() else None,
                   imported=str(entry.get("imported", "")))

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.name, "path": str(self.path), "original_name": self.original_name,
                "sha256": self.sha256, "width": self.width, "height": self.height,
                "caption": self.caption,
                "mask_path": str(self.mask_path) if self.mask_path else None}


@dataclasses.dataclass(frozen=True)
class RefusedPhoto:
    path: Path
    reason: str  # a full sentence that names the file and says what to do

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class ImportReport:
    imported: tuple[ReferencePhoto, ...] = ()
    refused: tuple[RefusedPhoto, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"imported": [p.to_dict() for p in self.imported],
                "refused": [r.to_dict() for r in self.refused]}


PhotoRef = Union[ReferencePhoto, str]
"""A photo given as a ReferencePhoto or by its stored file name."""


@dataclasses.dataclass(frozen=True)
class _Staged:
    source: Path
    sha256: str
    size: tuple[int, int]
    tmp: Path


def find_entry(data: dict[str, Any], photo: PhotoRef, project_name: str) -> dict[str, Any]:
    """The ``references`` record of ``photo`` in a project.json dict."""
    name = photo.name if isinstance(photo, ReferencePhoto) else str(photo)
    for entry in data["references"]:
        if entry["file"] == name:
            return entry
    raise ProjectError(f"Project {project_name!r} has no photo {name!r}; it may have been "
                       "removed in another window. Reload the project.")


def stage_and_commit(references_dir: Path, sources: list[Path],
                     mutate: Callable[..., Any]) -> ImportReport:
    """Decode and encode every photo outside the project lock, then, inside ``mutate`` (which
    runs a change on a freshly read project.json under the lock), drop project duplicates, move
    the PNGs to their final names and add their records. If project.json cannot be written, the
    moved photos are removed again (still under the lock): a photo never stays without a record."""
    if not sources:
        return ImportReport()
    make_dirs(references_dir)
    staged, refused = _stage(references_dir, sources)
    moved: list[Path] = []

    def undo() -> None:
        for path in moved:
            remove_quietly(path)

    try:
        imported, duplicates = (mutate(lambda data: _commit(references_dir, data, staged, moved), undo=undo)
                                if staged else ([], []))
    finally:
        for item in staged:
            if item.tmp.exists():
                remove_quietly(item.tmp)
    order = {source: index for index, source in enumerate(sources)}
    refused = sorted(refused + duplicates, key=lambda r: order.get(r.path, len(order)))
    return ImportReport(imported=tuple(imported), refused=tuple(refused))


def _stage(references_dir: Path, sources: list[Path]) -> tuple[list[_Staged], list[RefusedPhoto]]:
    staged: list[_Staged] = []
    refused: list[RefusedPhoto] = []
    seen: dict[str, Path] = {}
    try:
        for source in sources:
            try:
                photo = normalise_photo(source)
            except ImageImportError as exc:
                refused.append(RefusedPhoto(source, str(exc)))
                continue
            if photo.sha256 in seen:
                refused.append(RefusedPhoto(source, f"{source}: the same picture as "
                                            f"{seen[photo.sha256]} earlier in this import; it "
                                            "was imported once."))
                continue
            seen[photo.sha256] = source
            staged.append(_Staged(source, photo.sha256, photo.image.size,
                                  _write_staging_png(references_dir, photo.image)))
    except BaseException:
        for item in staged:
            remove_quietly(item.tmp)
        raise
    return staged, refused


def _write_staging_png(references_dir: Path, image: Image.Image) -> Path:
    """The photo as PNG under a hidden name in ``references/`` (atomic, fsynced)."""
    tmp = references_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}.png"
    with atomic_path(tmp, then="import the photos again") as partial:
        image.save(partial, "PNG")
    return tmp


def _commit(references_dir: Path, data: dict[str, Any], staged: list[_Staged],
            moved: list[Path]) -> tuple[list[ReferencePhoto], list[RefusedPhoto]]:
    """Under the project lock. Files in ``references/`` without a record are leftovers of an
    import that died before its record was written: their names are free again."""
    known = {entry["sha256"]: entry["file"] for entry in data["references"]}
    taken = {entry["file"].casefold() for entry in data["references"]}
    _remove_stale_staging(references_dir)
    imported, refused = [], []
    for item in staged:
        if item.sha256 in known:
            refused.append(RefusedPhoto(item.source, f"{item.source}: the same picture is "
                                        f"already in the project as {known[item.sha256]}; "
                                        "it was skipped."))
            continue
        name = _free_name(item.source, taken)
        taken.add(name.casefold())
        final = references_dir / name
        stale_mask = final.with_name(final.stem + MASK_SUFFIX)
        if stale_mask.exists():  # a leftover mask must not be attached to a new photo
            remove_quietly(stale_mask)
        move(item.tmp, final, then="import the photos again")
        moved.append(final)
        entry = {"file": name, "original_name": item.source.name, "sha256": item.sha256,
                 "width": item.size[0], "height": item.size[1], "caption": None,
                 "imported": _utc_now()}
        data["references"].append(entry)
        known[item.sha256] = name
        imported.append(ReferencePhoto.from_entry(references_dir, entry))
    fsync_dir(references_dir)
    return imported, refused


def _remove_stale_staging(references_dir: Path) -> None:
    """Staged photos of imports that were killed (older than an hour: never one in flight)."""
    cutoff = time.time() - STALE_STAGING_S
    for stale in references_dir.glob(f"{STAGING_PREFIX}*"):
        try:
            old = stale.stat().st_mtime < cutoff
        except FileNotFoundError:
            continue
        if old:
            remove_quietly(stale)


def _free_name(source: Path, taken: set[str]) -> str:
    """``<slug of the original stem>.png``, with -2, -3 ... when taken (no dots: see MASK_SUFFIX)."""
    text = unicodedata.normalize("NFKC", source.stem).casefold()
    stem = re.sub(r"[\W_]+", "-", text).strip("-")[:40].strip("-") or "photo"
    name, counter = f"{stem}.png", 1
    while name.casefold() in taken:
        counter += 1
        name = f"{stem}-{counter}.png"
    return name


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
