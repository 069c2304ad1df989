"""The Insert panel's keyboard shortcuts (active while the panel has focus; their keys are the
"Insert canvas" rows of :data:`alchemy_gui.shell.shortcuts.SHORTCUTS`) and what a result's context
menu does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QImage, QShortcut
from PySide6.QtWidgets import QMessageBox, QWidget

from alchemy_gui.insert.layers_action import save_layers
from alchemy_gui.insert.mask_document import Tool
from alchemy_gui.insert.result_jobs import InsertedImage
from alchemy_gui.insert.result_view import ResultDialog
from alchemy_gui.shell.shortcuts import INSERT_CANVAS, SHORTCUTS

if TYPE_CHECKING:  # the panel imports this module
    from alchemy_gui.insert.panel import InsertPanel
    from alchemy_gui.insert.state import InsertState

BRUSH_STEP = 1.25  # [ and ] scale the brush by this much
HARDNESS_STEP = 10  # Shift+[ and Shift+] change the hardness by this many percent


def result_label(result: InsertedImage, order: str = "newest") -> str:
    """The text under a thumbnail: what tells variations apart — the seed, and one score (the one
    the strip is sorted by, else the first) short enough to be read whole; every score is in the
    tooltip."""
    seed = f"seed {result.seed}" if result.seed is not None else result.path.stem
    if not result.scores:
        return seed
    name = order if order in result.scores else sorted(result.scores)[0]
    return f"{seed}\n{name} {result.scores[name]:.3f}"


def result_tooltip(result: InsertedImage) -> str:
    lines = [str(result.path), result.prompt]
    lines += [f"{name}: {value:.3f}" for name, value in sorted(result.scores.items())]
    return "\n".join(line for line in lines if line)


def add_shortcuts(panel: InsertPanel) -> list[QShortcut]:
    state, canvas = panel.insert_state, panel.canvas

    def brush(factor: float) -> None:
        state.brush_size = round(state.brush_size * factor) + (1 if factor > 1 else -1)  # the property clamps

    def hardness(step: int) -> None:
        state.brush_hardness += step

    slots: dict[str, Callable[[], object]] = {
        "click": lambda: panel._choose_tool(Tool.CLICK), "box": lambda: panel._choose_tool(Tool.BOX),
        "brush": lambda: panel._choose_tool(Tool.BRUSH), "eraser": lambda: panel._choose_tool(Tool.ERASER),
        "smaller": lambda: brush(1 / BRUSH_STEP), "larger": lambda: brush(BRUSH_STEP),
        "softer": lambda: hardness(-HARDNESS_STEP), "harder": lambda: hardness(HARDNESS_STEP),
        "fit": canvas.fit, "actual_size": canvas.actual_size, "undo": state.undo, "redo": state.redo,
    }
    shortcuts = []
    for entry in SHORTCUTS:
        if entry.where != INSERT_CANVAS:
            continue
        for sequence in entry.sequences():
            shortcut = QShortcut(sequence, panel)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slots[entry.name])
            shortcuts.append(shortcut)
    return shortcuts


def result_action(panel: InsertPanel, name: str, path: str) -> None:
    """One entry of a result's context menu (see ``tools.RESULT_ACTIONS``)."""
    state = panel.insert_state
    result = state.outputs.find(path)
    if result is None:
        return
    if name == "view":
        show_large(panel, result)
    elif name == "reuse":
        state.outputs.reuse_parameters(result.path)
    elif name == "scene":
        state.outputs.use_as_scene(result.path)
    elif name == "copy":
        state.outputs.with_result_image(result.path, lambda image: _copy(state, result.path, image))
    elif name in ("layers", "editor"):
        save_layers(panel, result.path, open_editor=name == "editor")
    elif name == "reveal":
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(result.path.parent)))
    elif name == "delete":
        answer = QMessageBox.question(panel, "Delete result", f"Move {result.path.name} to the project's trash "
                                      "folder (trash/outputs/)? You can move it back from there.")
        if answer == QMessageBox.StandardButton.Yes:
            state.outputs.delete(result.path)


def _copy(state: InsertState, path: Path, image: QImage) -> None:
    if image.isNull():
        state.set_message(f"Could not read {path.name}: is it still on disk? Nothing was copied.")
        return
    QGuiApplication.clipboard().setImage(image)
    state.set_message(f"Copied {path.name} to the clipboard.")


def show_large(parent: InsertPanel, result: InsertedImage) -> None:
    """Open the result large once the output and its scene are decoded (off the UI thread)."""
    state = parent.insert_state

    def with_after(after: QImage) -> None:
        if result.scene is None:
            _open_large(parent, result, QImage(), after)
        else:  # a scene no longer on disk reads as a null image: the dialog says so
            state.outputs.read_image(result.scene, lambda before: _open_large(parent, result, before, after))

    state.outputs.with_result_image(result.path, with_after)


def _open_large(parent: QWidget, result: InsertedImage, before: QImage, after: QImage) -> None:
    dialog = ResultDialog(f"Result — {result.path.name}", before, after, result_tooltip(result), parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()


__all__ = ["add_shortcuts", "result_action", "result_label", "result_tooltip", "show_large"]
