"""The tool bar above the mask canvas, the strip of results below it, and the Insert/Cancel area."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine.jobs import Progress
from alchemy_gui.insert.brush_settings import BRUSH_HARDNESS, BRUSH_SIZE
from alchemy_gui.insert.mask_document import Tool
from alchemy_gui.shell.shortcuts import key

_SIZE_KEYS = (f"{key('smaller')} and {key('larger')} change its size, "
              f"{key('softer')} and {key('harder')} its hardness")
TOOL_TIPS = {
    Tool.CLICK: f"Click ({key('click')}): left-click on the subject, right-click (or Alt+click) on what is not "
                "the subject; SAM updates the mask after each click",
    Tool.BOX: f"Box ({key('box')}): drag a box around the subject; SAM cuts it out",
    Tool.BRUSH: f"Brush ({key('brush')}): paint the mask (right-drag erases); {_SIZE_KEYS}",
    Tool.ERASER: f"Eraser ({key('eraser')}): erase from the mask; {_SIZE_KEYS}",
}


class ToolBar(QWidget):
    tool_changed = Signal(object)  # Tool (an enum: object keeps the member itself)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        rows = QVBoxLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        rows.setSpacing(2)
        layout, view = QHBoxLayout(), QHBoxLayout()
        rows.addLayout(layout)
        rows.addLayout(view)
        self.group = QButtonGroup(self)
        self.buttons: dict[Tool, QToolButton] = {}
        for tool in Tool:
            button = QToolButton()
            button.setText(tool.value.capitalize())
            button.setCheckable(True)
            button.setToolTip(TOOL_TIPS[tool])
            button.clicked.connect(lambda _=False, t=tool: self.tool_changed.emit(t))
            self.group.addButton(button)
            self.buttons[tool] = button
            layout.addWidget(button)
        self.buttons[Tool.CLICK].setChecked(True)
        self.size_label = QLabel()
        self.size_label.setFixedWidth(52)
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        BRUSH_SIZE.apply_range(self.size_slider)
        self.size_slider.setFixedWidth(110)
        self.size_slider.setToolTip(f"Brush size in image pixels ({key('smaller')} smaller, {key('larger')} larger)")
        self.hardness = QSpinBox()
        BRUSH_HARDNESS.apply_range(self.hardness)
        self.hardness.setSingleStep(10)
        self.hardness.setPrefix("Hardness ")
        self.hardness.setSuffix(" %")
        self.hardness.setToolTip("Brush hardness: 100 % paints a hard edge; lower values fade the edge out, "
                                 f"so the inserted subject blends into the scene there ({key('softer')} softer, "
                                 f"{key('harder')} harder). Grey in the mask = blended in part")
        self.undo = _button("Undo", f"Undo the last point, box, stroke, SAM result or clear ({key('undo')})")
        self.undo.setEnabled(False)
        self.redo = _button("Redo", f"Redo what Undo took back ({key('redo')})")
        self.redo.setEnabled(False)
        self.sam_mode = QComboBox()
        self.sam_mode.addItem("SAM adds", "add")
        self.sam_mode.addItem("SAM subtracts", "subtract")
        self.sam_mode.setToolTip("Add: a click or box adds SAM's cut-out to the mask (brush work is kept). "
                                 "Subtract: it cuts SAM's cut-out out of the mask")
        self.instance = QComboBox()
        self.instance.setToolTip("Auto-detect's boxes, best first: keep one, or all of them")
        self.instance.setEnabled(False)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setFixedWidth(70)
        self.opacity.setToolTip("Mask opacity")
        self.colour = _button("Colour", "Mask colour")
        self.zoom_label = QLabel("100 %")
        self.zoom_label.setFixedWidth(52)
        self.zoom_label.setToolTip("Zoom: screen pixels per scene pixel (wheel zooms, middle-drag pans)")
        self.actual = _button("100%", f"Actual size, one scene pixel per screen pixel ({key('actual_size')})")
        self.clear = QToolButton()
        self.clear.setText("Clear")
        self.clear.setToolTip("Remove all points, the box and the mask")
        self.fit = QToolButton()
        self.fit.setText("Fit")
        self.fit.setToolTip(f"Fit the scene to the view ({key('fit')})")
        self.detect = QPushButton("Auto-detect")
        self.detect.setToolTip("Find every instance of the project's class noun and cut them out; pick one "
                               "in the list next to it")
        layout.addSpacing(8)
        widget: QWidget
        for widget in (self.size_slider, self.size_label, self.hardness):
            layout.addWidget(widget)
        layout.addStretch(1)
        layout.addWidget(self.detect)
        # Auto-detect's list gets a row of its own, shown only with detections: beside the button
        # it widened the window past a 1366-pixel screen (its items are as long as their labels).
        self.instance_row = QWidget()
        picked = QHBoxLayout(self.instance_row)
        picked.setContentsMargins(0, 0, 0, 0)
        picked.addWidget(QLabel("Auto-detect found:"))
        picked.addWidget(self.instance)
        picked.addStretch(1)
        rows.addWidget(self.instance_row)
        self.instance_row.setVisible(False)
        for widget in (self.undo, self.redo, self.clear):  # on this row so the panel fits 1366 px
            view.addWidget(widget)
        view.addSpacing(8)
        view.addWidget(self.sam_mode)
        view.addSpacing(8)
        view.addWidget(QLabel("Mask"))
        for widget in (self.opacity, self.colour):
            view.addWidget(widget)
        view.addStretch(1)
        for widget in (self.fit, self.actual, self.zoom_label):
            view.addWidget(widget)

    def show_detections(self, detections: tuple) -> None:
        """The Instance list: "all N" then each box with its score."""
        self.instance.blockSignals(True)
        self.instance.clear()
        if detections:
            self.instance.addItem(f"all {len(detections)}", None)
            for index, (_box, score, label) in enumerate(detections):
                self.instance.addItem(f"#{index + 1} {label} {score:.2f}".replace("  ", " "), index)
        self.instance.setEnabled(len(detections) > 1)
        self.instance_row.setVisible(bool(detections))
        self.instance.blockSignals(False)

    def select(self, tool: Tool) -> None:
        self.buttons[tool].setChecked(True)


def _button(text: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    return button


RESULT_ACTIONS: tuple[tuple[str, str] | None, ...] = (
    ("view", "View large…"), ("reuse", "Reuse parameters"), ("scene", "Use as scene"),
    ("copy", "Copy image"), ("reveal", "Reveal in folder"),
    ("layers", "Save as layers (.ora, .psd, subject .png)"), ("editor", "Open as layers in editor"),
    None,  # a separator
    ("delete", "Delete (to the project's trash)"),
)


class ResultStrip(QWidget):
    """Thumbnails of the finished images (hidden while there are none); ``selected(path or '')``
    when one is picked."""

    selected = Signal(str)
    action = Signal(str, str)  # (action name from RESULT_ACTIONS, path)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setFlow(QListView.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setIconSize(QSize(96, 96))
        # Wide enough for "seed 2147483647", and elided in the middle: variations differ in their
        # last digits and their scores, which an elided end hid (every label read "seed 31415…").
        self.list.setGridSize(QSize(132, 128))
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setFixedHeight(136)
        self.list.setSpacing(4)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.itemDoubleClicked.connect(lambda item: self.action.emit("view", item.data(Qt.ItemDataRole.UserRole)))
        self.order = QComboBox()
        self.order.setToolTip("Order of the results: newest first, or by a score (best first)")
        self.order.addItem("Newest", "newest")
        self.compare = QPushButton("Showing: After")
        self.compare.setCheckable(True)
        self.compare.setToolTip("Toggle between the result (After) and the scene it came from (Before); "
                                "right-click a result for more")
        self.compare.toggled.connect(lambda on: self.compare.setText("Showing: " + ("After" if on else "Before")))
        self.compare.setEnabled(False)
        self.open_folder = QPushButton("Open folder")
        self.open_folder.setToolTip("Show the folder that holds this image")
        self.open_folder.setEnabled(False)
        self.edit = QPushButton("Edit mask")
        self.edit.setToolTip("Back to the scene and its mask")
        self.edit.setEnabled(False)
        self.edit.clicked.connect(self.list.clearSelection)
        self.edit.clicked.connect(lambda: self.list.setCurrentRow(-1))  # no current item
        side = QVBoxLayout()
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.order)
        for button in (self.compare, self.edit, self.open_folder):
            side.addWidget(button)
        side.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addLayout(side)
        self.setVisible(False)

    def add(self, path: str, thumbnail: QImage, label: str, tooltip: str) -> QListWidgetItem:
        item = QListWidgetItem(QIcon(QPixmap.fromImage(thumbnail)), label)
        item.setData(Qt.ItemDataRole.UserRole, path)
        item.setToolTip(tooltip)
        item.setSizeHint(QSize(112, 124))
        self.list.insertItem(0, item)  # newest first
        self.setVisible(True)
        return item

    def show_orders(self, score_names: tuple[str, ...], current: str) -> None:
        self.order.blockSignals(True)
        self.order.clear()
        self.order.addItem("Newest", "newest")
        for name in score_names:
            self.order.addItem(f"Best {name}", name)
        self.order.setCurrentIndex(max(self.order.findData(current), 0))
        self.order.setVisible(bool(score_names))
        self.order.blockSignals(False)

    def _menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        path = item.data(Qt.ItemDataRole.UserRole)
        menu = QMenu(self)
        for entry in RESULT_ACTIONS:
            if entry is None:
                menu.addSeparator()
            else:
                name, text = entry
                action = menu.addAction(text)
                action.triggered.connect(lambda _checked=False, n=name: self.action.emit(n, path))
        menu.popup(self.list.viewport().mapToGlobal(pos))

    def clear(self) -> None:
        self.list.clear()
        self.setVisible(False)
        self._on_current(None)

    def select_path(self, path: str) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == path:
                self.list.setCurrentRow(row)
                return

    def current_path(self) -> str:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else ""

    def _on_current(self, item: QListWidgetItem | None, _previous: object = None) -> None:
        path = item.data(Qt.ItemDataRole.UserRole) if item is not None else ""
        for button in (self.compare, self.edit, self.open_folder):
            button.setEnabled(bool(path))
        self.selected.emit(path)


class ActionArea(QWidget):
    """Insert and Cancel, the progress bar (shown while a long job runs) and the one message line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.insert_button = QPushButton("Insert")
        self.insert_button.setObjectName("primary")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.insert_button, 1)
        buttons.addWidget(self.cancel_button)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setMinimumHeight(4 * self.message.fontMetrics().lineSpacing())
        self.message.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details_button = QPushButton("Details…")
        self.details_button.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(self.details_button, 0, Qt.AlignmentFlag.AlignRight)

    def set_busy(self, busy: bool) -> None:
        self.insert_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)
        if not busy:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)

    def show_progress(self, event: Progress) -> None:
        """A bar per denoising step; a busy bar while models load or the subject is located."""
        if event.total and event.stage in ("insert", "scene"):
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.step)
        elif event.stage in ("load", "locate"):
            self.progress.setRange(0, 0)
        if event.message:
            self.set_message(f"{event.stage}: {event.message}")

    def set_message(self, text: str, error: bool = False) -> None:
        """One readable line (red for errors); the Details button is shown by the caller."""
        self.message.setText(text)
        self.message.setToolTip(text)
        self.message.setStyleSheet("color: #c0392b;" if error else "color: #6b6f76;")
        self.details_button.setVisible(False)


__all__ = ["ActionArea", "ResultStrip", "ToolBar"]
