"""Every keyboard shortcut of the window, in one table: the menus and the Insert panel make their
key bindings from it, tool tips name their keys from it, and Help → Keyboard shortcuts lists it.

Keys are portable :class:`QKeySequence` strings ("Ctrl" is Cmd on macOS).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QKeySequence

ANYWHERE = "Anywhere"
INSERT_CANVAS = "Insert canvas"  # while the Insert panel has focus


@dataclass(frozen=True)
class Shortcut:
    name: str  # what the code looks it up by
    keys: tuple[str, ...]  # the first is the one tool tips show
    where: str
    what: str

    def sequences(self) -> list[QKeySequence]:
        return [QKeySequence(key) for key in self.keys]

    @property
    def text(self) -> str:
        """The keys as the help dialog shows them."""
        return " or ".join(self.keys)


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("new_project", ("Ctrl+N",), ANYWHERE, "New project"),
    Shortcut("start", ("Ctrl+Return", "Ctrl+Enter"), ANYWHERE, "Start training (Train tab) or insert (Insert tab)"),
    Shortcut("stop", ("Esc",), ANYWHERE, "Stop the running job (training saves a checkpoint first)"),
    Shortcut("preferences", ("Ctrl+,",), ANYWHERE, "Preferences"),
    Shortcut("shortcuts", ("F1",), ANYWHERE, "This list"),
    Shortcut("quit", ("Ctrl+Q",), ANYWHERE, "Quit (asks first while a job runs)"),
    Shortcut("click", ("S",), INSERT_CANVAS, "Click tool (SAM)"),
    Shortcut("box", ("X",), INSERT_CANVAS, "Box tool (SAM)"),
    Shortcut("brush", ("B",), INSERT_CANVAS, "Brush: paint the mask"),
    Shortcut("eraser", ("E",), INSERT_CANVAS, "Eraser: erase from the mask"),
    Shortcut("smaller", ("[",), INSERT_CANVAS, "Smaller brush"),
    Shortcut("larger", ("]",), INSERT_CANVAS, "Larger brush"),
    Shortcut("softer", ("Shift+[",), INSERT_CANVAS, "Softer brush (hardness − 10 %)"),
    Shortcut("harder", ("Shift+]",), INSERT_CANVAS, "Harder brush (hardness + 10 %)"),
    Shortcut("fit", ("F",), INSERT_CANVAS, "Fit the scene to the view"),
    Shortcut("actual_size", ("Ctrl+0",), INSERT_CANVAS, "Zoom to 100 %"),
    Shortcut("undo", ("Ctrl+Z",), INSERT_CANVAS, "Undo a mask edit"),
    Shortcut("redo", ("Ctrl+Shift+Z",), INSERT_CANVAS, "Redo a mask edit"),
)
_BY_NAME = {s.name: s for s in SHORTCUTS}


def shortcut(name: str) -> Shortcut:
    return _BY_NAME[name]


def key(name: str) -> str:
    """The key a tool tip names for ``name`` (its first)."""
    return _BY_NAME[name].keys[0]


__all__ = ["ANYWHERE", "INSERT_CANVAS", "SHORTCUTS", "Shortcut", "key", "shortcut"]
