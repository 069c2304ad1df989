"""How a model picker names where a model lives: models from other apps' folders carry the folder
(``ComfyUI/models``), so a picker reads as groups by location; the app's own carry nothing."""

from __future__ import annotations

from pathlib import Path


def short_location(location: str) -> str:
    """The last two parts of a model folder, enough to tell ComfyUI from A1111 at a glance."""
    parts = Path(location).parts
    return "/".join(parts[-2:]) if location else ""


def picker_label(name: str, location: str) -> str:
    return f"{name}   — {short_location(location)}" if location else name
