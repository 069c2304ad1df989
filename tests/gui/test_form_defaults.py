"""One owner for every default: the Train and Insert forms start at the engine's request defaults
and show each field's own help as the tooltip (``api.defaults`` / ``api.field_info``). Ranges and
choices: ``test_form_field_ranges.py``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

from alchemy_engine import api
from alchemy_engine.api import InsertRequest, LocateOptions, TrainRequest
from alchemy_gui.common.job_list import JobList
from alchemy_gui.insert.form import RANDOM_SEED, InsertForm
from alchemy_gui.insert.jobs import Choice, Choices
from alchemy_gui.insert.state import InsertState
from alchemy_gui.train.form import TrainForm
from alchemy_gui.train.state import TrainState


def _shown(widget):
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        return widget.value()
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, QComboBox):
        return widget.currentText()
    assert isinstance(widget, QLineEdit)
    return widget.text()


def _as_shown(value, widget):
    if isinstance(widget, QLineEdit):
        return "" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
    if isinstance(widget, QComboBox):
        return str(value)
    return value


def test_train_form_shows_the_request_defaults_ranges_and_help(qtbot):
    state = TrainState(JobList())
    form = TrainForm(state)
    qtbot.addWidget(form)
    defaults = api.defaults(TrainRequest)
    # every request field but the project and the run to resume is a setting, at its default
    assert state.settings.values() == {k: v for k, v in defaults.items() if k != "resume_run"}
    assert len(form.fields) >= 20
    for name, widget in form.fields.items():
        info = api.field_info(TrainRequest, name)
        if name == "masked_loss":  # … and, without masks, why it is disabled
            assert widget.toolTip().startswith(info.help) and "Photos tab" in widget.toolTip()
        else:
            assert widget.toolTip() == info.help, name
        assert _shown(widget) == pytest.approx(_as_shown(defaults[name], widget)), name
    assert form.model_combo.toolTip() == api.field_info(TrainRequest, "model").help
    assert form.model_combo.currentIndex() == -1 and state.settings.model is None


def _insert_form(qtbot) -> tuple[InsertState, InsertForm]:
    state = InsertState(JobList())
    form = InsertForm(state)
    qtbot.addWidget(form)
    return state, form


def test_insert_form_shows_the_request_defaults_and_help(qtbot):
    state, form = _insert_form(qtbot)
    defaults, locate = api.defaults(InsertRequest), api.defaults(InsertRequest)["locate"]
    for name in ("strength", "steps", "guidance", "lora_scale", "variations"):
        widget = getattr(form, name)
        info = api.field_info(InsertRequest, name)
        assert widget.value() == pytest.approx(defaults[name]), name
        assert widget.toolTip() == info.help, name
    batch = api.field_info(InsertRequest, "batch_size")
    assert form.batch_size.currentText() == defaults["batch_size"] == "auto"
    assert form.batch_size.toolTip() == batch.help
    form.batch_size.setCurrentText("2")
    assert state.settings.batch_size == "2"
    assert defaults["seed"] is None and form.seed.value() == RANDOM_SEED and form.seed.text() == "random"
    assert form.work_size.value() ** 2 == defaults["work_pixels"]
    assert form.negative.text() == defaults["negative_prompt"] and form.prompt.text() == ""
    assert (form.grow.value(), form.feather.value()) == (locate.grow, locate.feather)
    scene = api.defaults(api.SceneRequest)
    assert form.scene_size.currentData() == (scene["width"], scene["height"])
    for widget, cls, name in ((form.seed, InsertRequest, "seed"), (form.work_size, InsertRequest, "work_pixels"),
                              (form.negative, InsertRequest, "negative_prompt"), (form.prompt, InsertRequest, "prompt"),
                              (form.grow, LocateOptions, "grow"), (form.feather, LocateOptions, "feather"),
                              (form.sam, LocateOptions, "sam"), (form.detector, LocateOptions, "detector"),
                              (form.model, InsertRequest, "model"), (form.run, InsertRequest, "run")):
        assert widget.toolTip() == api.field_info(cls, name).help, name


def test_untouched_insert_settings_build_the_default_request(qtbot, tmp_path):
    state, _ = _insert_form(qtbot)
    state.project = SimpleNamespace(root=tmp_path, cache_dir=tmp_path / "cache", token="sks", class_noun="dog")
    image = QImage(32, 16, QImage.Format.Format_RGB32)
    state.document.set_scene(tmp_path / "scene.png", image)
    request = state.insert_request()
    defaults = api.defaults(InsertRequest)
    for name in ("model", "run", "prompt", "negative_prompt", "strength", "steps", "guidance", "lora_scale", "seed",
                 "variations", "work_pixels", "locate", "ip_adapter", "ip_scale", "ip_range", "ip_mode", "ip_photos"):
        assert getattr(request, name) == defaults[name], name
    assert request.scene == Path(tmp_path / "scene.png")


def test_no_model_chosen_lets_the_engine_choose(qtbot, tmp_path):
    """Before the model lists load, SAM and the detector are None (the engine's default_sam() /
    default_detector(), demo only in demo mode), never a silent 'demo'."""
    state, form = _insert_form(qtbot)
    state.project = SimpleNamespace(root=tmp_path, cache_dir=tmp_path / "cache", token="sks", class_noun="dog")
    state.document.set_scene(tmp_path / "scene.png", QImage(32, 16, QImage.Format.Format_RGB32))
    request = state.segment_request(points=((3, 4, 1),))
    assert request.locate.sam is None and request.locate.detector is None
    assert state.segment_request(text="dog").locate.detector is None
    # Once listed, the first entry is shown and used; a choice still offered is kept on a refresh.
    sams = (Choice("sam_vit_b", "/m/sam_vit_b.pth"), Choice("demo (random weights)", "demo"))
    state._on_choices(Choices(models=(), sams=sams, detectors=(), runs=()))
    assert state.locate.sam == "/m/sam_vit_b.pth" and form.sam.currentData() == "/m/sam_vit_b.pth"
    form.sam.setCurrentIndex(1)
    assert state.locate.sam == "demo"
    state._on_choices(Choices(models=(), sams=sams, detectors=(), runs=()))
    assert state.locate.sam == "demo" and form.sam.currentIndex() == 1
    assert state.locate.detector is None and form.run.currentText().startswith("no trained LoRA")
