"""The brush's size and hardness as a settings group that ``WorkspaceSettingsKeeper`` remembers
per project, next to the Insert area's request settings (``workspace/insert.json``, "brush").

The values stay observable properties of :class:`~alchemy_gui.insert.state.InsertState`
(``brush_size``, ``brush_hardness``), where the panel and the shortcuts bind to them; this group
only reads, writes and follows them, like a :class:`~alchemy_gui.common.request_settings.RequestSettings`.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

BRUSH_SIZE = 24  # pixels of the image
BRUSH_HARDNESS = 100  # percent: a hard edge, as the brush always painted


class BrushSettings(QObject):
    changed = Signal(str)
    initial = {"brush_size": BRUSH_SIZE, "brush_hardness": BRUSH_HARDNESS}

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
        setattr(self.state, name, min(max(int(value), 0 if name == "brush_hardness" else 1),
                                      100 if name == "brush_hardness" else 256))


__all__ = ["BRUSH_HARDNESS", "BRUSH_SIZE", "BrushSettings"]
