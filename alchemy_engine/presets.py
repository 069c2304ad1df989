"""Request presets: named sets of Train or Insert settings, checked against the request they fill.

- Built-in presets: ``resources/presets/<kind>/*.json`` (read only, shown in their ``order``).
- The user's presets: ``config_dir()/presets/<kind>/*.json`` (they win on a name clash), next to
  the app's ``settings.json``; written atomically.

Each file is ``{"name": ..., "description": ..., "values": {...}}``. Every value is checked the way
a front-end's form would check it: the key must be a field of the request (a typo is refused with
the nearest field name), the value must have the field's type and lie in its declared range
(``fields.value_problem``, the one checker ``validate()`` uses too), and the request built from the preset over the defaults must pass
``validate()``. A user's file that fails is not offered; :func:`refused_presets` says why.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from pathlib import Path
from typing import Any

from alchemy_engine import paths
from alchemy_engine.atomic import atomic_write_json, delete_file
from alchemy_engine.errors import InvalidRequest
from alchemy_engine.fields import field_infos, value_problem
from alchemy_engine.insertion.request import InsertRequest
from alchemy_engine.training.request import TrainRequest

PRESET_KINDS = ("train", "insert")
PRESET_REQUESTS: dict[str, type] = {"train": TrainRequest, "insert": InsertRequest}
# Real fields that a preset never sets: the computer's model, device and files, and per-run or
# per-scene text. A preset file may hold them (older versions saved some); they are not applied.
NOT_IN_PRESETS = {"train": ("project", "resume_run", "model", "device", "mixed_precision", "sample_prompt",
                            "class_prompt", "prediction_type"),
                  "insert": ("project", "out", "run", "lora", "model", "device", "scene", "scene_prompt",
                             "locate", "prompt", "seed", "style_lora", "inpaint_model", "prediction_type")}
# What validate() needs besides the preset: a project and, for insertion, one scene.
_CHECK_CONTEXT = {"train": {"project": "preset-check"},
                  "insert": {"project": "preset-check", "scene_prompt": "a photo of a dog"}}


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    kind: str  # "train" or "insert"
    values: dict[str, Any]
    description: str = ""
    builtin: bool = True
    path: Path | None = None

    def applied_values(self) -> dict[str, Any]:
        """The values a front-end sets (whole numbers in float fields as floats), without the
        fields presets never set."""
        return check_preset_values(self.kind, self.values)


def _check_kind(kind: str) -> None:
    if kind not in PRESET_KINDS:
        raise InvalidRequest(f"preset kind {kind!r}: use one of {', '.join(PRESET_KINDS)}")


def check_preset_values(kind: str, values: Any) -> dict[str, Any]:
    """``values`` as the request's types (whole numbers in float fields become floats), or
    :class:`InvalidRequest` naming every unknown key, or the first bad value."""
    _check_kind(kind)
    if not isinstance(values, dict):
        raise InvalidRequest('a preset\'s "values" must be an object of setting → value')
    request = PRESET_REQUESTS[kind]
    infos = {info.name: info for info in field_infos(request)}
    unknown = [key for key in values if key not in infos]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), list(infos), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise InvalidRequest(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(hints)}: a "
                             f"{kind} preset holds only {request.__name__} settings")
    checked = {}
    for key, value in values.items():
        if key in NOT_IN_PRESETS[kind]:
            continue
        problem = value_problem(infos[key], value)
        if problem:
            raise InvalidRequest(f"{key} {problem}")
        checked[key] = float(value) if infos[key].kind is float and isinstance(value, int) else value
    request(**_CHECK_CONTEXT[kind], **checked).validate()
    return checked


def _read(path: Path, kind: str, builtin: bool) -> Preset:
    """The preset in ``path``; :class:`InvalidRequest` saying what is wrong with the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"not a readable JSON file ({exc})") from exc
    if not isinstance(data, dict) or "values" not in data:
        raise InvalidRequest('not a preset: expected {"name": ..., "values": {...}}')
    values = data["values"]
    check_preset_values(kind, values)
    return Preset(str(data.get("name") or path.stem), kind, dict(values), str(data.get("description", "")),
                  builtin, path)


def _scan(folder: Path, kind: str, builtin: bool) -> tuple[list[Preset], list[str]]:
    found, refused = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append(_read(path, kind, builtin))
        except InvalidRequest as exc:
            refused.append(f"Preset file {path} was not loaded: {exc}. Fix or delete the file.")
    return found, refused


def _builtin(kind: str) -> tuple[list[Preset], list[str]]:
    folder = paths.resources_dir() / "presets" / kind
    presets, refused = _scan(folder, kind, True)
    order = {}
    for preset in presets:
        data = json.loads(preset.path.read_text(encoding="utf-8")) if preset.path else {}
        order[preset.name] = data.get("order", 99)
    return sorted(presets, key=lambda p: order.get(p.name, 99)), refused


def _user_folder(kind: str) -> Path:
    return paths.config_dir() / "presets" / kind


def list_presets(kind: str) -> list[Preset]:
    """Built-in presets in their file order (``order`` key), then the user's by name; files that
    fail the checks are left out (see :func:`refused_presets`)."""
    _check_kind(kind)
    builtin, _ = _builtin(kind)
    user, _ = _scan(_user_folder(kind), kind, False)
    names = {p.name.casefold() for p in user}
    return [p for p in builtin if p.name.casefold() not in names] + sorted(user, key=lambda p: p.name.casefold())


def refused_presets(kind: str) -> list[str]:
    """One message per preset file of ``kind`` that :func:`list_presets` leaves out, saying why."""
    _check_kind(kind)
    return _builtin(kind)[1] + _scan(_user_folder(kind), kind, False)[1]


def save_preset(kind: str, name: str, values: dict[str, Any], description: str = "") -> Preset:
    """Save the user's preset ``name`` (replacing one of that name) after checking its values."""
    _check_kind(kind)
    name = " ".join(str(name).split())
    stem = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")
    if not stem:
        raise InvalidRequest("A preset needs a name with at least one letter or digit.")
    try:
        check_preset_values(kind, values)
    except InvalidRequest as exc:
        raise InvalidRequest(f"Preset “{name}” not saved: {exc}") from exc
    path = _user_folder(kind) / f"{stem}.json"
    atomic_write_json(path, {"name": name, "description": description, "values": values})
    return Preset(name, kind, dict(values), description, False, path)


def delete_preset(kind: str, name: str) -> Path:
    """Delete the user's preset ``name``; built-in presets cannot be deleted."""
    _check_kind(kind)
    mine = [p for p in _scan(_user_folder(kind), kind, False)[0] if p.name.casefold() == name.casefold()]
    if not mine or mine[0].path is None:
        raise InvalidRequest(f"“{name}” is not one of your {kind} presets; built-in presets cannot be deleted.")
    delete_file(mine[0].path, then="the preset is kept")
    return mine[0].path


__all__ = ["NOT_IN_PRESETS", "PRESET_KINDS", "PRESET_REQUESTS", "Preset", "check_preset_values",
           "delete_preset", "list_presets", "refused_presets", "save_preset"]
