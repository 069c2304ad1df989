"""The Insert area: put the trained subject into a scene.

Open or generate a scene, mark the subject on the :class:`MaskCanvas` (SAM clicks, a box, the
brush, or Auto-detect), then Insert: masked img2img with the project's LoRA, pasted back so
nothing outside the mask changes. Every disk, SAM and SDXL step runs as a job on the shared
:class:`JobRunner`; one :class:`InsertionSession` keeps the models loaded between jobs.

Wiring: ``InsertPanel(state, runner)``; it follows ``state.current_changed`` by itself. Call
``refresh_choices()`` when a training run finishes (new LoRA). Signals for the window (optional):
``insert_finished(InsertResult)``, ``job_failed(JobFailure)``, ``busy_changed(bool)`` (an
insertion or scene generation is running).
"""

from __future__ import annotations

import functools
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine.api import InsertionSession, SegmentRequest
from alchemy_engine.jobs import Progress
from alchemy_gui.common.failure_dialog import show_failure
from alchemy_gui.common.images import IMAGE_FILTER
from alchemy_gui.common.workers import JobFailure, JobRunner, JobWorker
from alchemy_gui.insert.jobs import (
    Choices,
    InsertJob,
    InsertOutcome,
    LoadedScene,
    SamMask,
    choices_job,
    generate_scene_job,
    insert_job,
    load_scene_job,
    segment_job,
)
from alchemy_gui.insert.mask_canvas import MaskCanvas, Tool
from alchemy_gui.insert.mask_document import MaskDocument
from alchemy_gui.insert.settings import InsertSettings
from alchemy_gui.insert.tools import ActionArea, ResultStrip, ToolBar
from alchemy_gui.projects.state import ProjectsState

NO_PROJECT_HINT = "Open a project on the left to put its subject into a scene."


