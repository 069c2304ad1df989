"""Preferences → Models: the model folders searched in place, a scan of what they hold, and the
catalogue of models fetched on request (a Download button each, Get everything required, a
progress bar with speed and time left, Cancel; a cancelled download resumes).

Every scan, detection and download is an engine job in the window's job list; this page only shows
what the jobs report. Folder list edits are one small JSON file, written at once.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine import api
from alchemy_engine.errors import AlchemyError
from alchemy_engine.jobs import Progress, Stage
from alchemy_gui.common.job_list import Job, JobFailure, JobKind, JobList

USE_TITLES = {"sdxl": "SDXL base", "sdxl_refiner": "SDXL refiner", "sdxl_inpaint": "SDXL inpainting",
              "lora": "LoRA", "sam": "SAM", "other": "other"}


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _detect_job(request: None, progress, cancel) -> list:
    return api.detect_installs()


def _catalogue_job(request: None, progress, cancel) -> list[dict]:
    return api.catalogue_status()


def licence_text(entries: list[dict]) -> str:
    """What the user accepts before a first download: each model's licence, with its link."""
    lines = [f"• {e['title']} — {e['licence']}: <a href=\"{e['licence_url']}\">{e['licence_url']}</a>"
             for e in entries]
    total = sum(e["bytes_to_fetch"] for e in entries)
    return ("Downloading means accepting these licences:<br>" + "<br>".join(lines)
            + f"<br><br>About {_size(total)} will be fetched. Continue?")


