"""The open project's summary and its reference photos as thumbnails, each with its subject mask
tinted over it; view one large, correct its mask, remove it, or "Auto-mask all".

``ProjectOverview(jobs)``: ``show_project(project)`` fills it; ``add_photos_requested`` and
``reload_requested(slug)`` (something changed on disk: re-open the project) go to the window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from alchemy_gui.common.binding import bind_to
from alchemy_gui.common.images import IMAGE_FILTER
from alchemy_gui.common.job_list import JobList
from alchemy_gui.common.thumbnails import ThumbnailLoader
from alchemy_gui.projects.mask_dialog import MaskDialog
from alchemy_gui.projects.photo_viewer import PhotoViewer, with_mask
from alchemy_gui.projects.photos_state import LoadedPhoto, PhotoEdit, PhotosState, _load_job

AUTO_TIP = ("Find the subject (the class noun) in every photo with the detector and SAM, and save it as "
            "the photo's mask: what Masked loss trains on")
ROLE_PATH = Qt.ItemDataRole.UserRole
ROLE_NAME = Qt.ItemDataRole.UserRole + 1
ROLE_MASK = Qt.ItemDataRole.UserRole + 2


def mask_qimage(mask: np.ndarray) -> QImage:
    """A bool (H, W) mask as a white-on-black grayscale QImage (a copy)."""
    pixels = np.ascontiguousarray(mask.astype(np.uint8) * 255)
    h, w = pixels.shape
    return QImage(pixels.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


class ProjectOverview(QWidget):
    add_photos_requested = Signal(list)  # list[Path]
    reload_requested = Signal(str)  # slug: photos or masks changed on disk

    def __init__(self, jobs: JobList | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = None
        self.photos_state = PhotosState(jobs or JobList(self), self)
        self.photos_state.reload_requested.connect(self.reload_requested)
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
        self.photos.itemSelectionChanged.connect(self._update_buttons)
        self.photos.itemDoubleClicked.connect(lambda _item: self.view_selected())
        self.thumbnails = ThumbnailLoader(160, self)
        self.thumbnails.loaded.connect(self._on_thumbnail)
        self._loaded: dict[str, QImage] = {}  # thumbnails by path (photos and masks)
        self.add_button = QPushButton("Add photos…")
        self.add_button.clicked.connect(self._choose_photos)
        self.auto_button = QPushButton("Auto-mask all")
        self.auto_button.clicked.connect(self.auto_mask)
        self.view_button = QPushButton("View")
        self.view_button.setToolTip("The selected photo, large, with its mask (double-click does it too)")
        self.view_button.clicked.connect(self.view_selected)
        self.mask_button = QPushButton("Edit mask…")
        self.mask_button.setToolTip("Correct the selected photo's subject mask: brush, eraser, SAM click")
        self.mask_button.clicked.connect(self.edit_selected_mask)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.setToolTip("Remove the selected photo from the project (your original file stays)")
        self.remove_button.clicked.connect(self.remove_selected)
        self.message = QLabel()
        self.message.setObjectName("hint")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.add_button)
        actions = QHBoxLayout()
        for button in (self.view_button, self.mask_button, self.remove_button):
            actions.addWidget(button)
        actions.addStretch(1)
        actions.addWidget(self.auto_button)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.details)
        layout.addWidget(self.photos, 1)
        layout.addWidget(self.message)
        layout.addLayout(actions)
        self.bindings = [bind_to(self.photos_state, "message", self._show_message),
                         bind_to(self.photos_state, "busy", self._update_buttons)]
        self.show_project(None)

    def show_project(self, project) -> None:
        selected = self.selected_photo()
        same = project is not None and self.project is not None and project.root == self.project.root
        self.project = project
        self.photos.clear()
        self._loaded.clear()
        if not same:
            self.photos_state.message = ""
        self.add_button.setEnabled(project is not None)
        if project is None:
            self.title.setText("No project open")
            self.details.setText("Choose a project on the left, or create one.")
            self._update_buttons()
            return
        photos = project.reference_photos()
        masked = sum(1 for p in photos if p.mask_path)
        self.title.setText(project.name)
        self.details.setText(f"Prompt word: “{project.token} {project.class_noun}” · "
                             f"{len(photos)} reference photos · {masked} with a subject mask")
        for photo in photos:
            item = QListWidgetItem(photo.original_name or photo.path.name)
            item.setToolTip(f"{photo.name} · {photo.width}×{photo.height} · "
                            f"{'subject mask (red)' if photo.mask_path else 'no subject mask'}")
            item.setData(ROLE_PATH, str(photo.path))
            item.setData(ROLE_NAME, photo.name)
            item.setData(ROLE_MASK, str(photo.mask_path) if photo.mask_path else "")
            item.setSizeHint(QSize(180, 190))
            self.photos.addItem(item)
            if same and photo.name == selected:
                self.photos.setCurrentItem(item)
            self.thumbnails.request(photo.path)
            if photo.mask_path:
                self.thumbnails.request(photo.mask_path)
        self._update_buttons()

    def selected_photo(self) -> str | None:
        item = self.photos.currentItem()
        return item.data(ROLE_NAME) if item is not None and item.isSelected() else None

    # --- user actions ---------------------------------------------------------------------------
    def view_selected(self) -> None:
        name = self.selected_photo()
        if name is not None and self.project is not None:
            worker = self.photos_state.jobs.submit(_load_job, PhotoEdit(self.project.slug, name), "load photo")
            worker.succeeded.connect(self._open_viewer)

    def edit_selected_mask(self) -> MaskDialog | None:
        name = self.selected_photo()
        if name is None or self.project is None:
            return None
        dialog = MaskDialog(self.photos_state, self.project.slug, name, self)
        dialog.open()
        return dialog

    def remove_selected(self) -> QMessageBox | None:
        name, project = self.selected_photo(), self.project
        if name is None or project is None:
            return None
        box = QMessageBox(QMessageBox.Icon.Question, "Remove photo",
                          f"Remove {name} (and its mask) from {project.name}? Your original file is not touched.",
                          QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel, self)
        box.button(QMessageBox.StandardButton.Ok).setText("Remove")
        box.accepted.connect(lambda: self.photos_state.remove(project.slug, name))
        box.open()
        return box

    def auto_mask(self) -> None:
        if self.project is not None:
            self.photos_state.auto_mask(self.project.slug)

    def _choose_photos(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add reference photos", str(Path.home()),
                                                IMAGE_FILTER)
        if files:
            self.add_photos_requested.emit([Path(f) for f in files])

    # --- showing --------------------------------------------------------------------------------
    def _open_viewer(self, loaded: LoadedPhoto) -> None:
        mask = mask_qimage(loaded.mask) if loaded.mask is not None else None
        viewer = PhotoViewer(loaded.shown_name or loaded.photo, loaded.image, mask, self)
        viewer.open()

    def _on_thumbnail(self, path: str, image: QImage) -> None:
        if image.isNull():
            return
        self._loaded[path] = image
        for row in range(self.photos.count()):
            item = self.photos.item(row)
            if path not in (item.data(ROLE_PATH), item.data(ROLE_MASK)):
                continue
            photo = self._loaded.get(item.data(ROLE_PATH))
            if photo is None:
                continue
            mask = self._loaded.get(item.data(ROLE_MASK)) if item.data(ROLE_MASK) else None
            if item.data(ROLE_MASK) and mask is None:
                continue  # wait for the mask: no flash of an unmasked thumbnail
            item.setIcon(QIcon(QPixmap.fromImage(with_mask(photo, mask))))

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _update_buttons(self, *_: object) -> None:
        has_photos = self.project is not None and self.photos.count() > 0
        chosen = self.selected_photo() is not None and not self.photos_state.busy
        for button in (self.view_button, self.mask_button, self.remove_button):
            button.setEnabled(chosen)
        self.auto_button.setEnabled(has_photos and not self.photos_state.busy)
        self.auto_button.setToolTip(AUTO_TIP if has_photos else "Add photos first, then mask them")
