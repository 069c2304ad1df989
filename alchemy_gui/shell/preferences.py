"""Preferences (Ctrl+,): model folders and what was found in each, device and precision, the data
folder (takes effect after a restart) and the demo models. Values live in :class:`AppSettings`:
``device`` ("" = automatic), ``precision`` ("auto", "no", "fp16", "bf16"), ``data_folder``
("" = the default) and ``demo_models`` (bool)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine import api
from alchemy_gui.app import DEMO_MODELS_KEY
from alchemy_gui.common.app_settings import AppSettings
from alchemy_gui.common.job_list import JobFailure, JobKind, JobList
from alchemy_gui.shell.models_page import ModelsPage

DEVICES = (("Automatic (GPU when there is one)", ""), ("CPU", "cpu"), ("CUDA GPU", "cuda"), ("Apple Metal", "mps"))
KINDS = (("sdxl", "SDXL base models"), ("sam", "SAM (segmentation)"), ("detector", "Detector (auto-detect)"))


def find_models_job(request: None, progress, cancel) -> dict:
    return api.find_models().to_dict()


def model_status(inventory: dict, kind: str) -> str:
    """One line: how many real models of ``kind`` were found, or where to put one."""
    real = [e for e in inventory[kind] if e["kind"] not in ("demo", "unusable")]
    unusable = [e for e in inventory[kind] if e["kind"] == "unusable"]
    text = (f"{len(real)} found: " + ", ".join(e["name"] for e in real[:3]) + ("…" if len(real) > 3 else "")
            if real else "none found — only the demo model (random weights)")
    if unusable:
        text += f"; {len(unusable)} file(s) cannot be used (hover for why)"
    return text


class PreferencesDialog(QDialog):
    def __init__(self, settings: AppSettings, jobs: JobList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        self.model_lines: dict[str, QLabel] = {}
        models = QGroupBox("Model folders")
        models_form = QFormLayout(models)
        for kind, title in KINDS:
            line = QLabel("Looking…")
            line.setWordWrap(True)
            line.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.model_lines[kind] = line
            models_form.addRow(f"{title}:", line)
        self.device = QComboBox()
        for text, value in DEVICES:
            self.device.addItem(text, value)
        self.device.setToolTip("Where training and insertion run; Automatic picks the GPU when there is one")
        self.precision = QComboBox()
        for value in api.MIXED_PRECISION:
            self.precision.addItem({"auto": "Automatic", "no": "Full (float32)"}.get(value, value), value)
        self.precision.setToolTip(api.field_info(api.TrainRequest, "mixed_precision").help)
        self.data_folder = QLineEdit()
        self.data_folder.setPlaceholderText(str(api.data_root()))
        self.data_folder.setToolTip("Where projects and models are kept. A change takes effect after a restart; "
                                    "existing projects are not moved.")
        browse = QPushButton("Browse…")
        browse.setToolTip("Choose the data folder")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.data_folder, 1)
        folder_row.addWidget(browse)
        self.demo = QCheckBox("Offer the demo models (random weights: noise images, for trying the app)")
        self.demo.setToolTip("Starts the app as `main.py --demo` does: every unset model is the built-in demo. "
                             "Takes effect after a restart.")
        self.editor = QLineEdit()
        self.editor.setPlaceholderText("the system's default app for .ora files")
        self.editor.setToolTip("The program 'Open as layers in editor' starts (e.g. krita, gimp, or its full path)")
        general = QGroupBox("Running")
        form = QFormLayout(general)
        form.addRow("Device:", self.device)
        form.addRow("Precision:", self.precision)
        form.addRow("Data folder:", folder_row)
        note = QLabel(f"Now: {api.data_root()} — a new folder is used after a restart.")
        note.setObjectName("hint")
        note.setWordWrap(True)
        form.addRow("", note)
        form.addRow("", self.demo)
        form.addRow("Layered results open in:", self.editor)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        first = QWidget()
        first_layout = QVBoxLayout(first)
        first_layout.addWidget(models)
        first_layout.addWidget(general)
        self.models_page = ModelsPage(jobs)  # model folders, scan, downloads
        self.tabs = QTabWidget()
        self.tabs.addTab(first, "General")
        self.tabs.addTab(self.models_page, "Models")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)
        self.resize(760, 620)
        self._load()
        worker = jobs.submit(find_models_job, None, "find models (preferences)", kind=JobKind.INFO)
        worker.succeeded.connect(self.show_models)
        worker.failed.connect(self._show_models_failure)

    def _load(self) -> None:
        s = self.settings
        self.device.setCurrentIndex(max(0, self.device.findData(s.get("device", ""))))
        self.precision.setCurrentIndex(max(0, self.precision.findData(s.get("precision", "auto"))))
        self.data_folder.setText(s.get("data_folder", ""))
        self.demo.setChecked(bool(s.get(DEMO_MODELS_KEY, False)))
        self.editor.setText(s.get("editor", ""))

    def show_models(self, inventory: dict) -> None:
        for kind, line in self.model_lines.items():
            line.setText(f"{inventory['folders'][kind]}\n{model_status(inventory, kind)}")
            line.setToolTip("\n".join(f"{e['name']}: {e['note']}" for e in inventory[kind] if e["note"]))

    def _show_models_failure(self, failure: JobFailure) -> None:
        for line in self.model_lines.values():
            line.setText(failure.message)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data folder", self.data_folder.text() or str(api.data_root()))
        if folder:
            self.data_folder.setText(folder)

    def accept(self) -> None:
        s = self.settings
        s.set("device", self.device.currentData())
        s.set("precision", self.precision.currentData())
        s.set("data_folder", self.data_folder.text().strip())
        s.set(DEMO_MODELS_KEY, self.demo.isChecked())
        s.set("editor", self.editor.text().strip())
        s.flush()
        super().accept()


__all__ = ["PreferencesDialog", "find_models_job", "model_status"]