class ModelsPage(QWidget):
    """The page; ``models_changed`` fires after a scan or a download, so pickers can refresh."""

    models_changed = Signal()

    def __init__(self, jobs: JobList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs  # scans, detection, the catalogue's state: light jobs; downloads in their own order
        self.download_worker: Job | None = None
        self.catalogue: list[dict] = []
        self.folders = QListWidget()
        self.folders.setToolTip("Searched in place (never copied), with their sub-folders")
        self.folders.setMaximumHeight(90)
        add = QPushButton("Add folder…")
        add.clicked.connect(self.choose_folder)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.detect_button = QPushButton("Find other apps' folders")
        self.detect_button.setToolTip("ComfyUI (and its extra_model_paths.yaml), A1111/Forge, InvokeAI, "
                                      "krita-ai-diffusion's server, the Hugging Face cache")
        self.detect_button.clicked.connect(self.detect)
        self.scan_button = QPushButton("Scan…")
        self.scan_button.setToolTip("Read each model file's header (never its weights) and list what it is")
        self.scan_button.clicked.connect(self.scan)
        buttons = QHBoxLayout()
        for button in (add, self.remove_button, self.detect_button, self.scan_button):
            buttons.addWidget(button)
        self.found = QTreeWidget()
        self.found.setHeaderLabels(["Model", "What it is", "Size"])
        self.found.setColumnWidth(0, 260)
        self.found.setTextElideMode(Qt.TextElideMode.ElideLeft)  # a folder's tail tells the apps apart
        self.scan_status = QLabel("")
        self.scan_status.setWordWrap(True)
        folders_box = QGroupBox("Model folders of other apps")
        folders_layout = QVBoxLayout(folders_box)
        folders_layout.addWidget(self.folders)
        folders_layout.addLayout(buttons)
        folders_layout.addWidget(self.scan_status)
        folders_layout.addWidget(self.found, 1)

        self.table = QTreeWidget()
        self.table.setHeaderLabels(["Model", "Here?", "Size", "Used for", ""])
        self.table.setColumnWidth(0, 240)
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("Hugging Face token, for gated models (optional; HF_TOKEN works too)")
        self.required_button = QPushButton("Get everything required")
        self.required_button.clicked.connect(self.download_required)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress_text = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_download)
        row = QHBoxLayout()
        row.addWidget(self.token, 1)
        row.addWidget(self.required_button)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        download_box = QGroupBox("Download (only when you ask; each file is checked against its sha256)")
        download_layout = QVBoxLayout(download_box)
        download_layout.addWidget(self.table, 1)
        download_layout.addLayout(row)
        download_layout.addLayout(progress_row)
        download_layout.addWidget(self.progress_text)
        layout = QVBoxLayout(self)
        layout.addWidget(folders_box, 1)
        layout.addWidget(download_box, 1)
        self.show_folders()
        self.refresh_catalogue()
        running = self.jobs.active(JobKind.DOWNLOAD)
        if running:  # reopened while one runs
            self._follow(running[-1])

    # --- folders ----------------------------------------------------------------------------------
    def show_folders(self) -> None:
        self.folders.clear()
        for folder in api.list_model_folders():
            self.folders.addItem(str(folder) + ("" if folder.is_dir() else "   (missing)"))
        self.remove_button.setEnabled(self.folders.count() > 0)

    def add_folder(self, path: str) -> None:
        try:
            api.add_model_folder(path)
        except AlchemyError as exc:
            QMessageBox.warning(self, "Add a model folder", str(exc))
            return
        self.show_folders()
        self.scan()

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "A folder with model files")
        if path:
            self.add_folder(path)

    def remove_selected(self) -> None:
        item = self.folders.currentItem()
        if item is not None:
            api.remove_model_folder(item.text().removesuffix("   (missing)"))
            self.show_folders()
            self.scan()

    def detect(self) -> Job:
        self.detect_button.setEnabled(False)
        worker = self.jobs.submit(_detect_job, None, "Find model folders", kind=JobKind.MODELS)
        worker.succeeded.connect(self.offer_detected)
        worker.failed.connect(self._show_failure)
        worker.finished.connect(self._detect_finished)
        return worker

    def offer_detected(self, found: list) -> None:
        known = set(api.list_model_folders())
        new = [f for f in found if f.path not in known]
        if not new:
            self.scan_status.setText("No other model folders were found." if not found else
                                     "Every model folder found is already in the list.")
            return
        listing = "\n".join(f"{f.app}: {f.path}" for f in new)
        answer = QMessageBox.question(self, "Model folders found",
                                      f"Search these folders in place (nothing is copied)?\n\n{listing}")
        if answer == QMessageBox.StandardButton.Yes:
            for folder in new:
                api.add_model_folder(folder.path)
            self.show_folders()
            self.scan()

    # --- scanning ---------------------------------------------------------------------------------
    def scan(self) -> Job:
        self.scan_button.setEnabled(False)
        self.scan_status.setText("Scanning…")
        worker = self.jobs.submit(api.scan_models, api.ScanRequest(), "Scan model folders", kind=JobKind.MODELS)
        worker.progress.connect(self._scan_progress)
        worker.succeeded.connect(self.show_scan)
        worker.failed.connect(self._show_failure)
        worker.finished.connect(self._scan_finished)
        return worker

    def _detect_finished(self) -> None:
        self.detect_button.setEnabled(True)

    def _scan_progress(self, event: Progress) -> None:
        if event.total:
            self.scan_status.setText(f"Scanning… {event.message}")

    def _scan_finished(self) -> None:
        self.scan_button.setEnabled(True)

    def show_scan(self, result) -> None:
        self.found.clear()
        for folder in result.folders:
            top = QTreeWidgetItem([folder, "", ""])
            self.found.addTopLevelItem(top)
            for model in (m for m in result.models if m.folder == folder):
                use = USE_TITLES[model.use] + (f" for {model.lora_base}" if model.lora_base else "")
                child = QTreeWidgetItem([model.name, use, _size(model.size_bytes) if model.size_bytes else ""])
                child.setToolTip(0, model.path)
                child.setToolTip(1, model.description)
                top.addChild(child)
            top.setExpanded(True)
        counts = {u: len(result.of_use(u)) for u in ("sdxl", "lora", "sam")}
        self.scan_status.setText(f"{counts['sdxl']} SDXL models, {counts['lora']} LoRAs, {counts['sam']} SAM "
                                 f"files ({result.probed} headers read, {result.reused} unchanged)"
                                 + (f"; missing: {', '.join(result.missing_folders)}" if result.missing_folders else ""))
        self.models_changed.emit()

    # --- downloads --------------------------------------------------------------------------------
    def refresh_catalogue(self) -> Job:
        worker = self.jobs.submit(_catalogue_job, None, "Model catalogue", kind=JobKind.MODELS)
        worker.succeeded.connect(self.show_catalogue)
        worker.failed.connect(self._show_failure)
        return worker

    def show_catalogue(self, entries: list[dict]) -> None:
        self.catalogue = entries
        self.table.clear()
        for entry in entries:
            state = {"present": "yes", "partial": "partly (resumes)", "missing": "no"}[entry["state"]]
            need = "required" if entry["required"] else "optional"
            item = QTreeWidgetItem([entry["title"], state, _size(entry["size_bytes"]), f"{need}: {entry['used_for']}"])
            item.setToolTip(0, f"{entry['repo']} → {entry['folder']}\nLicence: {entry['licence']} {entry['licence_url']}")
            self.table.addTopLevelItem(item)
            if entry["state"] != "present":
                button = QPushButton("Download")
                button.clicked.connect(lambda _=False, model_id=entry["id"]: self.download([model_id]))
                self.table.setItemWidget(item, 4, button)
        missing = [e for e in entries if e["required"] and e["state"] != "present"]
        self.required_button.setEnabled(bool(missing) and self.download_worker is None)

    def download_required(self) -> Job | None:
        return self.download([e["id"] for e in self.catalogue if e["required"] and e["state"] != "present"])

    def confirm_licences(self, entries: list[dict]) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, "Licences", licence_text(entries),
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        return box.exec() == QMessageBox.StandardButton.Yes

    def download(self, model_ids: list[str], confirmed: bool = False) -> Job | None:
        chosen = [e for e in self.catalogue if e["id"] in model_ids]
        if not chosen or self.download_worker is not None:
            return None
        if not confirmed and not self.confirm_licences(chosen):
            return None
        request = api.DownloadRequest(tuple(model_ids), accept_licences=True, token=self.token.text().strip() or None)
        worker = self.jobs.submit(api.download_models, request, "Download models", kind=JobKind.DOWNLOAD)
        self._follow(worker)
        return worker

    def _follow(self, worker: Job) -> None:
        self.download_worker = worker
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.required_button.setEnabled(False)
        self.progress_text.setText("Starting…")
        worker.progress.connect(self.show_progress)
        worker.succeeded.connect(self.download_done)
        worker.failed.connect(self.download_failed)
        worker.finished.connect(self._download_finished)

    def show_progress(self, event: Progress) -> None:
        if event.stage == Stage.DOWNLOAD and event.total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * event.step / event.total))
            eta = f", {int(event.eta_s // 60)} min {int(event.eta_s % 60)} s left" if event.eta_s else ""
            self.progress_text.setText(event.message + eta)
        else:
            self.progress_text.setText(event.message)

    def cancel_download(self) -> None:
        if self.download_worker is not None:
            self.download_worker.cancel()
            self.progress_text.setText("Stopping… (what was fetched is kept and resumes next time)")

    def download_done(self, result) -> None:
        self.progress_text.setText(f"Done: {len(result.fetched)} file(s) fetched and verified"
                                   + (f", {len(result.present)} already here" if result.present else ""))
        self.models_changed.emit()

    def download_failed(self, failure: JobFailure) -> None:
        self.progress_text.setText("Cancelled; the download resumes where it stopped." if failure.cancelled
                                   else failure.message)

    def _download_finished(self) -> None:
        self.download_worker = None
        self.cancel_button.setVisible(False)
        self.progress.setVisible(False)
        self.refresh_catalogue()

    def _show_failure(self, failure: JobFailure) -> None:
        self.scan_status.setText(failure.message)
