"""The Train and Insert forms offer exactly each request field's declared range and choices (the
GUI part of ``tests/engine/test_field_agreement.py``), and a workspace remembers what the fields and
properties say (``remember`` / ``Property(persist=...)``), nothing more.

Every form widget of a field is named ``field_<name>``; the test finds them on the real panels, so a
widget added with a range of its own, or a field whose range changes without its widget, fails here.
"""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox, QWidget

from alchemy_engine import api
from alchemy_engine import project as projects
from alchemy_gui.common import field_widgets as fw
from alchemy_gui.common.app_settings import WorkspaceSettingsKeeper
from alchemy_gui.common.binding import Property
from alchemy_gui.common.job_list import JobList
from alchemy_gui.insert.panel import InsertPanel
from alchemy_gui.insert.state import InsertionSettings, LocateSettings
from alchemy_gui.projects.state import ProjectsState
from alchemy_gui.train.panel import TrainPanel
from alchemy_gui.train.state import TrainSettings

# Ranged fields a form takes as typed text (1e-4 reads as written); validate() says what is wrong.
TYPED_AS_TEXT = {"learning_rate", "alpha"}
# Shown in another unit: the work size is the side of a square of work_pixels.
SQUARED = {"work_pixels"}


def _info(panel: str, name: str) -> api.FieldInfo:
    if panel == "train":
        return api.field_info(api.TrainRequest, name)
    cls = api.InsertRequest if name in api.InsertRequest.__dataclass_fields__ else api.LocateOptions
    return api.field_info(cls, name)


def _field_widgets(widget: QWidget) -> dict[str, QWidget]:
    found: dict[str, QWidget] = {}
    for child in widget.findChildren(QWidget):
        name = child.objectName()
        if name.startswith("field_"):
            assert name[6:] not in found, f"two widgets named {name}"
            found[name[6:]] = child
    return found


def _check(info: api.FieldInfo, widget: QWidget) -> None:
    ranged = info.minimum is not None or info.maximum is not None
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        step = 1 if isinstance(widget, QSpinBox) else 10.0 ** -widget.decimals()
        low, high = widget.minimum(), widget.maximum()
        if info.name in SQUARED:
            low, high = low * low, high * high
        if widget.specialValueText():  # one value below the minimum stands for None ("random")
            assert info.optional, f"{info.name}: a special value needs an optional field"
            low += 1
        limit = fw.INT_LIMIT if isinstance(widget, QSpinBox) else fw.FLOAT_LIMIT
        expected_low = -limit if info.minimum is None else info.minimum + (step if info.exclusive_minimum else 0)
        assert low == pytest.approx(expected_low), info.name
        assert high == pytest.approx(limit if info.maximum is None else info.maximum), info.name
        assert not info.choices and not info.multiple_of, info.name
    elif isinstance(widget, QComboBox) and widget.isEditable():  # typed or picked numbers (resolution)
        validator = widget.validator()
        assert (validator.bottom(), validator.top()) == (info.minimum, info.maximum), info.name
        for i in range(widget.count()):
            assert api.value_problem(info, int(widget.itemText(i))) == "", (info.name, widget.itemText(i))
    elif isinstance(widget, QComboBox) and info.choices:
        assert [widget.itemData(i) for i in range(widget.count())] == list(info.choices), info.name
    elif isinstance(widget, QComboBox):  # a picker of what this computer has (models, runs, files)
        assert not ranged, info.name
    elif isinstance(widget, QCheckBox):
        assert info.kind is bool, info.name
    else:
        assert isinstance(widget, QLineEdit), (info.name, type(widget))
        assert not info.choices and (not ranged or info.name in TYPED_AS_TEXT), info.name


@pytest.fixture
def panels(qtbot):
    runner = JobList()
    state = ProjectsState(runner)
    train, insert = TrainPanel(state, runner), InsertPanel(state, runner)
    for panel in (train, insert):
        qtbot.addWidget(panel)
    yield {"train": train, "insert": insert}
    runner.cancel_all()
    qtbot.waitUntil(lambda: not runner.busy, timeout=60_000)


def test_every_form_widget_offers_its_fields_declared_range_and_choices(panels):
    checked = {}
    for kind, panel in panels.items():
        widgets = _field_widgets(panel)
        for name, widget in widgets.items():
            _check(_info(kind, name), widget)
        checked[kind] = set(widgets)
    # the forms show what they are known to show: a lost objectName would skip a field silently
    assert {"steps", "resolution", "seed", "prior_weight", "min_snr_gamma", "keep_last", "optimizer"} <= checked["train"]
    assert {"strength", "seed", "grow", "feather", "work_pixels", "ip_scale", "ip_mode", "batch_size",
            "sampler"} <= checked["insert"]


def test_an_exclusive_minimum_shows_as_the_smallest_step_above_it(panels):
    prior_weight = _field_widgets(panels["train"])["prior_weight"]
    assert api.field_info(api.TrainRequest, "prior_weight").exclusive_minimum
    assert prior_weight.minimum() == pytest.approx(10.0 ** -prior_weight.decimals())
    strength = _field_widgets(panels["insert"])["strength"]
    assert strength.minimum() == pytest.approx(0.01) and math.isclose(strength.maximum(), 1.0)


def test_a_workspace_remembers_what_each_field_and_property_says(qtbot):
    assert not TrainSettings.device.persist and not TrainSettings.mixed_precision.persist
    assert TrainSettings.steps.persist and InsertionSettings.steps.persist
    assert not InsertionSettings.prompt.persist and not InsertionSettings.run.persist
    assert not LocateSettings.sam.persist and not LocateSettings.detector.persist

    class View(QObject):
        project_changed = Signal(object)
        changed = Signal(str)
        zoom_changed = Signal(object)
        note_changed = Signal(object)
        zoom = Property(1.0)
        note = Property("", persist=False)
        initial = {"zoom": 1.0, "note": ""}

        def values(self):
            return {"zoom": self.zoom, "note": self.note}

        def set(self, name, value):
            setattr(self, name, value)

    project = projects.create_project("Rex", class_noun="dog", token="sks")
    view = View()
    view.project = None
    keeper = WorkspaceSettingsKeeper(view, "view", {"view": view})
    view.zoom, view.note = 2.0, "one scene's"
    keeper.project = project
    keeper.save()
    assert api.load_workspace_settings(project, "view") == {"view": {"zoom": 2.0}}
    api.save_workspace_settings(project, "view", {"view": {"zoom": 3.0, "note": "from a file"}})
    keeper.restore()
    assert (view.zoom, view.note) == (3.0, "one scene's")
