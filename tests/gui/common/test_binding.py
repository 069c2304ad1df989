"""The binding helper: observable properties, two-way bind without echo, one-way bind_to."""

from __future__ import annotations

import operator

import pytest
from PySide6.QtCore import SIGNAL, QCoreApplication, QEvent, QObject, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSlider, QSpinBox

from alchemy_engine import api
from alchemy_gui.common.binding import Property, bind, bind_to, observable_properties
from alchemy_gui.common.request_settings import settings_class


class Model(QObject):
    count_changed = Signal(object)
    ratio_changed = Signal(object)
    name_changed = Signal(object)
    on_changed = Signal(object)
    choice_changed = Signal(object)
    thing_changed = Signal(object)

    count = Property(3)
    ratio = Property(0.5)
    name = Property("")
    on = Property(False)
    choice = Property("b")
    thing = Property(None, same=operator.is_)


def _record(model: Model, name: str) -> list:
    seen: list = []
    getattr(model, f"{name}_changed").connect(seen.append)
    return seen


def test_property_emits_only_on_a_real_change():
    model = Model()
    seen = _record(model, "count")
    assert model.count == 3 and Model.count.default == 3
    model.count = 3
    model.count = 4
    model.count = 4
    model.count = 4.0  # another type is a change
    assert seen == [4, 4.0]
    assert Model().count == 3  # values live on the instance
    things = _record(model, "thing")
    first, second = [1], [1]
    model.thing = first
    model.thing = second  # equal but not the same object: a change for an is-compared property
    model.thing = second
    assert things == [first, second]
    assert set(observable_properties(Model)) == {"count", "ratio", "name", "on", "choice", "thing"}


WIDGETS = {  # widget class → (getter, setter, change signal)
    QSpinBox: ("value", "setValue", "valueChanged"),
    QSlider: ("value", "setValue", "valueChanged"),
    QDoubleSpinBox: ("value", "setValue", "valueChanged"),
    QLineEdit: ("text", "setText", "textChanged"),
    QCheckBox: ("isChecked", "setChecked", "toggled"),
}


@pytest.mark.parametrize(("widget_class", "name", "value", "user_value"), [
    (QSpinBox, "count", 7, 9),
    (QSlider, "count", 7, 9),
    (QDoubleSpinBox, "ratio", 0.25, 0.75),
    (QLineEdit, "name", "Rex", "Mug"),
    (QCheckBox, "on", True, False),
])
def test_two_way_binding_without_echo(qtbot, widget_class, name, value, user_value):
    model = Model()
    widget = widget_class()
    qtbot.addWidget(widget)
    if hasattr(widget, "setRange"):
        widget.setRange(0, 10)
    getter, setter, signal = (getattr(widget, attr) for attr in WIDGETS[widget_class])
    binding = bind(model, name, widget)
    assert getter() == getattr(model, name)  # shows the current value at once
    widget_signals, model_signals = [], _record(model, name)
    signal.connect(widget_signals.append)
    setattr(model, name, value)  # model → widget, with the widget's signals blocked
    assert getter() == value and widget_signals == []
    setter(user_value)  # widget → model, once
    assert getattr(model, name) == user_value and model_signals == [value, user_value]
    binding.disconnect()
    setattr(model, name, value)
    assert getter() == user_value


def test_combo_binds_data_or_text_and_refreshes_after_refill(qtbot):
    model = Model()
    by_data, by_text = QComboBox(), QComboBox()
    for combo in (by_data, by_text):
        qtbot.addWidget(combo)
        for text in ("a", "b", "c"):
            combo.addItem(text.upper(), text)
    data_binding = bind(model, "choice", by_data)
    assert by_data.currentText() == "B"
    by_data.setCurrentIndex(2)
    assert model.choice == "c"
    bind(model, "name", by_text, combo="text")
    by_text.setCurrentIndex(0)
    assert model.name == "A"
    by_data.blockSignals(True)
    by_data.clear()
    by_data.addItem("C", "c")
    by_data.blockSignals(False)
    data_binding.refresh()
    assert by_data.currentIndex() == 0
    model.choice = "gone"
    assert by_data.currentIndex() == -1  # a value not offered shows no item
    by_data.addItem("1 × 2", (1, 2))
    model.choice = tuple([1, 2])  # equal to the item's data, not the same object
    assert by_data.currentIndex() == 1


def test_converters_and_no_rewrite_of_the_users_text(qtbot):
    model = Model()
    edit = QLineEdit()
    qtbot.addWidget(edit)

    def parse(text: str):
        try:
            return float(text)
        except ValueError:
            return text

    bind(model, "ratio", edit, signal="textEdited", to_model=parse, to_widget=lambda v: f"{v:g}")
    assert edit.text() == "0.5"
    edit.setText("1e-3")  # not a user edit: the model does not follow …
    assert model.ratio == 0.5
    edit.textEdited.emit("1e-3")  # … a user's edit does, and the text stays as typed
    assert model.ratio == pytest.approx(0.001) and edit.text() == "1e-3"
    model.ratio = 0.25
    assert edit.text() == "0.25"


def test_bind_to_calls_now_and_on_change():
    model = Model()
    seen = []
    binding = bind_to(model, "count", seen.append)
    model.count = 5
    binding.disconnect()
    model.count = 6
    assert seen == [3, 5]


def test_a_destroyed_widget_is_no_longer_updated(qtbot):
    model = Model()
    box = QSpinBox()
    bind(model, "count", box)
    changed = SIGNAL("count_changed(PyObject)")
    assert model.receivers(changed) == 1
    box.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert model.receivers(changed) == 0  # the binding let go of the model with the widget
    with qtbot.capture_exceptions() as errors:
        model.count = 8  # a binding still connected would write into the deleted spin box
    assert errors == [] and model.count == 8


def test_request_settings_start_at_the_request_defaults():
    Settings = settings_class(api.InsertRequest, ("steps", "strength", "seed"))
    settings = Settings()
    assert settings.values() == {k: api.defaults(api.InsertRequest)[k] for k in ("steps", "strength", "seed")}
    changed = []
    settings.changed.connect(changed.append)
    settings.set("steps", 12)
    assert settings["steps"] == 12 and changed == ["steps"]
    with pytest.raises(KeyError):
        settings.set("guidance", 3.0)
    settings.reset()
    assert settings.steps == api.defaults(api.InsertRequest)["steps"]
    assert Settings.info("steps").help == api.field_info(api.InsertRequest, "steps").help
    with pytest.raises(KeyError):
        settings_class(api.InsertRequest, ("project",))  # required: no default to start from
