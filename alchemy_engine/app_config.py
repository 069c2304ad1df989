"""The app's own settings file, and what this computer runs on.

- ``config_dir()/settings.json``: one JSON object (window layout, recent scenes, preferences),
  written atomically; a damaged file reads as {} and is replaced on the next save.
- Presets (named sets of request settings) are in :mod:`alchemy_engine.presets`.
- :func:`system_info`: package versions and the device policy; it imports torch, so front-ends
  call it in a job.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
from pathlib import Path
from typing import Any

from alchemy_engine import paths
from alchemy_engine.atomic import atomic_write_json
from alchemy_engine.errors import ModelError

SETTINGS_FILE = "settings.json"


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


def _version(*distributions: str) -> str:
    """The installed version of the first of ``distributions`` found (a package ships under several
    names: PySide6's Qt bindings come as ``PySide6`` or just ``PySide6_Essentials``)."""
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def system_info() -> dict[str, str]:
    """Versions of the app and its ML packages, and where models run (imports torch)."""
    info = {"Image Alchemy": _version("image-alchemy"), "Python": platform.python_version()}
    for package in ("torch", "diffusers", "transformers", "peft"):
        info[package] = _version(package)
    info["PySide6"] = _version("PySide6", "PySide6_Essentials")
    try:
        from alchemy_engine.models.device import device_policy

        policy = device_policy().to_dict()
        info["Device"] = f"{policy['device']} ({policy['dtype']})"
    except (ImportError, RuntimeError, ModelError) as exc:  # shown in the About box instead
        info["Device"] = f"unknown ({exc})"
    info["Data folder"] = str(paths.data_root())
    return info
