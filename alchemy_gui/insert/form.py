"""The Insert area's settings column: scene prompt, models, LoRA run and sampling settings.

It only holds widgets and turns their values into engine requests (:meth:`insert_request`,
:meth:`scene_request`, :meth:`locate`); it runs nothing itself.
"""

from __future__ import annotations

import random
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine.api import (
    DEFAULT_NEGATIVE,
    SDXL_RESOLUTIONS,
    InsertRequest,
    LocateOptions,
    SceneRequest,
    insertion_prompt,
)
from alchemy_gui.insert.jobs import Choice, Choices

SCENE_SIZES = SDXL_RESOLUTIONS + ((768, 768), (512, 512))
RANDOM_SEED = -1


def _spin(low: int, high: int, value: int, suffix: str = "", step: int = 1) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    box.setSuffix(suffix)
    return box


def _dspin(low: float, high: float, value: float, step: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setDecimals(2)
    box.setValue(value)
    return box


def _fill(combo: QComboBox, choices: tuple[Choice, ...], empty: str = "") -> None:
    current = combo.currentData()
    combo.clear()
    for choice in choices:
        combo.addItem(choice.label, choice.value)
        combo.setItemData(combo.count() - 1, choice.tooltip, Qt.ItemDataRole.ToolTipRole)
    if not choices and empty:
        combo.addItem(empty, None)
    index = combo.findData(current)
    combo.setCurrentIndex(index if index >= 0 and current is not None else 0)


class InsertSettings(QWidget):
    """Scene, model and sampling settings; ``set_project`` pre-fills the prompts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._token, self._class_noun = "sks", "subject"
        self._auto_prompt = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._scene_group())
        layout.addWidget(self._model_group())
        layout.addWidget(self._sampling_group())
        layout.addStretch(1)

    def _scene_group(self) -> QGroupBox:
        group = QGroupBox("Scene")
        form = QFormLayout(group)
        self.open_scene_button = QPushButton("Open scene…")
        self.scene_prompt = QLineEdit()
        self.scene_prompt.setPlaceholderText("a photo of a dog in a park")
        self.scene_prompt.textChanged.connect(self._follow_scene_prompt)
        self.scene_size = QComboBox()
        for w, h in SCENE_SIZES:
            self.scene_size.addItem(f"{w} × {h}", (w, h))
        self.generate_button = QPushButton("Generate scene")
        self.generate_button.setToolTip("Plain SDXL (no LoRA) paints a scene from the prompt; name the "
                                        "class noun so there is a place for the subject")
        form.addRow(self.open_scene_button)
        form.addRow("Prompt", self.scene_prompt)
        form.addRow("Size", self.scene_size)
        form.addRow(self.generate_button)
        return group

    def _model_group(self) -> QGroupBox:
        group = QGroupBox("Models")
        form = QFormLayout(group)
        self.model = QComboBox()
        self.run = QComboBox()
        self.run.setToolTip("The training run whose LoRA is used (newest first)")
        self.sam = QComboBox()
        self.detector = QComboBox()
        for combo in (self.model, self.run, self.sam, self.detector):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
        form.addRow("SDXL", self.model)
        form.addRow("LoRA", self.run)
        form.addRow("SAM", self.sam)
        form.addRow("Detector", self.detector)
        return group

    def _sampling_group(self) -> QGroupBox:
        group = QGroupBox("Insertion")
        form = QFormLayout(group)
        self.prompt = QLineEdit()
        self.negative = QLineEdit(DEFAULT_NEGATIVE)
        self.strength = _dspin(0.05, 1.0, 0.85, 0.05)
        self.steps = _spin(1, 150, 30)
        self.guidance = _dspin(0.0, 30.0, 7.0, 0.5)
        self.lora_scale = _dspin(-4.0, 4.0, 1.0, 0.1)
        self.seed = _spin(RANDOM_SEED, 2**31 - 1, RANDOM_SEED)
        self.seed.setSpecialValueText("random")
        self.variations = _spin(1, 16, 1)
        self.grow = _spin(-64, 256, 8, " px")
        self.feather = _spin(0, 256, 8, " px")
        self.work_size = _spin(64, 2048, 1024, " px", step=64)
        self.work_size.setToolTip("SDXL repaints a crop around the mask at about this many pixels "
                                  "squared; lower is faster and uses less memory")
        for label, widget in (("Prompt", self.prompt), ("Negative", self.negative),
                              ("Strength", self.strength), ("Steps", self.steps),
                              ("Guidance", self.guidance), ("LoRA scale", self.lora_scale),
                              ("Seed", self.seed), ("Variations", self.variations),
                              ("Grow mask", self.grow), ("Feather", self.feather),
                              ("Work size", self.work_size)):
            form.addRow(label, widget)
        return group

    # --- project and choices ------------------------------------------------------------------------
    def set_project(self, project) -> None:
        """Pre-fill the prompts for the project's subject ("a photo of a sks dog in a park")."""
        if project is None:
            return
        self._token, self._class_noun = project.token, project.class_noun
        self._auto_prompt = ""
        self.prompt.clear()
        self.scene_prompt.setText(f"a photo of a {project.class_noun} in a park")
        self._follow_scene_prompt(self.scene_prompt.text())

    def set_choices(self, choices: Choices) -> None:
        _fill(self.model, choices.models)
        _fill(self.run, choices.runs, empty="no trained LoRA yet (see the Train tab)")
        _fill(self.sam, choices.sams)
        _fill(self.detector, choices.detectors)

    def _follow_scene_prompt(self, text: str) -> None:
        """The insertion prompt follows the scene prompt until the user edits it."""
        if self.prompt.text() == self._auto_prompt:
            self._auto_prompt = insertion_prompt(text, self._token, self._class_noun)
            self.prompt.setText(self._auto_prompt)

    @property
    def class_noun(self) -> str:
        return self._class_noun

    # --- requests -----------------------------------------------------------------------------------
    def _seed(self) -> int | None:
        return None if self.seed.value() == RANDOM_SEED else self.seed.value()

    def locate(self, **changes) -> LocateOptions:
        """SAM and detector choices (for clicks, boxes and Auto-detect)."""
        return LocateOptions(sam=self.sam.currentData() or "demo",
                             detector=self.detector.currentData() or "demo", **changes)

    def insert_request(self, project_root: Path, scene: Path) -> InsertRequest:
        """The insertion request; its mask is filled in by the job that saves the canvas mask."""
        return InsertRequest(
            project=str(project_root), scene=Path(scene), run=self.run.currentData(),
            model=self.model.currentData(),
            locate=LocateOptions(grow=self.grow.value(), feather=float(self.feather.value())),
            prompt=self.prompt.text().strip() or None, negative_prompt=self.negative.text(),
            strength=self.strength.value(), steps=self.steps.value(), guidance=self.guidance.value(),
            lora_scale=self.lora_scale.value(), seed=self._seed(), variations=self.variations.value(),
            work_pixels=self.work_size.value() ** 2)

    def scene_request(self, project_root: Path) -> SceneRequest:
        width, height = self.scene_size.currentData()
        seed = self._seed()
        return SceneRequest(project=str(project_root), prompt=self.scene_prompt.text().strip(),
                            negative_prompt=self.negative.text(), model=self.model.currentData(),
                            width=width, height=height, steps=self.steps.value(),
                            guidance=self.guidance.value(),
                            seed=random.randrange(2**32) if seed is None else seed)


__all__ = ["InsertSettings"]
