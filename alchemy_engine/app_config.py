"""The app's own settings file and the request presets, and what this computer runs on.

- ``config_dir()/settings.json``: one JSON object (window layout, recent scenes, preferences),
  written atomically; a damaged file reads as {} and is replaced on the next save.
- Presets: named sets of request settings, ``resources/presets/<kind>/*.json`` (built in, read
  only) and ``config_dir()/presets/<kind>/*.json`` (the user's, which win on a name clash). Each
  file is ``{"name": ..., "description": ..., "values": {...}}``.
- :func:`system_info`: package versions and the device policy; it imports torch, so front-ends
  call it in a job.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import platform
import re
from pathlib import Path
from typing import Any

from alchemy_engine import paths
from alchemy_engine.atomic import atomic_write_json
from alchemy_engine.errors import InvalidRequest, ModelError

SETTINGS_FILE = "settings.json"
PRESET_KINDS = ("train", "insert")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_app_settings() -> dict[str, Any]:
    data = _read_json(paths.config_dir() / SETTINGS_FILE)
    return data if isinstance(data, dict) else {}


def save_app_settings(values: dict[str, Any]) -> Path:
    path = paths.config_dir() / SETTINGS_FILE
    atomic_write_json(path, values, then="the previous settings are kept")
    return path


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    kind: str  # "train" or "insert"
    values: dict[str, Any]
    description: str = ""
    builtin: bool = True
    path: Path | None = None


def _check_kind(kind: str) -> None:
    if kind not in PRESET_KINDS:
        raise InvalidRequest(f"preset kind {kind!r}: use one of {', '.join(PRESET_KINDS)}")


def _presets_in(folder: Path, kind: str, builtin: bool) -> list[Preset]:
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = _read_json(path)
        if isinstance(data, dict) and isinstance(data.get("values"), dict):
            found.append(Preset(str(data.get("name") or path.stem), kind, data["values"],
                                str(data.get("description", "")), builtin, path))
    return found


def list_presets(kind: str) -> list[Preset]:
    """Built-in presets in their file order (``order`` key), then the user's by name."""
    _check_kind(kind)
    builtin = _presets_in(paths.resources_dir() / "presets" / kind, kind, True)
    order = {p.name: (_read_json(p.path) or {}).get("order", 99) for p in builtin if p.path}
    builtin.sort(key=lambda p: order.get(p.name, 99))
    user = _presets_in(paths.config_dir() / "presets" / kind, kind, False)
    names = {p.name.casefold() for p in user}
    return [p for p in builtin if p.name.casefold() not in names] + sorted(user, key=lambda p: p.name.casefold())


def save_preset(kind: str, name: str, values: dict[str, Any], description: str = "") -> Preset:
    """Save the user's preset ``name`` (replacing one of that name)."""
    _check_kind(kind)
    name = " ".join(str(name).split())
    stem = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")
    if not stem:
        raise InvalidRequest("A preset needs a name with at least one letter or digit.")
    path = paths.config_dir() / "presets" / kind / f"{stem}.json"
    atomic_write_json(path, {"name": name, "description": description, "values": values})
    return Preset(name, kind, dict(values), description, False, path)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def system_info() -> dict[str, str]:
    """Versions of the app and its ML packages, and where models run (imports torch)."""
    info = {"Image Alchemy": _version("image-alchemy"), "Python": platform.python_version()}
    for package in ("torch", "diffusers", "transformers", "peft", "PySide6"):
        info[package] = _version(package)
    try:
        from alchemy_engine.models.device import device_policy

        policy = device_policy().to_dict()
        info["Device"] = f"{policy['device']} ({policy['dtype']})"
    except (ImportError, RuntimeError, ModelError) as exc:  # shown in the About box instead
        info["Device"] = f"unknown ({exc})"
    info["Data folder"] = str(paths.data_root())
    return info
