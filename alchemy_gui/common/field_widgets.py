"""Form widgets described by a request field's metadata (``api.field_info``): tooltip = the
field's help, range = its minimum and maximum, items = its choices. The caller chooses the widget
kind and how it looks (step, decimals, suffix); labels come from ``info.label``."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox, QWidget

from alchemy_engine.api import FieldInfo

INT_LIMIT = 2**31 - 1  # QSpinBox holds a C int
FLOAT_LIMIT = 1e9
W = TypeVar("W", bound=QWidget)


def describe(widget: W, info: FieldInfo) -> W:
    widget.setToolTip(info.help)
    widget.setObjectName(f"field_{info.name}")
    return widget


def int_spin_box(info: FieldInfo, *, minimum: int | None = None, step: int = 1, suffix: str = "") -> QSpinBox:
    """``minimum`` overrides the field's, for a special value below it (e.g. -1 = "random")."""
    box = QSpinBox()
    low = minimum if minimum is not None else info.minimum
    box.setRange(int(low) if low is not None else -INT_LIMIT,
                 int(info.maximum) if info.maximum is not None else INT_LIMIT)
    box.setSingleStep(step)
    box.setSuffix(suffix)
    return describe(box, info)


def float_spin_box(info: FieldInfo, *, decimals: int = 2, step: float = 0.1) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(info.minimum if info.minimum is not None else -FLOAT_LIMIT,
                 info.maximum if info.maximum is not None else FLOAT_LIMIT)
    box.setSingleStep(step)
    return describe(box, info)


def check_box(info: FieldInfo) -> QCheckBox:
    return describe(QCheckBox(info.label), info)


def choice_box(info: FieldInfo) -> QComboBox:
    """The field's choices, each item's data being the choice itself."""
    combo = QComboBox()
    for choice in info.choices:
        combo.addItem(choice, choice)
    return describe(combo, info)


def line_edit(info: FieldInfo) -> QLineEdit:
    """A text field; an optional field shows what leaving it empty means."""
    edit = QLineEdit()
    if info.optional:
        edit.setPlaceholderText(info.default_text() if info.default is not None else "auto")
    return describe(edit, info)


__all__ = ["FLOAT_LIMIT", "INT_LIMIT", "check_box", "choice_box", "describe", "float_spin_box", "int_spin_box",
           "line_edit"]
