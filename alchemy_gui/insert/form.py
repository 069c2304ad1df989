"""The Insert area's settings column: scene prompt and size, models, LoRA run and sampling settings,
bound to :class:`~alchemy_gui.insert.state.InsertState`.

Labels, tooltips, ranges and initial values come from the request fields (``api.field_info`` of
InsertRequest, LocateOptions and SceneRequest); this module only chooses widgets and their looks.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine import api
from alchemy_gui.common import field_widgets as fw
from alchemy_gui.common.binding import Binding, bind
from alchemy_gui.common.preset_picker import PresetPicker
from alchemy_gui.insert.jobs import Choice, Choices
from alchemy_gui.insert.reference_group import ReferenceGroup
from alchemy_gui.insert.state import InsertState

SCENE_SIZES = api.SDXL_RESOLUTIONS + ((768, 768), (512, 512))
RANDOM_SEED = int(api.field_info(api.InsertRequest, "seed").minimum or 0) - 1  # the seed box's "random": None
NO_LORA = "no trained LoRA yet (see the Train tab)"
NO_STYLE = "none"
LORA_FILTER = "LoRA files (*.safetensors)"


def insert_info(name: str) -> api.FieldInfo:
    return api.field_info(api.InsertRequest, name)


def locate_info(name: str) -> api.FieldInfo:
    return api.field_info(api.LocateOptions, name)


def _fill(combo: QComboBox, choices: tuple[Choice, ...], empty: str = "") -> None:
    """Refill a combo without reporting a change (its binding shows the state's value again)."""
    combo.blockSignals(True)
    combo.clear()
    for choice in choices:
        combo.addItem(choice.label, choice.value)
        combo.setItemData(combo.count() - 1, choice.tooltip, Qt.ItemDataRole.ToolTipRole)
    if not choices and empty:
        combo.addItem(empty, None)
    combo.blockSignals(False)


def _work_size(info: api.FieldInfo) -> api.FieldInfo:
    """Work pixels shown as the side of a square: the same range, in pixels per side."""
    assert info.minimum is not None and info.maximum is not None  # work_pixels declares both
    return api.FieldInfo(name=info.name, kind=int, optional=False, default=info.default, help=info.help,
                         label=info.label, minimum=math.isqrt(int(info.minimum)),
                         maximum=math.isqrt(int(info.maximum)))


class InsertForm(QWidget):
    """Scene, model and sampling settings of an :class:`InsertState`."""

    def __init__(self, state: InsertState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.bindings: list[Binding] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.preset_picker = PresetPicker(state.presets)
        layout.addWidget(self.preset_picker)
        layout.addWidget(self._scene_group())
        layout.addWidget(self._model_group())
        layout.addWidget(self._sampling_group())
        self.reference = ReferenceGroup(state)
        layout.addWidget(self.reference)
        layout.addStretch(1)
        self._bind()

    def _scene_group(self) -> QGroupBox:
        group = QGroupBox("Scene")
        form = QFormLayout(group)
        self.open_scene_button = QPushButton("Open scene…")
        prompt = insert_info("scene_prompt")
        self.scene_prompt = fw.describe(QLineEdit(), prompt)
        self.scene_prompt.setPlaceholderText("a photo of a dog in a park")
        self.scene_size = QComboBox()
        self.scene_size.setToolTip(f"{insert_info('scene_width').help}; {insert_info('scene_height').help}")
        for w, h in SCENE_SIZES:
            self.scene_size.addItem(f"{w} × {h}", (w, h))
        self.generate_button = QPushButton("Generate scene")
        self.generate_button.setToolTip(prompt.help)
        form.addRow(self.open_scene_button)
        form.addRow("Prompt", self.scene_prompt)
        form.addRow("Size", self.scene_size)
        form.addRow(self.generate_button)
        return group

    def _model_group(self) -> QGroupBox:
        group = QGroupBox("Models")
        form = QFormLayout(group)
        self.model = fw.describe(QComboBox(), insert_info("model"))
        self.run = fw.describe(QComboBox(), insert_info("run"))
        self.sam = fw.describe(QComboBox(), locate_info("sam"))
        self.detector = fw.describe(QComboBox(), locate_info("detector"))
        for combo in (self.model, self.run, self.sam, self.detector):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
        self.add_lora_button = QPushButton("Add LoRA file…")
        self.add_lora_button.setToolTip("Use an SDXL LoRA .safetensors file from anywhere (kohya, diffusers or "
                                        "PEFT layout) as the subject LoRA")
        self.style_lora = fw.describe(QComboBox(), insert_info("style_lora"))
        self.style_lora.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.style_lora.setMinimumContentsLength(12)
        self.add_style_button = QPushButton("Add style LoRA…")
        self.add_style_button.setToolTip("Choose a style LoRA .safetensors file (SDXL)")
        self.style_lora_scale = fw.float_spin_box(insert_info("style_lora_scale"))
        self.remove_lora_button = QPushButton("Remove")
        self.remove_lora_button.setToolTip("Take the chosen LoRA file off the list (the file itself stays)")
        self.remove_style_button = QPushButton("Remove")
        self.remove_style_button.setToolTip("Take the chosen style LoRA file off the list (the file itself stays)")
        self.lora_missing = QLabel()
        self.lora_missing.setWordWrap(True)
        self.lora_missing.setStyleSheet("color: #9a6700;")  # the panels' warning colour
        lora_row = QHBoxLayout()
        lora_row.addWidget(self.add_lora_button, 1)
        lora_row.addWidget(self.remove_lora_button)
        style_buttons = QHBoxLayout()  # under the list, as for the LoRA: the panel must fit 1366 px
        style_buttons.addWidget(self.add_style_button, 1)
        style_buttons.addWidget(self.remove_style_button)
        form.addRow("SDXL", self.model)
        form.addRow("LoRA", self.run)
        form.addRow("", lora_row)
        form.addRow("Style LoRA", self.style_lora)
        form.addRow("", style_buttons)
        form.addRow(insert_info("style_lora_scale").label, self.style_lora_scale)
        form.addRow(self.lora_missing)
        self.inpaint_model = fw.line_edit(insert_info("inpaint_model"))
        self.inpaint_model.setPlaceholderText("none: the SDXL model repaints")
        self.prediction_type = fw.choice_box(insert_info("prediction_type"))
        form.addRow(insert_info("inpaint_model").label, self.inpaint_model)
        form.addRow(insert_info("prediction_type").label, self.prediction_type)
        form.addRow("SAM", self.sam)
        form.addRow("Detector", self.detector)
        return group

    def _sampling_group(self) -> QGroupBox:
        group = QGroupBox("Insertion")
        form = QFormLayout(group)
        self.prompt = fw.line_edit(insert_info("prompt"))
        self.negative = fw.line_edit(insert_info("negative_prompt"))
        self.strength = fw.float_spin_box(insert_info("strength"), step=0.05)
        self.steps = fw.int_spin_box(insert_info("steps"))
        self.guidance = fw.float_spin_box(insert_info("guidance"), step=0.5)
        self.sampler = fw.choice_box(insert_info("sampler"))
        self.lora_scale = fw.float_spin_box(insert_info("lora_scale"))
        self.seed = fw.int_spin_box(insert_info("seed"), special="random")  # one below the minimum: None
        self.variations = fw.int_spin_box(insert_info("variations"))
        self.batch_size = fw.choice_box(insert_info("batch_size"))
        self.rank = fw.check_box(insert_info("rank"))
        self.grow = fw.int_spin_box(locate_info("grow"), suffix=" px")
        self.feather = fw.int_spin_box(locate_info("feather"), suffix=" px")
        self.work_size = fw.int_spin_box(_work_size(insert_info("work_pixels")), suffix=" px", step=64)
        for widget in (self.prompt, self.negative, self.strength, self.steps, self.guidance, self.sampler,
                       self.lora_scale, self.seed, self.variations, self.batch_size, self.grow, self.feather,
                       self.work_size):
            form.addRow(self._label(widget), widget)
        form.addRow("", self.rank)
        return group

    @staticmethod
    def _label(widget: QWidget) -> str:
        name = widget.objectName().removeprefix("field_")
        fields = api.InsertRequest.__dataclass_fields__
        return (insert_info(name) if name in fields else locate_info(name)).label

    def _bind(self) -> None:
        """Every binding of the form in one place."""
        state, settings, locate, keep = self.state, self.state.settings, self.state.locate, self.bindings.append
        keep(bind(state, "scene_prompt", self.scene_prompt))
        keep(bind(state, "scene_size", self.scene_size))
        self.choice_bindings = {
            "model": bind(settings, "model", self.model), "run": bind(settings, "run", self.run),
            "sam": bind(locate, "sam", self.sam), "detector": bind(locate, "detector", self.detector)}
        self.bindings += self.choice_bindings.values()
        keep(bind(settings, "prompt", self.prompt, to_widget=lambda v: v or ""))
        keep(bind(settings, "negative_prompt", self.negative))
        self.choice_bindings["style_lora"] = bind(settings, "style_lora", self.style_lora)
        self.bindings.append(self.choice_bindings["style_lora"])
        keep(bind(settings, "style_lora_scale", self.style_lora_scale))
        state.lora_files_changed.connect(self._show_style_choices)
        for signal in (state.lora_files_changed, settings.run_changed, settings.style_lora_changed):
            signal.connect(self._show_lora_files)
        self.remove_lora_button.clicked.connect(lambda: state.remove_lora_file(settings.run))
        self.remove_style_button.clicked.connect(lambda: state.remove_lora_file(settings.style_lora))
        self._show_lora_files()
        keep(bind(settings, "inpaint_model", self.inpaint_model, to_widget=lambda v: v or "",
                  to_model=lambda v: v.strip() or None))
        for name in ("strength", "steps", "guidance", "sampler", "lora_scale", "variations", "batch_size", "rank",
                     "prediction_type"):
            keep(bind(settings, name, getattr(self, name)))
        keep(bind(settings, "seed", self.seed, to_widget=lambda v: RANDOM_SEED if v is None else v,
                  to_model=lambda v: None if v == RANDOM_SEED else v))
        keep(bind(locate, "grow", self.grow))
        keep(bind(locate, "feather", self.feather, to_widget=lambda v: int(round(v)), to_model=float))
        keep(bind(settings, "work_pixels", self.work_size, to_widget=math.isqrt, to_model=lambda side: side * side))
        state.choices_changed.connect(self._show_choices)

    def _show_choices(self, choices: Choices | None) -> None:
        if choices is None:
            return
        _fill(self.model, choices.models)
        _fill(self.run, choices.runs, empty=NO_LORA)
        _fill(self.sam, choices.sams)
        _fill(self.detector, choices.detectors)
        self._show_style_choices(self.state.lora_files, refresh=False)
        for binding in self.choice_bindings.values():
            binding.refresh()

    def _show_lora_files(self, *_: object) -> None:
        """Remove buttons for added files; the files that are gone since they were added."""
        added = {c.value for c in self.state.lora_files}
        self.remove_lora_button.setEnabled(self.state.settings.run in added)
        self.remove_style_button.setEnabled(self.state.settings.style_lora in added)
        missing = self.state.missing_lora_files()
        self.lora_missing.setText(f"Missing LoRA file{'s' if len(missing) > 1 else ''}: {', '.join(missing)} — "
                                  "put it back, or choose it and press Remove." if missing else "")
        self.lora_missing.setVisible(bool(missing))

    def _show_style_choices(self, files: tuple[Choice, ...], refresh: bool = True) -> None:
        _fill(self.style_lora, (Choice(NO_STYLE, None, "no style LoRA"),) + tuple(files))
        if refresh:
            self.choice_bindings["style_lora"].refresh()


__all__ = ["InsertForm"]
