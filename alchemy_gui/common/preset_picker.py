"""The preset picker at the top of the Train and Insert forms: a combo of the built-in and the
user's presets, "Save…" (as a preset) and "Delete", bound to a
:class:`~alchemy_gui.common.presets_model.PresetChoice`.

Choosing a preset fills the form; once a field differs from it the combo reads "Balanced *", and
"Custom" when no preset was chosen. Preset files the engine refused are named under the combo.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine import api
from alchemy_gui.common.presets_model import CUSTOM, PresetChoice


def preset_tooltip(preset: api.Preset) -> str:
    values = ", ".join(f"{k} {v}" for k, v in preset.applied_values().items())
    return f"{preset.description}\n{values}" if preset.description else values


class PresetPicker(QWidget):
    def __init__(self, choice: PresetChoice, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.choice = choice
        self.combo = QComboBox()
        self.combo.setObjectName("presetPicker")
        self.combo.setToolTip("Fill the form from a preset; “*” means a field was changed since")
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        # Short labels next to "Preset": the forms must fit a 1366-pixel screen.
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Save as preset: keep the current settings under a name of yours")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the chosen preset (only your own presets can be deleted)")
        self.problem = QLabel()
        self.problem.setObjectName("presetProblem")
        self.problem.setWordWrap(True)
        self.problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem.setStyleSheet("color: #c0392b;")  # the error colour of the panels
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Preset"))
        row.addWidget(self.combo, 1)
        row.addWidget(self.save_button)
        row.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.problem)

        self.combo.activated.connect(self._on_activated)
        self.save_button.clicked.connect(self.ask_and_save)
        self.delete_button.clicked.connect(self.ask_and_delete)
        choice.display_changed.connect(self.show_choice)
        choice.problem_changed.connect(self._show_problem)
        self.show_choice()
        self._show_problem(choice.problem)

    def show_choice(self) -> None:
        """Refill the combo: every preset, the chosen one marked when modified, "Custom" when none."""
        current = self.choice.current()
        self.combo.blockSignals(True)
        self.combo.clear()
        if current is None:
            self.combo.addItem(CUSTOM, None)
            self.combo.setItemData(0, "Settings of your own (no preset chosen)", Qt.ItemDataRole.ToolTipRole)
        for preset in self.choice.presets:
            text = self.choice.label() if preset is current else preset.name
            self.combo.addItem(text + ("" if preset.builtin else "  (yours)"), preset.name)
            self.combo.setItemData(self.combo.count() - 1, preset_tooltip(preset), Qt.ItemDataRole.ToolTipRole)
        self.combo.setCurrentIndex(0 if current is None else self.combo.findData(current.name))
        self.combo.blockSignals(False)
        self.delete_button.setEnabled(current is not None and not current.builtin)

    def _show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))

    def _on_activated(self, index: int) -> None:
        name = self.combo.itemData(index)
        if name is not None:
            self.choice.apply(name)
        self.show_choice()

    # Dialogs: tests replace these two.
    def ask_name(self) -> str:
        current = self.choice.current()
        start = current.name if current is not None and not current.builtin else ""
        name, ok = QInputDialog.getText(self, "Save as preset", "Preset name:", text=start)
        return name if ok else ""

    def confirm(self, title: str, text: str) -> bool:
        return QMessageBox.question(self, title, text) == QMessageBox.StandardButton.Yes

    def ask_and_save(self) -> None:
        name = self.ask_name()
        if name.strip():
            self.choice.save_as(name)

    def ask_and_delete(self) -> None:
        current = self.choice.current()
        if current is not None and not current.builtin and self.confirm(
                "Delete preset", f"Delete your preset “{current.name}”? The form keeps its values."):
            self.choice.delete(current.name)


__all__ = ["PresetPicker", "preset_tooltip"]
