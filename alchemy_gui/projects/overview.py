"""The open project's summary and its reference photos as thumbnails."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from alchemy_gui.common.images import IMAGE_FILTER
from alchemy_gui.common.thumbnails import ThumbnailLoader


class ProjectOverview(QWidget):
    add_photos_requested = Signal(list)  # list[Path]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel()
        self.title.setObjectName("heading")
        self.details = QLabel()
        self.details.setObjectName("hint")
        self.photos = QListWidget()
        self.photos.setViewMode(QListView.ViewMode.IconMode)
        self.photos.setIconSize(QSize(160, 160))
        self.photos.setResizeMode(QListView.ResizeMode.Adjust)
        self.photos.setSpacing(8)
        self.photos.setMovement(QListView.Movement.Static)
        self.thumbnails = ThumbnailLoader(160, self)
        self.thumbnails.loaded.connect(self._on_thumbnail)
        self.add_button = QPushButton("Add photos…")
        self.add_button.clicked.connect(self._choose_photos)
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.add_button)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.details)
        layout.addWidget(self.photos, 1)
        self.show_project(None)

    def show_project(self, project) -> None:
        self.photos.clear()
        self.add_button.setEnabled(project is not None)
        if project is None:
            self.title.setText("No project open")
            self.details.setText("Choose a project on the left, or create one.")
            return
        photos = project.reference_photos()
        self.title.setText(project.name)
        self.details.setText(f"Prompt word: “{project.token} {project.class_noun}” · "
                             f"{len(photos)} reference photos")
        for photo in photos:
            item = QListWidgetItem(photo.original_name or photo.path.name)
            item.setToolTip(f"{photo.width}×{photo.height} · {'mask' if photo.mask_path else 'no mask'}")
            item.setData(Qt.ItemDataRole.UserRole, str(photo.path))
            item.setSizeHint(QSize(180, 190))
            self.photos.addItem(item)
            self.thumbnails.request(photo.path)

    def _on_thumbnail(self, path: str, image: QImage) -> None:
        for row in range(self.photos.count()):
            item = self.photos.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == path and not image.isNull():
                item.setIcon(QIcon(QPixmap.fromImage(image)))

    def _choose_photos(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add reference photos", str(Path.home()),
                                                IMAGE_FILTER)
        if files:
            self.add_photos_requested.emit([Path(f) for f in files])
