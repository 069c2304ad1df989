"""The view-model of a workspace's presets: which presets there are, which one the form was last
set from, and whether the form still matches it.

The Train and Insert forms show it as a picker (:mod:`alchemy_gui.common.preset_picker`) and the
Presets menu lists the same presets (:mod:`alchemy_gui.shell.presets_menu`). The chosen preset's name is
remembered per project (``WorkspaceSettingsKeeper`` extras). Presets are read, checked and written
by the engine (``api.list_presets``, ``api.save_preset``…); files it refuses are named in
``problem``, one message, and never offered.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QObject, Signal

from alchemy_engine import api
from alchemy_engine.errors import AlchemyError
from alchemy_gui.common.binding import Property
from alchemy_gui.common.request_settings import RequestSettings

CUSTOM = "Custom"


def apply_preset(settings: RequestSettings, preset: api.Preset) -> list[str]:
    """Set the preset's values that are settings here; returns the names set."""
    applied = []
    for name, value in preset.applied_values().items():
        if name in settings.names():
            settings.set(name, value)
            applied.append(name)
    return applied


def preset_values(settings: RequestSettings, kind: str) -> dict[str, Any]:
    """The settings a preset of ``kind`` keeps, as JSON values."""
    return {k: os.fspath(v) if isinstance(v, os.PathLike) else v
            for k, v in settings.values().items() if k not in api.NOT_IN_PRESETS[kind]}


class PresetChoice(QObject):
    """The presets of ``kind`` ("train", "insert") for ``settings``; ``chosen`` is the name of the
    preset last applied or saved ("" for none). ``display_changed`` fires whenever the picker's
    text may change (a preset, the choice or any setting); ``notice`` carries passing messages."""

    presets_changed = Signal(object)  # tuple of Preset
    chosen_changed = Signal(str)  # the preset's name, "" for none
    problem_changed = Signal(str)
    display_changed = Signal()
    notice = Signal(str)

    presets = Property(())
    chosen = Property("")
    problem = Property("")  # why preset files were not loaded, or why a save or delete failed

    def __init__(self, kind: str, settings: RequestSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.kind, self.settings = kind, settings
        self._applied: dict[str, dict[str, Any]] = {}
        for signal in (self.presets_changed, self.chosen_changed, settings.changed):
            signal.connect(lambda *_: self.display_changed.emit())
        self.reload()

    def reload(self) -> None:
        """Read the presets again (built-in and the user's; refused files go to ``problem``)."""
        presets = tuple(api.list_presets(self.kind))
        self._applied = {p.name: p.applied_values() for p in presets}
        self.presets = presets
        self.problem = " ".join(api.refused_presets(self.kind))

    def preset(self, name: str) -> api.Preset | None:
        return next((p for p in self.presets if p.name == name), None)

    def current(self) -> api.Preset | None:
        """The chosen preset, while it exists."""
        return self.preset(self.chosen) if self.chosen else None

    def modified(self) -> bool:
        """The form no longer holds the chosen preset's values."""
        values = self._applied.get(self.chosen, {})
        names = set(self.settings.names())
        return any(self.settings[k] != v for k, v in values.items() if k in names)

    def label(self) -> str:
        """What the picker shows: "Balanced", "Balanced *" once a field was edited, or "Custom"."""
        preset = self.current()
        if preset is None:
            return CUSTOM
        return preset.name + (" *" if self.modified() else "")

    def apply(self, name: str) -> bool:
        preset = self.preset(name)
        if preset is None:
            self.problem = f"There is no {self.kind} preset “{name}” any more."
            return False
        apply_preset(self.settings, preset)
        self.chosen = preset.name
        self.notice.emit(f"Preset “{preset.name}” applied.")
        return True

    def save_as(self, name: str, description: str = "") -> api.Preset | None:
        """Keep the current settings as the user's preset ``name`` (replacing one of that name)."""
        try:
            preset = api.save_preset(self.kind, name, preset_values(self.settings, self.kind), description)
        except AlchemyError as exc:
            self.problem = str(exc)
            return None
        self.reload()
        self.chosen = preset.name
        self.notice.emit(f"Preset “{preset.name}” saved.")
        return preset

    def delete(self, name: str) -> bool:
        """Delete the user's preset ``name``; the form keeps its values (shown as Custom)."""
        try:
            api.delete_preset(self.kind, name)
        except AlchemyError as exc:
            self.problem = str(exc)
            return False
        self.reload()
        if self.chosen == name:
            self.chosen = ""
        self.notice.emit(f"Preset “{name}” deleted.")
        return True

    def restore(self, name: Any) -> None:
        """The choice remembered for a project (a name, or anything else for none)."""
        self.chosen = name if isinstance(name, str) else ""


__all__ = ["CUSTOM", "PresetChoice", "apply_preset", "preset_values"]
