"""The brush's size and hardness: their defaults and limits (declared once, on the properties
themselves), and the settings group that ``WorkspaceSettingsKeeper`` remembers per project, next to
the Insert area's request settings (``workspace/insert.json``, "brush").

:data:`BRUSH_SIZE` and :data:`BRUSH_HARDNESS` are the observable properties
:class:`~alchemy_gui.insert.state.InsertState` declares as ``brush_size`` and ``brush_hardness``:
whatever sets them (the tool bar, the shortcuts, a remembered setting) is kept within their
limits, and the tool bar's widgets take their ranges from them.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QSlider, QSpinBox

from alchemy_gui.common.binding import Property


class BoundedProperty(Property):
    """An integer :class:`Property` kept within ``minimum``..``maximum``: a value outside is clamped."""

    def __init__(self, default: int, minimum: int, maximum: int) -> None:
        super().__init__(default)
        self.minimum, self.maximum = minimum, maximum

    def clamp(self, value: Any) -> int:
        return min(max(int(value), self.minimum), self.maximum)

    def __set__(self, obj: Any, value: Any) -> None:
        super().__set__(obj, self.clamp(value))

    def apply_range(self, widget: QSlider | QSpinBox) -> None:
        widget.setRange(self.minimum, self.maximum)


BRUSH_SIZE = BoundedProperty(24, minimum=1, maximum=256)  # diameter in pixels of the image
BRUSH_HARDNESS = BoundedProperty(100, minimum=0, maximum=100)  # percent: 100 paints a hard edge


class BrushSettings(QObject):
    changed = Signal(str)
    initial = {"brush_size": BRUSH_SIZE.default, "brush_hardness": BRUSH_HARDNESS.default}

    def __init__(self, state: QObject) -> None:
        super().__init__(state)
        self.state = state
        for name in self.initial:
            getattr(state, f"{name}_changed").connect(lambda _value, n=name: self.changed.emit(n))

    def values(self) -> dict[str, Any]:
        return {name: getattr(self.state, name) for name in self.initial}

    def set(self, name: str, value: Any) -> None:
        if name not in self.initial:
            raise KeyError(f"no brush setting {name!r}")
        setattr(self.state, name, value)  # the property keeps it within its limits


__all__ = ["BRUSH_HARDNESS", "BRUSH_SIZE", "BoundedProperty", "BrushSettings"]
