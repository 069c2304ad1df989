"""Training and insertion presets: a menu per workspace that applies a preset to the view-model's
``settings`` and saves the current settings as the user's own preset (``api.save_preset``)."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtWidgets import QInputDialog, QMenu, QWidget

from alchemy_engine import api
from alchemy_engine.errors import AlchemyError
from alchemy_gui.common.request_settings import RequestSettings

# Never part of a preset: the computer's model, device and precision, and per-scene text.
NOT_IN_PRESETS = {"train": ("model", "device", "mixed_precision", "sample_prompt", "class_prompt"),
                  "insert": ("model", "run", "prompt", "seed")}


def apply_preset(settings: RequestSettings, preset: api.Preset) -> list[str]:
    """Set the preset's values that are settings here; returns the names set."""
    applied = []
    for name, value in preset.values.items():
        if name in settings.names() and name not in NOT_IN_PRESETS[preset.kind]:
            initial = settings.initial[name]
            settings.set(name, float(value) if isinstance(initial, float) and isinstance(value, int) else value)
            applied.append(name)
    return applied


def preset_values(settings: RequestSettings, kind: str) -> dict:
    return {k: v for k, v in settings.values().items() if k not in NOT_IN_PRESETS[kind]}


class PresetMenu(QMenu):
    """``title`` menu listing the presets of ``kind`` (re-read when opened) and "Save as preset…"."""

    def __init__(self, title: str, kind: str, settings: RequestSettings, parent: QWidget | None = None,
                 report=lambda text: None) -> None:
        super().__init__(title, parent)
        self.kind, self.settings, self.report = kind, settings, report
        self.setToolTipsVisible(True)
        self.aboutToShow.connect(self.rebuild)
        self.rebuild()

    def rebuild(self) -> None:
        self.clear()
        presets = api.list_presets(self.kind)
        for preset in presets:
            action = self.addAction(preset.name + ("" if preset.builtin else "  (yours)"))
            action.setToolTip(preset.description or ", ".join(f"{k} {v}" for k, v in preset.values.items()))
            action.setStatusTip(action.toolTip())
            action.triggered.connect(lambda _=False, p=preset: self.apply(p))
        self.addSeparator()
        save = self.addAction("Save as preset…")
        save.setToolTip("Keep the current settings under a name of yours")
        save.triggered.connect(self.ask_and_save)

    def apply(self, preset: api.Preset) -> None:
        apply_preset(self.settings, preset)
        self.report(f"Preset “{preset.name}” applied.")

    def ask_and_save(self) -> None:
        name, ok = QInputDialog.getText(self.parentWidget(), "Save as preset", "Preset name:")
        if ok and name.strip():
            self.save(name)

    def save(self, name: str, description: str = "") -> api.Preset | None:
        try:
            preset = api.save_preset(self.kind, name, preset_values(self.settings, self.kind), description)
        except AlchemyError as exc:
            self.report(str(exc))
            return None
        self.report(f"Preset “{preset.name}” saved.")
        return preset

    def names(self) -> Iterable[str]:
        return [p.name for p in api.list_presets(self.kind)]


__all__ = ["NOT_IN_PRESETS", "PresetMenu", "apply_preset", "preset_values"]
