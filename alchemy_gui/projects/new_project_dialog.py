"""Ask for a new project's name, rare token, class noun and reference photos."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from alchemy_gui.common.images import IMAGE_FILTER
from alchemy_gui.projects.state import NewProject

TOKEN_HELP = ("A made-up word that training teaches to mean your subject: prompts then say “sks dog” for "
              "your dog. Keep it rare (sks, ohwx) so SDXL has no meaning of its own for it.")


class NewProjectDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New project")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Rex the corgi")
        self.token_edit = QLineEdit("sks")
        self.token_edit.setToolTip(TOKEN_HELP)
        self.class_edit = QLineEdit()
        self.class_edit.setPlaceholderText("dog")
        self.class_edit.setToolTip("What the subject is, in one or two words: dog, mug, person…")
        self.image_list = QListWidget()
        add = QPushButton("Add photos…")
        add.clicked.connect(self._add_photos)
        remove = QPushButton("Remove")
        remove.clicked.connect(self._remove_selected)
        self.hint = QLabel("3–5 photos of the subject from different angles work best.")
        self.hint.setObjectName("hint")

        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("Rare token", self.token_edit)
        token_hint = QLabel(TOKEN_HELP)
        token_hint.setObjectName("hint")
        token_hint.setWordWrap(True)
        form.addRow("", token_hint)
        form.addRow("Class noun", self.class_edit)
        buttons_row = QHBoxLayout()
        buttons_row.addWidget(add)
        buttons_row.addWidget(remove)
        buttons_row.addStretch()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Reference photos"))
        layout.addWidget(self.image_list)
        layout.addLayout(buttons_row)
        layout.addWidget(self.hint)
        layout.addWidget(self.buttons)
        for edit in (self.name_edit, self.token_edit, self.class_edit):
            edit.textChanged.connect(self._update_ok)
        self._update_ok()

    def add_images(self, paths: list[Path]) -> None:
        present = set(self._images())
        for path in map(Path, paths):
            if path not in present:
                item = QListWidgetItem(path.name)
                item.setToolTip(str(path))
                item.setData(Qt.ItemDataRole.UserRole, str(path))
                self.image_list.addItem(item)
                present.add(path)
        self._update_ok()

    def _images(self) -> list[Path]:
        return [Path(self.image_list.item(i).data(Qt.ItemDataRole.UserRole))
                for i in range(self.image_list.count())]

    def request(self) -> NewProject:
        images = tuple(self._images())
        return NewProject(self.name_edit.text().strip(), self.token_edit.text().strip(),
                          self.class_edit.text().strip(), images)

    def _add_photos(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Reference photos", str(Path.home()), IMAGE_FILTER)
        self.add_images([Path(f) for f in files])

    def _remove_selected(self) -> None:
        for item in self.image_list.selectedItems():
            self.image_list.takeItem(self.image_list.row(item))
        self._update_ok()

    def _update_ok(self) -> None:
        ok = bool(self.name_edit.text().strip() and self.token_edit.text().strip()
                  and self.class_edit.text().strip())
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)
