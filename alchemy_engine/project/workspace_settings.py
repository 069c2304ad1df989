"""A project's remembered workspace settings (the Train and Insert forms): one JSON file per
workspace, ``<project>/workspace/<name>.json``, written atomically. Values are plain JSON; the
front-end decides which keys it keeps and checks them when it reads them back."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from alchemy_engine.atomic import atomic_write_json
from alchemy_engine.errors import InvalidRequest, ProjectError
from alchemy_engine.project.schema import PROJECT_FILE

WORKSPACE_DIR = "workspace"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _file(project: Any, name: str) -> Path:
    if not _NAME.match(name):
        raise InvalidRequest(f"workspace name {name!r}: use lower-case letters, digits and _")
    root = Path(getattr(project, "root", project))
    return root / WORKSPACE_DIR / f"{name}.json"


def load_workspace_settings(project: Any, name: str) -> dict[str, Any]:
    """The settings saved for workspace ``name`` of ``project`` (a Project or its folder); {} when
    none were saved or the file is damaged (settings are a convenience, never a reason to fail)."""
    path = _file(project, name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_workspace_settings(project: Any, name: str, values: dict[str, Any]) -> Path:
    """Write ``values`` (JSON; paths become strings) for workspace ``name`` of ``project``."""
    path = _file(project, name)
    if not (path.parent.parent / PROJECT_FILE).is_file():
        raise ProjectError(f"There is no project at {path.parent.parent} any more; settings not saved.")
    json.dumps(values, default=os.fspath)  # TypeError now, before anything is written
    atomic_write_json(path, values, then="the previous settings are kept")
    return path
