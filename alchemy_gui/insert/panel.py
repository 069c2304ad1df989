"""The Insert area: put the trained subject into a scene.

Open or generate a scene, mark the subject on the :class:`MaskCanvas` (SAM clicks, a box, the
brush, or Auto-detect), then Insert: masked img2img with the project's LoRA, pasted back so
nothing outside the mask changes. A thin view of :class:`~alchemy_gui.insert.state.InsertState`
(``panel.insert_state``), which owns the mask document, the loaded models and the jobs: this
widget binds to it and calls one of its methods per user action.

Wiring: ``InsertPanel(projects_state, jobs)``; it follows ``projects_state.current_changed``.
Call ``insert_state.refresh_choices()`` when a training run finishes (new LoRA). The state's
signals tell the window what happened: ``insert_finished``, ``job_failed``, ``busy_changed``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QImage
from PySide6.QtWidgets import (
    QColorDialog,
    QFileDialog,
    QLabel,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from alchemy_gui.common.binding import Binding, bind, bind_to
from alchemy_gui.common.failure_dialog import show_failure
from alchemy_gui.common.images import IMAGE_FILTER
from alchemy_gui.common.job_list import JobFailure, JobList
from alchemy_gui.insert.form import InsertForm
from alchemy_gui.insert.lora_picker import LoraPickerDialog
from alchemy_gui.insert.mask_canvas import MaskCanvas
from alchemy_gui.insert.mask_document import Tool
from alchemy_gui.insert.panel_actions import add_shortcuts, result_action, result_label, result_tooltip
from alchemy_gui.insert.state import InsertedImage, InsertState, Message
from alchemy_gui.insert.tools import ActionArea, ResultStrip, ToolBar
from alchemy_gui.projects.state import ProjectsState

NO_PROJECT_HINT = "Open a project on the left to put its subject into a scene."


class InsertPanel(QWidget):
    def __init__(self, projects_state: ProjectsState, jobs: JobList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.projects_state = projects_state
        self.jobs = jobs  # the LoRA picker's scan and the layer exports run as light jobs here
        self.insert_state = InsertState(jobs, self)
        self.document = self.insert_state.document
        self.canvas = MaskCanvas(self.document)
        self.tools = ToolBar()
        self.results = ResultStrip()
        self.settings = InsertForm(self.insert_state)
        self.action_area = ActionArea()
        self.insert_button, self.cancel_button = self.action_area.insert_button, self.action_area.cancel_button
        self.progress, self.message = self.action_area.progress, self.action_area.message
        self.details_button = self.action_area.details_button
        self.stack = QStackedWidget()
        self.hint = QLabel(NO_PROJECT_HINT)
        self.hint.setObjectName("hint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.hint)
        self.stack.addWidget(self._main_page())
        QVBoxLayout(self).addWidget(self.stack)
        self.bindings: list[Binding] = []
        self._bind()
        projects_state.current_changed.connect(self.insert_state.set_project)
        self.insert_state.insert_finished.connect(self._show_new_result)
        self.insert_state.set_project(projects_state.current)

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
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # never cut a field off
        scroll.setMinimumWidth(self.settings.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        side.addWidget(scroll, 1)
        side.addWidget(self.action_area)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([700, 340])
        return splitter

    def _bind(self) -> None:
        """Every binding of the panel in one place, so what follows what is read in one screen."""
        state, tools, doc, keep = self.insert_state, self.tools, self.document, self.bindings.append
        keep(bind_to(state, "project", self._show_project))
        keep(bind_to(state, "tool", self._show_tool))
        keep(bind(state, "brush_size", tools.size_slider))
        keep(bind_to(state, "brush_size", self.canvas.set_brush_size))
        keep(bind_to(state, "brush_size", lambda size: tools.size_label.setText(f"{size} px")))
        keep(bind(state, "brush_hardness", tools.hardness))
        keep(bind_to(state, "brush_hardness", self.canvas.set_brush_hardness))
        keep(bind_to(state, "busy", self._show_busy))
        keep(bind_to(state, "progress", self._show_progress))
        keep(bind_to(state, "message", self._show_message))
        keep(bind_to(state, "results", self._show_results))
        keep(bind_to(state, "result_order", lambda _order: self._show_results(state.results)))
        tools.tool_changed.connect(self._choose_tool)
        tools.undo.clicked.connect(state.undo)
        tools.redo.clicked.connect(state.redo)
        tools.clear.clicked.connect(state.clear_mask)
        tools.fit.clicked.connect(self.canvas.fit)
        tools.actual.clicked.connect(self.canvas.actual_size)
        tools.detect.clicked.connect(state.auto_detect)
        tools.instance.activated.connect(lambda i: state.pick_detection(tools.instance.itemData(i)))
        tools.sam_mode.activated.connect(lambda i: doc.set_sam_mode(tools.sam_mode.itemData(i)))
        tools.opacity.setValue(round(self.canvas.mask_opacity * 100))
        tools.opacity.valueChanged.connect(lambda v: self.canvas.set_mask_style(opacity=v / 100))
        tools.colour.clicked.connect(self.choose_mask_colour)
        doc.undo_changed.connect(tools.undo.setEnabled)
        doc.redo_changed.connect(tools.redo.setEnabled)
        doc.detections_changed.connect(tools.show_detections)
        doc.sam_mode_changed.connect(lambda mode: tools.sam_mode.setCurrentIndex(tools.sam_mode.findData(mode)))
        doc.scene_changed.connect(self._back_to_editing)
        self.canvas.segment_requested.connect(state.request_mask)
        self.canvas.view_changed.connect(lambda: tools.zoom_label.setText(f"{self.canvas.zoom_percent()} %"))
        self.results.compare.toggled.connect(self._show_selected)
        self.results.selected.connect(self._on_result_selected)
        self.results.open_folder.clicked.connect(self.open_result_folder)
        self.results.action.connect(lambda name, path: result_action(self, name, path))
        self.results.order.activated.connect(lambda i: setattr(state, "result_order", self.results.order.itemData(i)))
        self.settings.open_scene_button.clicked.connect(self.choose_scene)
        self.settings.generate_button.clicked.connect(state.generate_scene)
        self.settings.add_lora_button.clicked.connect(lambda: self.choose_lora_file(style=False))
        self.settings.add_style_button.clicked.connect(lambda: self.choose_lora_file(style=True))
        self.insert_button.clicked.connect(state.insert)
        self.cancel_button.clicked.connect(state.cancel)
        self.details_button.clicked.connect(self._show_details)
        self.shortcuts = add_shortcuts(self)

    # --- showing the state ----------------------------------------------------------------------------
    def _show_project(self, project) -> None:
        self.stack.setCurrentIndex(0 if project is None else 1)

    def _show_tool(self, tool: Tool) -> None:
        self.canvas.set_tool(tool)
        self.tools.select(tool)
        self.tools.size_slider.setEnabled(tool in (Tool.BRUSH, Tool.ERASER))
        self.tools.hardness.setEnabled(tool in (Tool.BRUSH, Tool.ERASER))

    def _show_busy(self, busy: bool) -> None:
        self.settings.generate_button.setEnabled(not busy)
        self.action_area.set_busy(busy)

    def _show_progress(self, event) -> None:
        if event is not None:
            self.action_area.show_progress(event)

    def _show_message(self, message: Message) -> None:
        self.action_area.set_message(message.text, message.error)
        self.details_button.setVisible(bool(message.detail))

    def _show_results(self, results: tuple[InsertedImage, ...]) -> None:
        state = self.insert_state
        self.results.clear()
        self.results.show_orders(state.outputs.score_names(), state.result_order)
        for result in reversed(state.outputs.ordered()):  # the strip puts each new item first
            self.results.add(str(result.path), result.thumbnail, result_label(result, state.result_order),
                             result_tooltip(result))


    # --- user actions -------------------------------------------------------------------------------
    def choose_scene(self) -> None:
        scene = self.document.scene_path
        start = str(scene.parent) if scene else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a scene", start, IMAGE_FILTER)
        if path:
            self.insert_state.open_scene(Path(path))

    def _show_new_result(self, result) -> None:
        """A finished insertion is shown at once (After)."""
        self.results.select_path(str(result.project_outputs[-1]))

    def choose_lora_file(self, style: bool = False) -> LoraPickerDialog:
        """The SDXL LoRAs of the model folders, grouped by folder, or Browse… for any file."""
        title = "Choose a style LoRA" if style else "Choose an SDXL LoRA file"
        dialog = LoraPickerDialog(self.jobs, title, self)
        dialog.chosen.connect(lambda path: self.insert_state.added_loras.add(Path(path), style=style))
        dialog.open()
        return dialog

    def choose_mask_colour(self) -> None:
        colour = QColorDialog.getColor(self.canvas.mask_colour, self, "Mask colour")
        if colour.isValid():
            self.canvas.set_mask_style(colour=colour)
            self.canvas.colour_chosen.emit(colour)

    def _choose_tool(self, tool: Tool) -> None:
        self._back_to_editing()
        self.insert_state.tool = tool

    def _back_to_editing(self, *_: object) -> None:
        self.results.list.setCurrentRow(-1)  # no current item: the scene

    def _on_result_selected(self, path: str) -> None:
        self.results.compare.setChecked(bool(path))
        self._show_selected()

    def _show_selected(self, *_: object) -> None:
        path = self.results.current_path()
        if not path:
            self.canvas.set_preview(None)
        elif self.results.compare.isChecked():
            self.insert_state.outputs.with_result_image(path, lambda image: self._show_compared(path, image))
        else:
            self.canvas.set_preview(self.document.scene_image)

    def _show_compared(self, path: str, image: QImage) -> None:
        if self.results.current_path() == path and self.results.compare.isChecked():  # still the one asked for
            self.canvas.set_preview(image)

    def open_result_folder(self) -> None:
        path = self.results.current_path()
        if path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent)))

    def _show_details(self) -> None:
        message = self.insert_state.message
        show_failure(self, "Insert", JobFailure(message.text, message.detail))


__all__ = ["InsertPanel"]
