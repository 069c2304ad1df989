"""The running (or last) training job: stage, step bar, loss / learning rate / speed / ETA, the loss
curve and the newest sample image. Binds to :class:`~alchemy_gui.train.state.TrainState`."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from alchemy_engine.jobs import Progress
from alchemy_gui.common.binding import bind_to
from alchemy_gui.train.loss_chart import LossChart
from alchemy_gui.train.note_text import artist_note
from alchemy_gui.train.state import TrainState

STEP_STAGES = ("training", "checkpoint", "sample", "resuming")
STAGE_TEXT = {"waiting": "Waiting for the current job…", "preparing": "Checking photos and model…",
              "memory": "Estimating memory…", "loading": "Loading the base model…",
              "caching": "Encoding photos", "class images": "Making class images",
              "resuming": "Resuming from a checkpoint…", "checkpoint": "Saving a checkpoint…",
              "sample": "Drawing a preview…", "training": "Training"}
PREVIEW_SIZE = 168


def format_duration(seconds: float | None) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on); an em dash when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def stage_text(event: Progress) -> str:
    text = STAGE_TEXT.get(event.stage, event.stage.capitalize())
    if event.stage in STEP_STAGES and event.total:
        return f"{text} — step {event.step} of {event.total}" if event.stage == "training" else text
    if event.total:
        return f"{text} ({event.step} of {event.total})"
    return f"{text} {event.message}".strip() if event.stage == "loading" else text


class TrainProgressView(QWidget):
    def __init__(self, state: TrainState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.stage = QLabel("Not running")
        self.stage.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setFormat("")
        self.bar.setTextVisible(True)
        self.loss = QLabel("Loss —")
        self.learning_rate = QLabel("LR —")
        self.speed = QLabel("— it/s")
        self.eta = QLabel("ETA —")
        for label, tip in ((self.loss, "Smoothed training loss"), (self.learning_rate, "Current learning rate"),
                           (self.speed, "Optimizer steps per second"), (self.eta, "Time left (minutes:seconds)")):
            label.setToolTip(tip)
            label.setObjectName("stat")
        stats = QGridLayout()
        for column, label in enumerate((self.loss, self.learning_rate, self.speed, self.eta)):
            stats.addWidget(label, 0, column)
            stats.setColumnStretch(column, 1)
        self.notes = QLabel()
        self.notes.setObjectName("notes")
        self.notes.setWordWrap(True)
        self.notes.setToolTip("Settings the engine changed for this run (also saved in its settings_changed.json)")
        self.notes.setStyleSheet("QLabel#notes { color: #8a5a00; background: #fff6e0; padding: 4px; }")
        self.notes.setVisible(False)
        self.notes.setTextFormat(Qt.TextFormat.RichText)
        self.notes.linkActivated.connect(self._toggle_details)
        self._notes: tuple = ()
        self._details_shown = False
        self.chart = LossChart()
        self.preview = QLabel("Preview images appear here\n(Advanced → Sample every)")
        self.preview.setObjectName("hint")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setWordWrap(True)
        self.preview.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
        self.preview.setStyleSheet("QLabel { border: 1px solid #e3e5e8; }")
        visuals = QHBoxLayout()
        visuals.addWidget(self.chart, 1)
        visuals.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stage)
        layout.addWidget(self.bar)
        layout.addLayout(stats)
        layout.addWidget(self.notes)
        layout.addLayout(visuals, 1)
        self.bindings = [bind_to(state, "progress", self._show_progress),
                         bind_to(state, "loss_history", self._show_loss_history),
                         bind_to(state, "preview", self._show_preview),
                         bind_to(state, "notes", self._show_notes)]
        state.running_changed.connect(self._show_running)  # a change of state, not a value to show

    def _show_progress(self, event: Progress | None) -> None:
        if event is None:  # no job, or one that trains another project: show none of it
            self._reset_stats()
            self.stage.setText("Not running")
            return
        if event.stage == "note":  # shown on the notes line; the stage and the bar stay as they are
            return
        self.stage.setText(stage_text(event))
        if event.stage in STEP_STAGES and event.total:
            self.bar.setRange(0, event.total)
            self.bar.setValue(event.step)
            self.bar.setFormat("%v / %m steps")
        elif event.total:
            self.bar.setRange(0, event.total)
            self.bar.setValue(event.step)
            self.bar.setFormat(f"{STAGE_TEXT.get(event.stage, event.stage)} %v / %m")
        else:
            self.bar.setRange(0, 0)  # busy: a stage without steps
        if event.loss_smoothed is not None:
            self.loss.setText(f"Loss {event.loss_smoothed:.4f}")
        if event.learning_rate is not None:
            self.learning_rate.setText(f"LR {event.learning_rate:.2e}")
        if event.it_per_s is not None:
            self.speed.setText(f"{event.it_per_s:.2f} it/s")
        if event.eta_s is not None:
            self.eta.setText(f"ETA {format_duration(event.eta_s)}")

    def _reset_stats(self) -> None:
        for label, text in ((self.loss, "Loss —"), (self.learning_rate, "LR —"), (self.speed, "— it/s"),
                            (self.eta, "ETA —")):
            label.setText(text)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("")

    def _show_notes(self, notes: tuple) -> None:
        """Plain sentences, with the engine's own lines (flags, figures) under *Details*."""
        self._notes = tuple(notes)
        lines = [f"ℹ {escape(artist_note(note))}" for note in notes]  # ℹ: in DejaVu, unlike ⓘ (a box on plain Linux)
        if notes and self._details_shown:
            lines += ["<br><small>" + "<br>".join(escape(note) for note in notes) + "</small>",
                      '<a href="hide">Hide details</a>']
        elif notes:
            lines.append('<a href="details">Details</a>')
        self.notes.setText("<br>".join(lines))
        self.notes.setVisible(bool(notes))

    def _toggle_details(self, link: str) -> None:
        self._details_shown = link == "details"
        self._show_notes(self._notes)

    def _show_loss_history(self, points: tuple[tuple[int, float], ...]) -> None:
        total = self.state.progress.total if self.state.progress is not None else 0
        self.chart.set_points(points, total)

    def _show_preview(self, image: QImage) -> None:
        if image.isNull():
            self.preview.setPixmap(QPixmap())
            self.preview.setText("Preview images appear here\n(Advanced → Sample every)")
            return
        pixmap = QPixmap.fromImage(image).scaled(PREVIEW_SIZE - 2, PREVIEW_SIZE - 2, Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation)
        self.preview.setPixmap(pixmap)
        self.preview.setToolTip(f"Newest sample, {image.width()}×{image.height()}")

    def _show_running(self, running: bool) -> None:
        if running:
            self._reset_stats()
            return
        if self.bar.maximum() == 0:  # stopped during a stage without steps: no endless busy bar
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
        steps = self.bar.maximum() > 1 and "steps" in self.bar.format()
        self.stage.setText(f"Last run: step {self.bar.value()} of {self.bar.maximum()}" if steps else "Not running")
        self.eta.setText("ETA —")
