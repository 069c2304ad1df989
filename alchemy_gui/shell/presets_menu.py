"""The Presets menu: one submenu per workspace listing the presets of its
:class:`~alchemy_gui.common.presets_model.PresetChoice` (re-read when opened), and "Save as
preset…". The same choice drives the picker at the top of the workspace's form."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QInputDialog, QMenu, QWidget

from alchemy_engine import api
from alchemy_gui.common.preset_picker import preset_tooltip
from alchemy_gui.common.presets_model import PresetChoice


class PresetMenu(QMenu):
    """``title`` menu listing the presets of ``choice`` and "Save as preset…"; messages go to ``report``."""

    def __init__(self, title: str, choice: PresetChoice, parent: QWidget | None = None,
                 report: Callable[[str], object] = lambda text: None) -> None:
        super().__init__(title, parent)
        self.choice = choice
        self.setToolTipsVisible(True)
        choice.notice.connect(report)
        choice.problem_changed.connect(lambda text: text and report(text))
        self.aboutToShow.connect(self.rebuild)
        self.rebuild()

    def rebuild(self) -> None:
        self.clear()
        self.choice.reload()
        for preset in self.choice.presets:
            action = self.addAction(preset.name + ("" if preset.builtin else "  (yours)"))
            action.setToolTip(preset_tooltip(preset))
            action.setStatusTip(action.toolTip())
            action.triggered.connect(lambda _=False, name=preset.name: self.choice.apply(name))
        self.addSeparator()
        save = self.addAction("Save as preset…")
        save.setToolTip("Keep the current settings under a name of yours")
        save.triggered.connect(self.ask_and_save)

    def ask_and_save(self) -> None:
        name, ok = QInputDialog.getText(self.parentWidget(), "Save as preset", "Preset name:")
        if ok and name.strip():
            self.save(name)

    def save(self, name: str, description: str = "") -> api.Preset | None:
        return self.choice.save_as(name, description)


__all__ = ["PresetMenu"]