class InsertPanel(QWidget):
    insert_finished = Signal(object)  # InsertResult
    mask_ready = Signal(object)  # SamMask, after it replaced the canvas mask
    scene_ready = Signal(object)  # LoadedScene, after the canvas shows it
    job_failed = Signal(object)  # JobFailure, after the panel shows it
    busy_changed = Signal(bool)

    def __init__(self, state: ProjectsState, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.runner = state, runner
        self.session = InsertionSession()
        self.document = MaskDocument(self)
        self.project = None
        self._long_job: JobWorker | None = None
        self._images: dict[str, QImage] = {}
        self._failure = JobFailure("")
        self.canvas = MaskCanvas(self.document)
        self.tools = ToolBar()
        self.results = ResultStrip()
        self.settings = InsertSettings()
        self.actions = ActionArea()
        self.insert_button, self.cancel_button = self.actions.insert_button, self.actions.cancel_button
        self.progress, self.message = self.actions.progress, self.actions.message
        self.details_button = self.actions.details_button
        self.stack = QStackedWidget()
        self.hint = QLabel(NO_PROJECT_HINT)
        self.hint.setObjectName("hint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.hint)
        self.stack.addWidget(self._main_page())
        QVBoxLayout(self).addWidget(self.stack)
        self._bind()
        state.current_changed.connect(self.set_project)
        self.set_project(state.current)

    # --- layout -------------------------------------------------------------------------------------
    def _main_page(self) -> QWidget:
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.tools)
        column.addWidget(self.canvas, 1)
        column.addWidget(self.results)
        right = QWidget()
        side = QVBoxLayout(right)
        side.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.settings)
        scroll.setMinimumWidth(330)
        side.addWidget(scroll, 1)
        side.addWidget(self.actions)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([700, 340])
        return splitter

    def _bind(self) -> None:
        """Every binding in one place (STYLE.md: widgets bind to models in one place)."""
        tools, doc = self.tools, self.document
        tools.tool_changed.connect(self._set_tool)
        tools.size.valueChanged.connect(self.canvas.set_brush_size)
        tools.undo.clicked.connect(doc.undo)
        tools.clear.clicked.connect(doc.clear)
        tools.fit.clicked.connect(self.canvas.fit)
        tools.detect.clicked.connect(self.auto_detect)
        self.results.compare.toggled.connect(self._show_selected)
        doc.undo_changed.connect(tools.undo.setEnabled)
        doc.scene_changed.connect(self._on_scene_changed)
        self.canvas.segment_requested.connect(self.request_mask)
        self.results.selected.connect(self._on_result_selected)
        self.results.open_folder.clicked.connect(self.open_result_folder)
        self.settings.open_scene_button.clicked.connect(self.choose_scene)
        self.settings.generate_button.clicked.connect(self.generate_scene)
        self.insert_button.clicked.connect(self.insert)
        self.cancel_button.clicked.connect(self.cancel)
        self.details_button.clicked.connect(self._show_details)
        undo = QShortcut(QKeySequence.StandardKey.Undo, self)
        undo.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        undo.activated.connect(doc.undo)
        self.canvas.set_brush_size(tools.size.value())
        self._set_tool(Tool.CLICK)

    # --- project ------------------------------------------------------------------------------------
    def set_project(self, project) -> None:
        same = _same_project(project, self.project)
        self.project = project
        if same and project is not None:  # the same project re-read (e.g. photos added): keep the work
            self.refresh_choices()
            return
        self._images.clear()
        self.results.clear()
        self.document.set_scene(None)
        self._set_message("")
        self.stack.setCurrentIndex(0 if project is None else 1)
        if project is None:
            return
        self.settings.set_project(project)
        self.refresh_choices()

    def refresh_choices(self) -> None:
        """Re-list models and the project's LoRA runs (call after a training run finishes)."""
        if self.project is not None:
            self._submit(choices_job, self.project.root, "insert choices", self._on_choices)

    def _on_choices(self, choices: Choices) -> None:
        self.settings.set_choices(choices)
        if choices.notes and not self.message.text():
            self._set_message(" ".join(choices.notes))

    # --- scene --------------------------------------------------------------------------------------
    def choose_scene(self) -> None:
        start = str(self.document.scene_path.parent) if self.document.scene_path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a scene", start, IMAGE_FILTER)
        if path:
            self.open_scene(Path(path))

    def open_scene(self, path: Path) -> None:
        self._set_message(f"Opening {Path(path).name}…")
        self._submit(load_scene_job, Path(path), "open scene", self._on_scene_loaded)

    def generate_scene(self) -> None:
        if self.project is None:
            return
        request = self.settings.scene_request(self.project.root)
        self._submit(functools.partial(generate_scene_job, session=self.session), request,
                     "generate scene", self._on_scene_loaded, long=True)

    def _on_scene_loaded(self, scene: LoadedScene) -> None:
        self.document.set_scene(scene.path, scene.image)
        self._set_message(f"Scene {scene.path.name}, {scene.image.width()}×{scene.image.height()} px. "
                          "Click on the subject, drag a box, or paint the mask.")
        self.scene_ready.emit(scene)

    def _on_scene_changed(self, _path: object) -> None:
        self.results.list.setCurrentItem(None)

    # --- masks --------------------------------------------------------------------------------------
    def _segment_request(self, **locate) -> SegmentRequest | None:
        if self.project is None or self.document.scene_path is None:
            return None
        out = Path(self.project.cache_dir) / "gui" / "mask.png"
        return SegmentRequest(image=self.document.scene_path, out=out, locate=self.settings.locate(**locate))

    def request_mask(self) -> None:
        """SAM for the current points and box (after each click or drag on the canvas)."""
        doc = self.document
        request = self._segment_request(points=doc.points, box=doc.box)
        if request is not None and (doc.points or doc.box is not None):
            self._submit(functools.partial(segment_job, session=self.session), request, "segment",
                         self._on_mask)

    def auto_detect(self) -> None:
        """The detector finds the class noun, SAM cuts it out; points and box are cleared."""
        self.document.clear()
        request = self._segment_request(text=self.settings.class_noun)
        if request is None:
            self._set_message("Open or generate a scene first.")
            return
        self._set_message(f"Looking for “{self.settings.class_noun}”…")
        self._submit(functools.partial(segment_job, session=self.session), request, "auto-detect",
                     self._on_mask)

    def _on_mask(self, sam: SamMask) -> None:
        doc, locate = self.document, sam.request.locate
        current = doc.scene_path == sam.request.image and (doc.points, doc.box) == (locate.points, locate.box)
        if not current or doc.mask is None or sam.mask.shape != doc.mask.shape:
            return  # the user clicked again or changed the scene meanwhile: a newer job follows
        doc.set_mask(sam.mask)
        found = sam.result.detections
        what = f"found “{locate.text}” ({len(found)} box{'es' if len(found) != 1 else ''})" if locate.text \
            else "mask updated"
        self._set_message(f"SAM: {what}, {sam.result.area_fraction:.0%} of the scene.")
        self.mask_ready.emit(sam)

    def _set_tool(self, tool: Tool) -> None:
        self.results.list.setCurrentItem(None)
        self.canvas.set_tool(tool)
        self.tools.select(tool)
        self.tools.size.setEnabled(tool in (Tool.BRUSH, Tool.ERASER))

    # --- insertion ----------------------------------------------------------------------------------
    def insert(self) -> None:
        if self.project is None:
            return
        if self.document.scene_path is None:
            self._fail(JobFailure("Open or generate a scene first."))
            return
        if not self.document.has_mask:
            self._fail(JobFailure("The mask is empty: click on the subject, drag a box around it, paint "
                                  "it with the brush, or press Auto-detect."))
            return
        request = self.settings.insert_request(self.project.root, self.document.scene_path)
        mask_path = Path(self.project.cache_dir) / "gui" / "insert-mask.png"
        job = InsertJob(request, self.document.mask.copy(), mask_path)
        self._submit(functools.partial(insert_job, session=self.session), job, "insert",
                     self._on_inserted, long=True)

    def _on_inserted(self, outcome: InsertOutcome) -> None:
        result = outcome.result
        item = None
        for path, image, thumb, seed in zip(result.project_outputs, outcome.images, outcome.thumbnails,
                                            result.seeds):
            self._images[str(path)] = image
            item = self.results.add(str(path), thumb, f"seed {seed}", f"{path}\n{result.prompt}")
        notes = " ".join(f"Note: {n}." for n in result.notes)
        self._set_message(f"Done: {len(result.project_outputs)} image(s) in {result.project_outputs[0].parent}. "
                          + notes)
        if item is not None:
            self.results.list.setCurrentItem(item)
        self.insert_finished.emit(result)

    def cancel(self) -> None:
        if self._long_job is not None:
            self._long_job.cancel()
            self._set_message("Cancelling…")

    # --- results ------------------------------------------------------------------------------------
    def _on_result_selected(self, path: str) -> None:
        self.results.compare.setChecked(bool(path))
        self._show_selected()

    def _show_selected(self, *_: object) -> None:
        path = self.results.current_path()
        if not path:
            self.canvas.set_preview(None)
        elif self.results.compare.isChecked():
            self.canvas.set_preview(self._images.get(path))
        else:
            self.canvas.set_preview(self.document.scene_image)

    def open_result_folder(self) -> None:
        path = self.results.current_path()
        if path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent)))

    # --- jobs and messages ----------------------------------------------------------------------------
    def _submit(self, fn, request, name: str, on_success, long: bool = False) -> JobWorker:
        project = self.project
        worker = self.runner.submit(fn, request, name)
        guard = _Guard(self, project, on_success, long)
        worker.succeeded.connect(guard.succeeded)
        worker.failed.connect(guard.failed)
        worker.progress.connect(guard.progress)
        if long:
            self._long_job = worker
            self._set_busy(True)
        return worker

    def _set_busy(self, busy: bool) -> None:
        self.settings.generate_button.setEnabled(not busy)
        self.actions.set_busy(busy)
        if not busy:
            self._long_job = None
        self.busy_changed.emit(busy)

    def _on_progress(self, event: Progress) -> None:
        self.actions.show_progress(event)

    def _fail(self, failure: JobFailure) -> None:
        self._failure = failure
        self._set_message(failure.message, error=not failure.cancelled)
        self.actions.details_button.setVisible(bool(failure.detail))
        self.job_failed.emit(failure)

    def _show_details(self) -> None:
        show_failure(self, "Insert", self._failure)

    def _set_message(self, text: str, error: bool = False) -> None:
        self.actions.set_message(text, error)


def _same_project(a, b) -> bool:
    return a is b or (a is not None and b is not None and a.root == b.root)


class _Guard(QObject):
    """Routes one job's signals to the panel, dropping results meant for a project since closed."""

    def __init__(self, panel: InsertPanel, project, on_success, long: bool) -> None:
        super().__init__(panel)
        self.panel, self.project, self.on_success, self.long = panel, project, on_success, long

    def succeeded(self, result) -> None:
        self._done()
        if _same_project(self.panel.project, self.project):
            self.on_success(result)

    def failed(self, failure: JobFailure) -> None:
        self._done()
        if _same_project(self.panel.project, self.project):
            self.panel._fail(failure)

    def progress(self, event: Progress) -> None:
        if self.long and _same_project(self.panel.project, self.project):
            self.panel._on_progress(event)

    def _done(self) -> None:
        if self.long:
            self.panel._set_busy(False)
        self.deleteLater()


__all__ = ["InsertPanel"]
