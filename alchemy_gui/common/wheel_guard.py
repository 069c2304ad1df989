"""Spin boxes, sliders and combo boxes ignore the mouse wheel unless they have the keyboard focus,
so scrolling a long form scrolls the form instead of changing values under the pointer.

One application-wide event filter (:func:`install_wheel_guard`): such a widget gets
``Qt.StrongFocus`` (a wheel never focuses it) and an unfocused one hands the wheel to the scroll area around it.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QSlider,
    QWidget,
)

GUARDED = (QAbstractSpinBox, QComboBox, QSlider)  # not QScrollBar: scrolling is the point


def _guarded(obj: QObject) -> QWidget | None:
    """The spin box, combo or slider that ``obj`` is (or is the line edit of)."""
    if isinstance(obj, GUARDED) and not isinstance(obj.parent(), (QAbstractSpinBox, QComboBox)):
        return obj
    parent = obj.parent() if isinstance(obj, QWidget) else None
    return parent if isinstance(parent, (QAbstractSpinBox, QComboBox)) else None


class WheelGuard(QObject):
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        kind = event.type()
        if kind not in (QEvent.Type.Wheel, QEvent.Type.Polish):
            return False
        widget = _guarded(obj)
        if widget is None:
            return False
        if kind == QEvent.Type.Polish:
            if widget.focusPolicy() == Qt.FocusPolicy.WheelFocus:
                widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            return False
        if widget.hasFocus() or (isinstance(widget, QComboBox) and widget.view().isVisible()):
            return False
        area = widget.parentWidget()
        while area is not None and not isinstance(area, QAbstractScrollArea):
            area = area.parentWidget()
        if area is not None:  # a re-sent wheel event does not propagate: hand it to the scroll area itself
            QCoreApplication.sendEvent(area.viewport(), event)
        return True


def install_wheel_guard(app: QApplication) -> WheelGuard:
    """Install the filter once per application; returns it (kept alive by the app)."""
    existing = app.findChild(WheelGuard)
    if existing is not None:
        return existing
    guard = WheelGuard(app)
    app.installEventFilter(guard)
    return guard


__all__ = ["WheelGuard", "install_wheel_guard"]
