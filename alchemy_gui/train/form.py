"""The training settings form, bound to :class:`~alchemy_gui.train.state.TrainState`'s settings.

The ``BASIC`` / ``ADVANCED`` tables choose which TrainRequest fields the form shows and with which
kind of widget; labels, tooltips, ranges, choices and initial values come from the request field
itself (``api.field_info``), so nothing here repeats a default or a help text. Whatever the user
enters goes to the settings and ``TrainRequest.validate()`` says what is wrong, so the rules live
in one place.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, cast

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QIntValidator, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine import api
from alchemy_gui.common import field_widgets as fw
from alchemy_gui.common.binding import Binding, bind, bind_to
from alchemy_gui.common.model_locations import picker_label
from alchemy_gui.common.preset_picker import PresetPicker
from alchemy_gui.train.state import TrainState

RESOLUTIONS = ("512", "768", "1024", "1536")  # offered sizes; any size the field allows can be typed
# Widget kinds: int, float (free text), real (spin box, with its decimals), bool, choice, res, text.
Spec = tuple[str, str] | tuple[str, str, int]  # field name, widget kind[, decimals]
BASIC: tuple[Spec, ...] = (("steps", "int"), ("learning_rate", "float"), ("rank", "int"), ("alpha", "float"),
         ("resolution", "res"), ("seed", "int"), ("batch_size", "int"))
ADVANCED: tuple[Spec, ...] = (("train_ff", "bool"), ("text_encoder_lora", "bool"), ("prediction_type", "choice"),
            ("min_snr_gamma", "real", 2),
            ("noise_offset", "real", 4), ("flip", "bool"), ("prior_preservation", "bool"),
            ("class_images", "int"), ("prior_weight", "real", 2), ("masked_loss", "bool"),
            ("background_weight", "real", 2), ("gradient_checkpointing", "choice"), ("compile", "choice"),
            ("optimizer", "choice"), ("mixed_precision", "choice"), ("weight_dtype", "choice"),
            ("save_every", "int"), ("keep_last", "int"), ("sample_every", "int"),
            ("sample_prompt", "text"), ("eval_every", "int"), ("eval_prompts", "int"), ("gpus", "int"))
KINDS = {spec[0]: spec[1] for spec in BASIC + ADVANCED}
DEPENDS = {"class_images": "prior_preservation", "prior_weight": "prior_preservation",
           "background_weight": "masked_loss", "sample_prompt": "sample_every",
           "eval_prompts": "eval_every"}


def info(name: str) -> api.FieldInfo:
    return api.field_info(api.TrainRequest, name)


def _parse_float(text: str, optional: bool) -> Any:
    """A number, or None for an optional empty field, or the text itself for validate() to reject."""
    text = text.strip()
    if optional and not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _enable(widget: QWidget, on: Any) -> None:
    widget.setEnabled(bool(on))


def _float_text(value: Any) -> str:
    return "" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))


class TrainForm(QWidget):
    def __init__(self, state: TrainState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.fields: dict[str, QWidget] = {}
        self.bindings: list[Binding] = []
        basic = QFormLayout()
        basic.addRow(info("model").label, self._model_row())
        for spec in BASIC:
            basic.addRow(info(spec[0]).label, self._make(*spec))
        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced_toggle.toggled.connect(self._show_advanced)
        self.advanced = QWidget()
        advanced = QFormLayout(self.advanced)
        advanced.setContentsMargins(12, 0, 0, 0)
        for spec in ADVANCED:
            widget = self._make(*spec)
            if spec[1] == "bool":
                advanced.addRow(widget)
            else:
                advanced.addRow(info(spec[0]).label, widget)
        advanced.setRowVisible(self.fields["gpus"], api.nvidia_gpu_count() > 1)  # several GPUs: several processes
        self.advanced.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.preset_picker = PresetPicker(state.presets)
        layout.addWidget(self.preset_picker)
        layout.addLayout(basic)
        layout.addWidget(self.advanced_toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.advanced)
        layout.addStretch(1)
        self._bind()

    # --- building -------------------------------------------------------------------------------
    def _model_row(self) -> QWidget:
        self.model_combo = fw.describe(QComboBox(), info("model"))
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(18)
        self.browse_button = QToolButton()
        self.browse_button.setText("Browse…")
        self.browse_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.browse_button)
        for text, slot in (("SDXL .safetensors file…", self._browse_file), ("SDXL diffusers folder…", self._browse_dir)):
            action = QAction(text, menu)
            action.triggered.connect(slot)
            menu.addAction(action)
        self.browse_button.setMenu(menu)
        row = QWidget()
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.model_combo, 1)
        box.addWidget(self.browse_button)
        return row

    def _make(self, name: str, kind: str, decimals: int = 2) -> QWidget:
        field = info(name)
        if kind == "int":
            widget: QWidget = fw.int_spin_box(field)
        elif kind == "real":
            widget = fw.float_spin_box(field, decimals=decimals, step=10 ** -decimals * 5 if decimals > 2 else 0.1)
        elif kind == "bool":
            widget = fw.check_box(field)
        elif kind == "choice":
            widget = fw.choice_box(field)
        elif kind == "res":
            widget = combo = fw.describe(QComboBox(), field)
            combo.setEditable(True)
            combo.addItems(list(RESOLUTIONS))
            combo.setValidator(QIntValidator(int(field.minimum or 0), int(field.maximum or fw.INT_LIMIT), combo))
        else:  # float or text: a line edit
            widget = fw.line_edit(field)
        self.fields[name] = widget
        return widget

    def _bind(self) -> None:
        """Every binding of the form in one place."""
        settings, keep = self.state.settings, self.bindings.append
        for name, widget in self.fields.items():
            kind = KINDS[name]
            if kind == "float":  # the user's own edits only: the text stays as typed
                optional = info(name).optional
                keep(bind(settings, name, widget, signal="textEdited", to_widget=_float_text,
                          to_model=functools.partial(_parse_float, optional=optional)))
            elif kind == "text":
                keep(bind(settings, name, widget, signal="textEdited", to_widget=lambda v: v or "",
                          to_model=lambda text: text.strip() or None))
            elif kind == "res":
                keep(bind(settings, name, widget, combo="text", to_widget=str,
                          to_model=lambda text: int(text) if text.isdigit() else text))
            elif kind == "real":
                keep(bind(settings, name, widget, to_widget=lambda v: float(v or 0.0)))
            else:
                keep(bind(settings, name, widget))
        for name, switch in DEPENDS.items():
            keep(bind_to(settings, switch, functools.partial(_enable, self.fields[name])))
        self.model_binding = bind(settings, "model", self.model_combo, signal="activated")
        keep(self.model_binding)
        keep(bind_to(self.state, "models", self._show_models))
        keep(bind_to(self.state, "project", self._show_project))
        keep(bind_to(self.state, "has_masks", self._show_masks))
        keep(bind_to(settings, "masked_loss", lambda _on: self._show_masks(self.state.has_masks)))

    # --- showing the state ----------------------------------------------------------------------
    def _show_models(self, models: tuple) -> None:
        combo = self.model_combo
        combo.blockSignals(True)
        combo.clear()
        previous_location = ""
        for entry in models:
            note = entry.get("note") or entry.get("kind", "")
            location = entry.get("location", "")
            if location != previous_location and combo.count():
                combo.insertSeparator(combo.count())  # models grouped by the folder they live in
            previous_location = location
            combo.addItem(picker_label(entry["name"], location), entry["path"])
            combo.setItemData(combo.count() - 1, f"{entry['path']}\n{note}", Qt.ItemDataRole.ToolTipRole)
            if entry.get("kind") == "unusable" and isinstance(model := combo.model(), QStandardItemModel):
                model.item(combo.count() - 1).setEnabled(False)
        combo.setPlaceholderText("Looking for models…" if not models else "Choose a base model")
        combo.blockSignals(False)
        self.model_binding.refresh()

    def _show_project(self, project) -> None:
        prompt = cast(QLineEdit, self.fields["sample_prompt"])
        if project is not None:
            prompt.setPlaceholderText(f"a photo of {project.token} {project.class_noun}")

    def _show_masks(self, has_masks: bool) -> None:
        """Masked loss needs subject masks: offered only when a photo has one (or to turn it off)."""
        box = cast(QCheckBox, self.fields["masked_loss"])
        box.setEnabled(has_masks or box.isChecked())
        box.setToolTip(info("masked_loss").help if has_masks else
                       f"{info('masked_loss').help}\n\nNo photo has a subject mask yet: make them on the "
                       "Photos tab (Auto-mask all, or Edit mask… on one photo), then tick Masked loss.")

    def _show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    # --- user actions ---------------------------------------------------------------------------
    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose an SDXL checkpoint", str(Path.home()),
                                              "SDXL checkpoints (*.safetensors)")
        if path:
            self.state.add_model(path)

    def _browse_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose an SDXL diffusers folder", str(Path.home()))
        if path:
            self.state.add_model(path)
