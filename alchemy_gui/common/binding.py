"""Observable properties on QObject view-models, and the bindings that tie widgets to them.

The shape of krita-ai-diffusion's ``Property``/``bind`` (``ai_diffusion/model/properties.py``)::

    class BrushState(QObject):
        size_changed = Signal(object)  # declared by hand: Qt reads signals when the class is made
        size = Property(24)

    bind(state, "size", slider)                 # two-way: slider ↔ state.size
    bind_to(state, "size", canvas.set_brush)    # one-way: state.size → canvas

A :class:`Property` stores its value on the instance and emits ``<name>_changed(value)`` only when
the value really changes (a value of another type counts as a change: ``1`` → ``1.0``). While a
binding writes a value into its widget the widget's signals are blocked, and a change that came
from the widget is not written back into it, so there are no feedback loops and a user's typing is
never rewritten under the cursor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QDoubleSpinBox,
    QLineEdit,
    QSlider,
    QSpinBox,
    QWidget,
)


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same type (so that ``False`` → ``0`` still counts as a change)."""
    return a is b or (type(a) is type(b) and bool(a == b))


class Property:
    """An observable attribute of a QObject; the class must declare ``<name>_changed = Signal(...)``.

    ``same(old, new)`` decides whether a new value is a change (default :func:`same_value`; pass
    ``operator.is_`` for objects whose equality is not what the view cares about). ``persist``: a
    workspace remembers it per project when its group is kept by ``WorkspaceSettingsKeeper``
    (False: this computer's or one scene's value; a request field's comes from its ``remember``).
    """

    def __init__(self, default: Any = None, *, same: Callable[[Any, Any], bool] = same_value,
                 persist: bool = True) -> None:
        self.default = default
        self.same = same
        self.persist = persist
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @property
    def signal_name(self) -> str:
        return f"{self.name}_changed"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj.__dict__.get(self.name, self.default)

    def __set__(self, obj: Any, value: Any) -> None:
        if self.same(self.__get__(obj), value):
            return
        obj.__dict__[self.name] = value
        getattr(obj, self.signal_name).emit(value)


def observable_properties(cls: type) -> dict[str, Property]:
    """Name → :class:`Property` of a view-model class (base classes first)."""
    found: dict[str, Property] = {}
    for klass in reversed(cls.__mro__):
        found.update({k: v for k, v in vars(klass).items() if isinstance(v, Property)})
    return found


@dataclass(frozen=True)
class _Adapter:
    """How a widget kind shows a value and reports a change."""

    signal: str
    read: Callable[[Any, tuple], Any]  # (widget, the change signal's arguments) → value
    write: Callable[[Any, Any], None]


def _select_data(combo: QComboBox, value: Any) -> None:
    # Not findData(): it compares Python objects (a tuple, say) by identity, not by value.
    index = next((i for i in range(combo.count()) if same_value(combo.itemData(i), value)), -1)
    combo.setCurrentIndex(index)  # -1 (nothing shown) when absent


def _set_text(edit: QLineEdit, text: str) -> None:
    edit.setText(text)
    if not edit.hasFocus():
        edit.setCursorPosition(0)  # a long text shows its beginning


def _select_text(combo: QComboBox, text: Any) -> None:
    if combo.isEditable():
        combo.setCurrentText(str(text))
    else:
        combo.setCurrentIndex(combo.findText(str(text)))


def _first(widget: Any, args: tuple) -> Any:
    return args[0]


def _adapter(widget: QWidget, combo: str) -> _Adapter:
    if isinstance(widget, (QSpinBox, QDoubleSpinBox, QSlider)):
        return _Adapter("valueChanged", _first, lambda w, v: w.setValue(v))
    if isinstance(widget, QLineEdit):
        return _Adapter("textChanged", _first, _set_text)
    if isinstance(widget, QAbstractButton):
        return _Adapter("toggled", _first, lambda w, v: w.setChecked(bool(v)))
    if isinstance(widget, QComboBox) and combo == "data":
        return _Adapter("currentIndexChanged", lambda w, args: w.itemData(args[0]), _select_data)
    if isinstance(widget, QComboBox) and combo == "text":
        return _Adapter("currentTextChanged", _first, _select_text)
    raise TypeError(f"bind() does not know how to bind a {type(widget).__name__} (combo={combo!r})")


class Binding:
    """The connections of one :func:`bind` or :func:`bind_to`; :meth:`disconnect` drops them."""

    def __init__(self, model: QObject) -> None:
        self.model = model
        self._model_side: list[tuple[Any, Callable]] = []
        self._widget_side: list[tuple[Any, Callable]] = []
        self._refresh: Callable[[], None] = lambda: None

    def _connect(self, signal: Any, slot: Callable, widget_side: bool = False) -> None:
        signal.connect(slot)
        (self._widget_side if widget_side else self._model_side).append((signal, slot))

    def refresh(self) -> None:
        """Show the model's value again (after the widget was refilled, for instance)."""
        self._refresh()

    def disconnect(self) -> None:
        for signal, slot in self._widget_side:
            signal.disconnect(slot)
        self._widget_side.clear()
        self._widget_gone()

    def _widget_gone(self, *_: Any) -> None:
        """The widget was destroyed (its own connections went with it): stop updating it."""
        for signal, slot in self._model_side:
            if shiboken6.isValid(self.model):  # a model torn down with its view has no connections left
                signal.disconnect(slot)
        self._model_side.clear()
        self._refresh = lambda: None


def bind(model: QObject, name: str, widget: QWidget, *, combo: str = "data", signal: str | None = None,
         to_model: Callable[[Any], Any] | None = None, to_widget: Callable[[Any], Any] | None = None) -> Binding:
    """Two-way binding of ``model.<name>`` and a QSpinBox, QDoubleSpinBox, QSlider, QLineEdit,
    QCheckBox (any checkable button) or QComboBox, which then shows the model's current value.

    ``combo``: a combo box binds its current item's data (``"data"``) or text (``"text"``).
    ``signal``: the widget signal that reports a change (default: valueChanged, textChanged,
    toggled, currentIndexChanged / currentTextChanged; e.g. ``"textEdited"`` or ``"activated"`` to
    take only the user's own edits). ``to_model`` / ``to_widget`` convert between the two.
    """
    adapter = _adapter(widget, combo)
    binding = Binding(model)
    writing = [False]  # True while this widget's change is being stored in the model

    def push(*args: Any) -> None:
        value = adapter.read(widget, args)
        writing[0] = True
        try:
            setattr(model, name, to_model(value) if to_model else value)
        finally:
            writing[0] = False

    def show(value: Any) -> None:
        if writing[0]:
            return
        blocked = widget.blockSignals(True)
        try:
            adapter.write(widget, to_widget(value) if to_widget else value)
        finally:
            widget.blockSignals(blocked)

    binding._connect(getattr(model, f"{name}_changed"), show)
    binding._connect(getattr(widget, signal or adapter.signal), push, widget_side=True)
    binding._connect(widget.destroyed, binding._widget_gone, widget_side=True)
    binding._refresh = lambda: show(getattr(model, name))
    binding.refresh()
    return binding


def bind_to(model: QObject, name: str, setter: Callable[[Any], Any]) -> Binding:
    """One-way binding: ``setter(value)`` now and on every change of ``model.<name>``."""
    binding = Binding(model)
    binding._connect(getattr(model, f"{name}_changed"), setter)
    binding._refresh = lambda: setter(getattr(model, name))
    binding.refresh()
    return binding


__all__ = ["Binding", "Property", "bind", "bind_to", "observable_properties", "same_value"]
