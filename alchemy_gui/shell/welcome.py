"""The first-run guide, shown while no real SDXL model is installed: where weights come from, and
the demo models to try the app meanwhile."""

from __future__ import annotations

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QCheckBox, QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from alchemy_gui.shell.shortcuts import key

WEIGHTS_URL = "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0"


class WelcomeDialog(QDialog):
    use_demo = Signal()
    find_models = Signal()  # open Preferences → Models: other apps' folders, or download

    def __init__(self, models_folder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Welcome to Image Alchemy")
        text = QLabel(
            "<h3>Welcome!</h3>"
            "<p>Image Alchemy needs an <b>SDXL base model</b> (about 7 GB) to train and insert. None was found.</p>"
            f"<p>Download <code>sd_xl_base_1.0.safetensors</code> from <a href='{WEIGHTS_URL}'>{WEIGHTS_URL}</a> "
            f"(or any SDXL checkpoint) and put it into:<br><code>{models_folder}</code><br>"
            f"A model in your Hugging Face cache is found as well. Preferences ({key('preferences')}) shows what was "
            "found.</p>"
            "<p>Already have models in ComfyUI, A1111/Forge, InvokeAI or Krita's AI server? <b>Find my models</b> "
            "searches those folders in place (nothing is copied), and offers the missing ones to download.</p>"
            "<p>Meanwhile the <b>demo models</b> let you try every step: they have random weights, so they "
            "train in seconds and paint noise.</p>")
        text.setWordWrap(True)
        text.setOpenExternalLinks(True)
        self.dont_show = QCheckBox("Don't show this again")
        self.dont_show.setToolTip("Preferences still shows the model folders")
        self.demo_button = QPushButton("Use the demo models")
        self.demo_button.setObjectName("primary")
        self.demo_button.setToolTip("Offer the built-in demo models now and at every start (Preferences turns it off)")
        self.folder_button = QPushButton("Open the models folder")
        self.folder_button.setToolTip(models_folder)
        self.find_button = QPushButton("Find my models…")
        self.find_button.setToolTip("Preferences → Models: other apps' model folders, Scan…, and downloads")
        self.find_button.clicked.connect(self._find_models)
        self.later_button = QPushButton("Later")
        self.later_button.setToolTip("Close; this guide comes back at the next start until a model is installed")
        self.demo_button.clicked.connect(self._use_demo)
        self.folder_button.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(models_folder)))
        self.later_button.clicked.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.dont_show)
        row.addStretch(1)
        row.addWidget(self.folder_button)
        row.addWidget(self.find_button)
        row.addWidget(self.later_button)
        row.addWidget(self.demo_button)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addLayout(row)
        self.resize(620, 320)

    def _find_models(self) -> None:
        self.find_models.emit()
        self.accept()

    def _use_demo(self) -> None:
        self.use_demo.emit()
        self.accept()


__all__ = ["WEIGHTS_URL", "WelcomeDialog"]
