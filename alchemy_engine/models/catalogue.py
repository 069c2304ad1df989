"""The catalogue of models the app can fetch on request (``resources/models/catalogue.json``), and
what of it is already on this computer.

One entry per model: what it is for, its Hub repo and revision, its files with sizes and sha256,
its licence with a link, and ``target``, the folder under ``<data>/models/`` it goes to (where
the inventory looks: ``sdxl``, ``sam``, ``detector/<name>``, ``eval/<name>``). Only
``.safetensors`` files, JSON/text configs and SAM's ``.pth`` may be listed: a catalogue naming
any other pickle is refused when read. ``IMAGE_ALCHEMY_CATALOGUE`` names another catalogue file
(tests, mirrors with their own model list).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from alchemy_engine import paths
from alchemy_engine.errors import ModelError

CATALOGUE_ENV = "IMAGE_ALCHEMY_CATALOGUE"
DOWNLOADS_DIR = ".downloads"  # partial files and locks, under models/
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ALLOWED = (".safetensors", ".json", ".txt", ".model")


@dataclass(frozen=True)
class CatalogueFile:
    path: str  # the path in the repo
    size: int
    sha256: str | None  # None: checked against the sha256 the Hub publishes

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name


@dataclass(frozen=True)
class CatalogueModel:
    id: str
    title: str
    used_for: str
    required: bool
    repo: str
    revision: str
    target: str  # folder under models/
    licence: str
    licence_url: str
    files: tuple[CatalogueFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def folder(self) -> Path:
        return paths.models_dir() / self.target

    def destination(self, file: CatalogueFile) -> Path:
        return self.folder() / file.name

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "used_for": self.used_for, "required": self.required,
                "repo": self.repo, "revision": self.revision, "folder": str(self.folder()),
                "licence": self.licence, "licence_url": self.licence_url, "size_bytes": self.size,
                "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files]}


def catalogue_path() -> Path:
    override = os.environ.get(CATALOGUE_ENV)
    return Path(override).expanduser() if override else paths.resources_dir() / "models" / "catalogue.json"


def _file(raw: dict[str, Any], model_id: str) -> CatalogueFile:
    path = str(raw["path"])
    parts = PurePosixPath(path).parts
    if not path or path.startswith("/") or ".." in parts:
        raise ModelError(f"catalogue entry {model_id}: {path!r} is not a path inside the repo")
    is_sam = path.endswith(".pth") and PurePosixPath(path).name.startswith("sam_vit_")
    if not (path.endswith(_ALLOWED) or is_sam):
        raise ModelError(f"catalogue entry {model_id}: {path} is not a safetensors or config file; "
                         "the app fetches no pickle files except Meta's SAM .pth")
    sha = raw.get("sha256")
    if sha is not None and not _SHA256.match(str(sha)):
        raise ModelError(f"catalogue entry {model_id}: the sha256 of {path} is not 64 hex digits")
    return CatalogueFile(path, int(raw.get("size", 0)), sha)


def load_catalogue(path: Path | None = None) -> list[CatalogueModel]:
    """Every model of the catalogue, in its order; a damaged catalogue is a ModelError."""
    path = path or catalogue_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        models = []
        for raw in data["models"]:
            model_id = str(raw["id"])
            target = PurePosixPath(str(raw["target"]))
            if target.is_absolute() or ".." in target.parts:
                raise ModelError(f"catalogue entry {model_id}: target {target} is not a folder under models/")
            models.append(CatalogueModel(
                model_id, str(raw["title"]), str(raw.get("used_for", "")), bool(raw.get("required")),
                str(raw["repo"]), str(raw.get("revision") or "main"), str(target), str(raw.get("licence", "")),
                str(raw.get("licence_url", "")), tuple(_file(f, model_id) for f in raw["files"])))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"the model catalogue {path} cannot be read ({exc.__class__.__name__}: {exc}); "
                         "reinstall the app or fix the file") from exc
    return models


def pick(names: tuple[str, ...] | list[str], required: bool = False,
         catalogue: list[CatalogueModel] | None = None) -> list[CatalogueModel]:
    """The catalogue models named (by id), plus every required one when ``required``."""
    catalogue = load_catalogue() if catalogue is None else catalogue
    by_id = {m.id: m for m in catalogue}
    unknown = [n for n in names if n not in by_id]
    if unknown:
        raise ModelError(f"unknown model {', '.join(unknown)}; the catalogue has {', '.join(by_id)}")
    wanted = [m.id for m in catalogue if m.required] if required else []
    wanted += [n for n in names if n not in wanted]
    return [by_id[n] for n in wanted]


def staging_dir() -> Path:
    return paths.models_dir() / DOWNLOADS_DIR


def partial_file(model: CatalogueModel, file: CatalogueFile) -> Path:
    """Where the bytes of a download in progress stay between runs (resume after a crash)."""
    return staging_dir() / f"{model.id}--{file.path.replace('/', '--')}.part"


def model_status(model: CatalogueModel) -> dict[str, Any]:
    """``present`` (every file in place), ``partial`` (bytes waiting to be resumed) or ``missing``,
    with the bytes still to fetch."""
    present = [f for f in model.files if model.destination(f).is_file()]
    partial = sum(partial_file(model, f).stat().st_size for f in model.files
                  if f not in present and partial_file(model, f).is_file())
    missing = sum(f.size for f in model.files if f not in present)
    state = "present" if len(present) == len(model.files) else "partial" if partial or present else "missing"
    return {**model.to_dict(), "state": state, "bytes_to_fetch": max(missing - partial, 0),
            "bytes_partial": partial}


def catalogue_status() -> list[dict[str, Any]]:
    """Every catalogue model with its state on this computer (the Models page and ``models download``)."""
    return [model_status(m) for m in load_catalogue()]
