"""The training settings form, bound to :class:`~alchemy_gui.train.state.TrainState`.

One widget per :class:`~alchemy_engine.training.request.TrainRequest` field, built from the
``BASIC`` / ``ADVANCED`` tables. Widgets never check values themselves: whatever the user types
goes to ``state.set_field`` and ``TrainRequest.validate()`` says what is wrong, so the rules live
in one place. Ranges of the spin boxes are deliberately wider than the valid ones for that reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QIntValidator, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMenu,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine.api import MIXED_PRECISION, OPTIMIZERS
from alchemy_gui.train.state import TrainState

RESOLUTIONS = ("512", "768", "1024", "1536")
# (field, label, kind, options, tooltip). Kinds: int, float, optfloat, real, bool, choice, res, text.
BASIC = (
    ("steps", "Steps", "int", (0, 1_000_000), "Optimizer steps. 400–800 for 3–5 photos is usual."),
    ("learning_rate", "Learning rate", "float", (), "How big each update is; 1e-4 is usual (1.0 for Prodigy)."),
    ("rank", "LoRA rank", "int", (0, 4096), "Capacity of the LoRA: 16–32 keeps a subject; more means bigger files."),
    ("alpha", "LoRA alpha", "optfloat", (), "Scale = alpha / rank. Leave empty for alpha = rank."),
    ("resolution", "Resolution", "res", RESOLUTIONS, "Training size in pixels; SDXL is made for 1024."),
    ("seed", "Seed", "int", (0, 2**31 - 1), "Same seed and settings give the same LoRA."),
    ("batch_size", "Batch size", "int", (0, 256), "Photos per step; more needs more memory."),
)
ADVANCED = (
    ("train_ff", "Train feed-forward layers", "bool", (), "LoRA on the feed-forward layers too: more detail, "
     "bigger file."),
    ("text_encoder_lora", "Text-encoder LoRA", "bool", (), "Also teach the text encoders (slower, more memory)."),
    ("min_snr_gamma", "Min-SNR γ", "real", (0.0, 100.0, 2), "Loss weighting that steadies training; 5 is usual, "
     "0 turns it off."),
    ("noise_offset", "Noise offset", "real", (0.0, 5.0, 4), "e.g. 0.0357 for deeper darks and brighter lights."),
    ("flip", "Random horizontal flips", "bool", (), "Off by default: many subjects are not symmetric."),
    ("prior_preservation", "Prior preservation", "bool", (), "Also learn from images of the plain class "
     "(made by the base model) so the class word keeps its meaning."),
    ("class_images", "Class images", "int", (0, 100_000), "How many class images to make and use."),
    ("prior_weight", "Class-image weight", "real", (0.0, 100.0, 2), "Weight of the class-image loss."),
    ("masked_loss", "Masked loss", "bool", (), "Learn only from the subject (uses the photos' subject masks)."),
    ("background_weight", "Background weight", "real", (0.0, 10.0, 2), "Loss weight outside the subject mask."),
    ("gradient_checkpointing", "Gradient checkpointing", "bool", (), "Much less memory, about 25% slower."),
    ("optimizer", "Optimizer", "choice", OPTIMIZERS, "adamw; adamw8bit needs an NVIDIA GPU; prodigy finds "
     "its own learning rate (set it to 1.0)."),
    ("mixed_precision", "Mixed precision", "choice", MIXED_PRECISION, "auto: bf16/fp16 on GPUs, fp32 on the CPU."),
    ("save_every", "Save checkpoint every", "int", (0, 1_000_000), "Steps between resumable checkpoints "
     "(0 = only when stopped)."),
    ("keep_last", "Keep last checkpoints", "int", (0, 1000), "Older checkpoints are deleted."),
    ("sample_every", "Sample every", "int", (0, 1_000_000), "Steps between preview images (0 = none)."),
    ("sample_prompt", "Sample prompt", "text", (), "Prompt of the preview images; empty: the training prompt."),
)
DEPENDS = {"class_images": "prior_preservation", "prior_weight": "prior_preservation",
           "background_weight": "masked_loss"}


def _parse_float(text: str, optional: bool) -> Any:
    """A number, or None for an optional empty field, or the text itself for validate() to reject."""
    text = text.strip()
    if optional and not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


class TrainForm(QWidget):
    def __init__(self, state: TrainState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.fields: dict[str, QWidget] = {}
        basic = QFormLayout()
        basic.addRow("Base model", self._model_row())
        for spec in BASIC:
            basic.addRow(spec[1], self._make(*spec))
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
            if spec[2] == "bool":
                advanced.addRow(widget)
            else:
                advanced.addRow(spec[1], widget)
        self.advanced.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(basic)
        layout.addWidget(self.advanced_toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.advanced)
        layout.addStretch(1)
        state.settings_changed.connect(self._show_settings)
        state.models_changed.connect(self._show_models)
        state.project_changed.connect(self._show_project)
        self._show_models(state.models)
        self._show_settings(state.settings)

    # --- building -------------------------------------------------------------------------------
    def _model_row(self) -> QWidget:
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("The SDXL base model to train on. Put models into the models folder, or "
                                    "Browse… to one anywhere; “demo” is a tiny random model for trying the app.")
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(18)
        self.model_combo.activated.connect(self._on_model_chosen)
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

    def _make(self, name: str, label: str, kind: str, options: tuple, tip: str) -> QWidget:
        set_field = self.state.set_field
        if kind == "int":
            widget = QSpinBox()
            widget.setRange(*options)
            widget.valueChanged.connect(lambda v, n=name: set_field(n, int(v)))
        elif kind == "real":
            widget = QDoubleSpinBox()
            widget.setRange(options[0], options[1])
            widget.setDecimals(options[2])
            widget.setSingleStep(10 ** -options[2] * 5 if options[2] > 2 else 0.1)
            widget.valueChanged.connect(lambda v, n=name: set_field(n, float(v)))
        elif kind in ("float", "optfloat"):
            widget = QLineEdit()
            if kind == "optfloat":
                widget.setPlaceholderText("same as rank")
            widget.textEdited.connect(lambda t, n=name, o=kind == "optfloat": set_field(n, _parse_float(t, o)))
        elif kind == "bool":
            widget = QCheckBox(label)
            widget.toggled.connect(lambda v, n=name: set_field(n, bool(v)))
        elif kind == "choice":
            widget = QComboBox()
            widget.addItems(list(options))
            widget.currentTextChanged.connect(lambda t, n=name: set_field(n, t))
        elif kind == "res":
            widget = QComboBox()
            widget.setEditable(True)
            widget.addItems(list(options))
            widget.setValidator(QIntValidator(0, 100_000, widget))
            widget.currentTextChanged.connect(lambda t, n=name: set_field(n, int(t) if t.isdigit() else t))
        else:  # text: empty means None
            widget = QLineEdit()
            widget.textEdited.connect(lambda t, n=name: set_field(n, t.strip() or None))
        widget.setToolTip(tip)
        widget.setObjectName(f"field_{name}")
        self.fields[name] = widget
        return widget

    # --- showing the state ----------------------------------------------------------------------
    def _show_settings(self, settings: dict) -> None:
        for name, widget in self.fields.items():
            widget.blockSignals(True)
            try:
                self._show_value(widget, settings[name])
            finally:
                widget.blockSignals(False)
        for name, switch in DEPENDS.items():
            self.fields[name].setEnabled(bool(settings[switch]))
        self.fields["sample_prompt"].setEnabled(bool(settings["sample_every"]))
        self._select_model(settings["model"])

    @staticmethod
    def _show_value(widget: QWidget, value: Any) -> None:
        if isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, QSpinBox):
            if isinstance(value, int):
                widget.setValue(value)
        elif isinstance(widget, QDoubleSpinBox):
            widget.setValue(float(value or 0.0))
        elif isinstance(widget, QComboBox):
            text = str(value)
            if widget.currentText() == text:
                return
            if widget.isEditable():
                widget.setCurrentText(text)
            else:
                widget.setCurrentIndex(widget.findText(text))
        elif isinstance(widget, QLineEdit) and not widget.hasFocus():  # never fight the user's typing
            widget.setText("" if value is None else (f"{value:g}" if isinstance(value, float) else str(value)))

    def _show_models(self, models: list) -> None:
        combo = self.model_combo
        combo.blockSignals(True)
        combo.clear()
        for entry in models:
            note = entry.get("note") or entry.get("kind", "")
            combo.addItem(entry["name"], entry["path"])
            combo.setItemData(combo.count() - 1, f"{entry['path']}\n{note}", Qt.ItemDataRole.ToolTipRole)
            if entry.get("kind") == "unusable" and isinstance(combo.model(), QStandardItemModel):
                combo.model().item(combo.count() - 1).setEnabled(False)
        combo.setPlaceholderText("Looking for models…" if not models else "Choose a base model")
        combo.blockSignals(False)
        self._select_model(self.state.settings["model"])

    def _select_model(self, path: str | None) -> None:
        index = self.model_combo.findData(path) if path is not None else -1
        if self.model_combo.currentIndex() != index:
            self.model_combo.blockSignals(True)
            self.model_combo.setCurrentIndex(index)
            self.model_combo.blockSignals(False)

    def _show_project(self, project) -> None:
        prompt = self.fields["sample_prompt"]
        if project is not None:
            prompt.setPlaceholderText(f"a photo of {project.token} {project.class_noun}")

    def _show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    # --- user actions ---------------------------------------------------------------------------
    def _on_model_chosen(self, index: int) -> None:
        path = self.model_combo.itemData(index)
        if path is not None:
            self.state.set_field("model", path)

    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose an SDXL checkpoint", str(Path.home()),
                                              "SDXL checkpoints (*.safetensors)")
        if path:
            self.state.add_model(path)

    def _browse_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose an SDXL diffusers folder", str(Path.home()))
        if path:
            self.state.add_model(path)
