"""Correct one reference photo's subject mask: brush, eraser and SAM clicks on the Insert area's
:class:`~alchemy_gui.insert.mask_canvas.MaskCanvas` (reused as it is), then Save.

``MaskDialog(photos_state, slug, photo_name)`` loads the photo and its mask as a job, and on
Save hands the mask to :meth:`PhotosState.save_mask`; nothing is written before Save.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine import api
from alchemy_gui.common.job_list import JobFailure, JobKind
from alchemy_gui.insert.mask_canvas import MaskCanvas
from alchemy_gui.insert.mask_document import MaskDocument, Tool
from alchemy_gui.projects.photos_state import (
    LoadedPhoto,
    PhotoEdit,
    PhotosState,
    SamClick,
    _load_job,
    _sam_job,
)

TOOLS = ((Tool.BRUSH, "Brush", "B", "Paint the subject (right-drag erases)"),
         (Tool.ERASER, "Eraser", "E", "Erase what is not the subject"),
         (Tool.CLICK, "SAM click", "S", "Click the subject (right-click: not the subject); SAM outlines it"))


class MaskDialog(QDialog):
    def __init__(self, photos: PhotosState, slug: str, photo: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Subject mask — {photo}")
        self.resize(900, 700)
        self.photos, self.slug, self.photo = photos, slug, photo
        self.sam: str | None = None  # None: the default SAM model (see models/inventory)
        self.loaded: LoadedPhoto | None = None
        self.document = MaskDocument(self)
        self.canvas = MaskCanvas(self.document)
        self.hint = QLabel("Loading the photo…")
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
        self.tools = QButtonGroup(self)
        row = QHBoxLayout()
        for tool, text, key, tip in TOOLS:
            button = QToolButton()
            button.setText(text)
            button.setCheckable(True)
            button.setToolTip(f"{tip} ({key})")
            button.setShortcut(QKeySequence(key))
            button.toggled.connect(lambda on, t=tool: self.canvas.set_tool(t) if on else None)
            self.tools.addButton(button)
            row.addWidget(button)
        self.tools.buttons()[0].setChecked(True)
        self.brush = QSpinBox()
        self.brush.setRange(1, 400)
        self.brush.setValue(self.canvas.brush_size)
        self.brush.setSuffix(" px")
        self.brush.setToolTip("Brush diameter in photo pixels")
        self.brush.valueChanged.connect(self.canvas.set_brush_size)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setEnabled(False)
        self.undo_button.clicked.connect(self.document.undo)
        self.document.undo_changed.connect(self.undo_button.setEnabled)
        QShortcut(QKeySequence.StandardKey.Undo, self, self.document.undo)
        self.redo_button = QPushButton("Redo")
        self.redo_button.setEnabled(False)
        self.redo_button.clicked.connect(self.document.redo)
        self.document.redo_changed.connect(self.redo_button.setEnabled)
        QShortcut(QKeySequence.StandardKey.Redo, self, self.document.redo)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Start the mask again (Undo brings it back)")
        self.clear_button.clicked.connect(self.document.clear)
        row.addWidget(QLabel("Size"))
        row.addWidget(self.brush)
        row.addStretch(1)
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        row.addWidget(self.clear_button)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.hint)
        layout.addWidget(self.buttons)
        self.canvas.segment_requested.connect(self._ask_sam)
        worker = photos.jobs.submit(_load_job, PhotoEdit(slug, photo), "load photo")
        worker.succeeded.connect(self._on_loaded)
        worker.failed.connect(self._on_failed)

    def _on_loaded(self, loaded: LoadedPhoto) -> None:
        self.loaded = loaded
        self.document.set_scene(loaded.path, loaded.image)
        if loaded.mask is not None:
            self.document.set_mask(loaded.mask)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(True)
        self.setWindowTitle(f"Subject mask — {loaded.shown_name or loaded.photo}")
        self.hint.setText("Paint over the subject with the Brush (it shows red), take away with the Eraser, or click it "
                          "with SAM click. Wheel: zoom; middle-drag: pan.")

    def _ask_sam(self) -> None:
        if self.loaded is None:
            return
        out = Path(self.loaded.path).parent.parent / "cache" / "masks" / f"{Path(self.photo).stem}.sam.png"
        click = SamClick(self.loaded.path, out, self.document.points, self.document.box, self.sam)
        self.hint.setText("SAM is outlining the subject…")
        sized = api.SegmentRequest(image=click.image, out=click.out,
                                   locate=api.LocateOptions(points=click.points, box=click.box, sam=click.sam))
        job = self.photos.jobs.submit(_sam_job, click, "segment photo", kind=JobKind.SEGMENT, sized=sized)
        job.changed.connect(self._on_sam_job_changed)
        job.succeeded.connect(self._on_sam)
        job.failed.connect(self._on_failed)

    def _on_sam_job_changed(self, job) -> None:
        waits = job.wait_text()
        if waits:
            self.hint.setText(f"SAM {waits}.")
        elif job.note:
            self.hint.setText(f"SAM is outlining the subject… ({job.note})")

    def _on_sam(self, mask: np.ndarray) -> None:
        if self.document.scene_size == (mask.shape[1], mask.shape[0]):
            self.document.set_mask(mask)
        self.hint.setText("SAM's outline is shown; click again to refine it, or touch it up with the Brush.")

    def _on_failed(self, failure: JobFailure) -> None:
        self.hint.setText(failure.message)
        self.hint.setStyleSheet("color: #c0392b;")

    def save(self) -> None:
        mask = self.document.mask
        keep = mask is not None and bool(mask.any())
        self.photos.save_mask(self.slug, self.photo, mask.copy() if keep and mask is not None else None)
        self.accept()


__all__ = ["MaskDialog"]
