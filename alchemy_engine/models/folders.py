"""Model folders: other apps' model folders searched in place (never copied), and finding them.

The list lives in ``config_dir()/model_folders.json`` (``models folders add|remove|list`` and
Preferences → Models edit it; a file of its own, so a window saving its settings never drops it). :func:`detect_installs` looks where ComfyUI (and the
paths of its ``extra_model_paths.yaml``), A1111 / Forge, InvokeAI, krita-ai-diffusion's managed
server and the Hugging Face cache keep weights; it only offers folders, the user adds them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alchemy_engine import paths
from alchemy_engine.atomic import atomic_write_json
from alchemy_engine.errors import InvalidRequest

log = logging.getLogger(__name__)

FOLDERS_FILE = "model_folders.json"
COMFY_SUBFOLDERS = ("checkpoints", "loras", "sams")
A1111_SUBFOLDERS = ("Stable-diffusion", "Lora")
# extra_model_paths.yaml keys whose folders hold what the app can use
_COMFY_YAML_KEYS = ("checkpoints", "loras", "sams", "unet", "diffusion_models")


@dataclass(frozen=True)
class DetectedFolder:
    """A model folder another app keeps: ``app`` says which (``ComfyUI``, ``A1111/Forge`` ...)."""

    path: Path
    app: str
    holds: str  # what the app keeps there: "checkpoints", "loras", "sams", "models", "hub cache"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


# --- the configured list -----------------------------------------------------------------------

def list_model_folders() -> list[Path]:
    """The folders the user added, in the order added (missing ones are kept: a drive may be out)."""
    try:
        stored = json.loads((paths.config_dir() / FOLDERS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("cannot read the model folders list: %s", exc)
        return []
    if not isinstance(stored, list):
        return []
    return [Path(p) for p in stored if isinstance(p, str) and p.strip()]


def _save(folders: list[Path]) -> None:
    atomic_write_json(paths.config_dir() / FOLDERS_FILE, [str(p) for p in folders],
                      then="the model folders list is unchanged")


def add_model_folder(path: str | Path) -> list[Path]:
    """Add a folder to search (an absolute path is stored); returns the new list."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InvalidRequest(f"{folder} is not a folder; give the folder that holds the model files "
                             "(e.g. ComfyUI/models/checkpoints or ComfyUI/models)")
    folder = folder.resolve()
    folders = list_model_folders()
    if folder not in folders:
        folders.append(folder)
        _save(folders)
    return folders


def remove_model_folder(path: str | Path) -> list[Path]:
    """Stop searching a folder (its files stay where they are); returns the new list."""
    folders = list_model_folders()
    wanted = {Path(path).expanduser(), Path(path).expanduser().resolve()}
    kept = [f for f in folders if f not in wanted]
    if len(kept) == len(folders):
        listed = ", ".join(str(f) for f in folders) or "none"
        raise InvalidRequest(f"{path} is not in the model folders list (listed: {listed})")
    _save(kept)
    return kept


# --- other apps' installs ----------------------------------------------------------------------

def read_extra_model_paths(yaml_file: Path) -> list[tuple[str, Path]]:
    """``(key, folder)`` pairs from a ComfyUI ``extra_model_paths.yaml``: each section has an
    optional ``base_path`` and keys whose value is one path or several on separate lines."""
    import yaml  # PyYAML comes with huggingface_hub

    try:
        data = yaml.safe_load(yaml_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        log.warning("cannot read %s: %s", yaml_file, exc)
        return []
    pairs: list[tuple[str, Path]] = []
    for section in (data or {}).values() if isinstance(data, dict) else ():
        if not isinstance(section, dict):
            continue
        base = Path(str(section.get("base_path", ""))).expanduser()
        if not base.is_absolute():
            base = yaml_file.parent / base
        for key in _COMFY_YAML_KEYS:
            value = section.get(key)
            for line in str(value).splitlines() if value else ():
                if line.strip():
                    folder = Path(line.strip()).expanduser()
                    pairs.append((key, folder if folder.is_absolute() else base / folder))
    return pairs


def _comfy_root(root: Path, app: str) -> list[DetectedFolder]:
    found = [DetectedFolder(root / "models" / sub, app, sub) for sub in COMFY_SUBFOLDERS]
    yaml_file = root / "extra_model_paths.yaml"
    if yaml_file.is_file():
        found += [DetectedFolder(p, f"{app} (extra_model_paths.yaml)", k)
                  for k, p in read_extra_model_paths(yaml_file)]
    return found


def _candidate_roots(home: Path) -> list[Path]:
    places = [home, home / "Documents", home / "Desktop", home / "AI", home / "ai", home / "src",
              home / "git", home / "Apps"]
    if sys.platform == "win32":
        places += [Path(f"{d}:/") for d in "CDE"]
    return places


def _krita_server_dirs(home: Path) -> list[Path]:
    """Where krita-ai-diffusion puts its managed ComfyUI (under Krita's resource folder)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", home / "AppData" / "Roaming")) / "krita"
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support" / "krita"
    else:
        base = home / ".local" / "share" / "krita"
    return [base / "ai_diffusion" / "server" / "ComfyUI"]


def detect_installs(home: Path | None = None, hf_cache: Path | None = None) -> list[DetectedFolder]:
    """Model folders of other apps that exist on this computer, each once; nothing is changed.

    ``home`` (default: the user's home) and ``hf_cache`` are parameters so tests can point them at
    a made-up tree."""
    home = Path.home() if home is None else home
    found: list[DetectedFolder] = []
    for place in _candidate_roots(home):
        for name in ("ComfyUI", "ComfyUI_windows_portable/ComfyUI", "comfyui"):
            if (place / name / "models").is_dir():
                found += _comfy_root(place / name, "ComfyUI")
        for name in ("stable-diffusion-webui", "stable-diffusion-webui-forge", "sd-webui-forge",
                     "webui_forge/webui", "stable-diffusion-webui-reForge"):
            if (place / name / "models").is_dir():
                found += [DetectedFolder(place / name / "models" / s, "A1111/Forge", s) for s in A1111_SUBFOLDERS]
    invoke = Path(os.environ.get("INVOKEAI_ROOT", home / "invokeai")).expanduser()
    found.append(DetectedFolder(invoke / "models", "InvokeAI", "models"))
    for server in _krita_server_dirs(home):
        found += _comfy_root(server, "krita-ai-diffusion server")
    if hf_cache is None:
        from alchemy_engine.models.hf_cache import hf_cache_dir

        hf_cache = hf_cache_dir()
    found.append(DetectedFolder(hf_cache, "Hugging Face cache", "hub cache"))
    seen: set[Path] = set()
    unique = []
    for item in found:
        if item.path.is_dir() and item.path.resolve() not in seen:
            seen.add(item.path.resolve())
            unique.append(DetectedFolder(item.path.resolve(), item.app, item.holds))
    return unique
