"""The status bar's Jobs button and the popup it opens: every job of the :class:`JobList`.

The button says what runs ("Jobs: 1 running · 2 waiting"); the popup lists running and queued jobs
with their progress or what they wait for, a Cancel for each (a queued job cancelled never starts),
and the finished ones with their outcome. Both only read the list and re-render when it changes.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from alchemy_gui.common.job_list import Job, JobList, JobState

RENDER_MS = 200  # progress events arrive several times a second: re-render at most this often
COLUMNS = ("Job", "State", "Progress", "Details", "")


class JobsButton(QToolButton):
    def __init__(self, jobs: JobList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.popup: JobsPopup | None = None
        self.setObjectName("jobsButton")
        self.setToolTip("Every job of the window: what runs, what waits and for what; cancel any of them")
        self.setAutoRaise(True)
        self.clicked.connect(self.show_popup)
        jobs.job_added.connect(self._update)
        jobs.job_changed.connect(self._update)
        jobs.busy_changed.connect(self._update)
        self._update()

    def show_popup(self) -> JobsPopup:
        if self.popup is None:
            self.popup = JobsPopup(self.jobs, self.window())
        self.popup.refresh()
        self.popup.show()
        self.popup.raise_()
        return self.popup

    def _update(self, *_args) -> None:
        running = sum(1 for j in self.jobs.jobs if j.state is JobState.RUNNING)
        waiting = sum(1 for j in self.jobs.jobs if j.state is JobState.QUEUED)
        parts = ([f"{running} running"] if running else []) + ([f"{waiting} waiting"] if waiting else [])
        self.setText("Jobs: " + " · ".join(parts) if parts else "Jobs")


class JobsPopup(QDialog):
    def __init__(self, jobs: JobList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.setWindowTitle("Jobs")
        self.setModal(False)
        self.resize(720, 320)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self._timer = QTimer(self, singleShot=True, interval=RENDER_MS)
        self._timer.timeout.connect(self.refresh)
        jobs.job_added.connect(self._soon)
        jobs.job_changed.connect(self._soon)

    def _soon(self, *_args) -> None:
        if self.isVisible() and not self._timer.isActive():
            self._timer.start()

    def rows(self) -> list[Job]:
        """Running, then waiting, then finished (newest first)."""
        order = {JobState.RUNNING: 0, JobState.QUEUED: 1}
        active = [j for j in self.jobs.jobs if not j.done]
        done = [j for j in reversed(self.jobs.jobs) if j.done]
        return sorted(active, key=lambda j: (order[j.state], j.id)) + done

    def refresh(self) -> None:  # not "render": that is QWidget's paint-into-a-device
        rows = self.rows()
        self.table.setRowCount(len(rows))
        for row, job in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(job.title))
            self.table.setItem(row, 1, QTableWidgetItem(job.state.value))
            self.table.setCellWidget(row, 2, _progress(job))
            detail = QTableWidgetItem(describe(job))
            detail.setToolTip(describe(job))
            self.table.setItem(row, 3, detail)
            if job.done:
                self.table.removeCellWidget(row, 4)
                self.table.setItem(row, 4, QTableWidgetItem(""))
            else:
                cancel = QPushButton("Cancel")
                cancel.setToolTip("Stop this job; a waiting job never starts")
                cancel.clicked.connect(job.cancel)
                self.table.setCellWidget(row, 4, cancel)
        running = sum(1 for j in rows if j.state is JobState.RUNNING)
        waiting = sum(1 for j in rows if j.state is JobState.QUEUED)
        self.summary.setText(f"{running} running, {waiting} waiting. Disk work (photos, projects, scenes) never "
                             "waits behind model work; model jobs run side by side when both fit in memory.")


def describe(job: Job) -> str:
    """What the popup says about one job: what it waits for, how far it got, or how it ended."""
    if job.state is JobState.QUEUED:
        return job.wait_text() or "starting"
    if job.state is JobState.RUNNING:
        event = job.last_progress
        text = event.message or str(event.stage.value) if event is not None else "running"
        return f"{text} ({job.note})" if job.note else text
    took = f" in {_seconds(job)}" if job.started is not None and job.ended is not None else ""
    if job.state is JobState.FINISHED:
        return f"done{took}"
    if job.state is JobState.CANCELLED:
        return "cancelled before it started" if job.started is None else f"cancelled{took}"
    return job.failure.message if job.failure is not None else "failed"


def _progress(job: Job) -> QWidget:
    bar = QProgressBar()
    event = job.last_progress
    if job.state is JobState.RUNNING and event is not None and event.total:
        bar.setRange(0, event.total)
        bar.setValue(min(event.step, event.total))
        bar.setFormat(f"{event.step} / {event.total}")
    elif job.state is JobState.RUNNING:
        bar.setRange(0, 0)  # busy
    else:
        bar.setRange(0, 1)
        bar.setValue(1 if job.state is JobState.FINISHED else 0)
        bar.setTextVisible(False)
    bar.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return bar


def _seconds(job: Job) -> str:
    took = (job.ended or time.time()) - (job.started or job.submitted)
    return f"{took:.1f} s" if took < 90 else f"{took / 60:.0f} min"


__all__ = ["JobsButton", "JobsPopup", "describe"]
