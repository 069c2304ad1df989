"""Helpers for the app-shell journeys: a window on the test's data folder (a restart is a new
window on the same folder) and a fake training job that runs until it is cancelled."""

from __future__ import annotations

import threading
import time

import pytest

from alchemy_engine import api
from alchemy_engine.errors import JobCancelled
from alchemy_engine.jobs import Progress, Stage
from alchemy_gui.main_window import MainWindow


@pytest.fixture
def open_window(qtbot):
    def make(confirm: bool | None = True, answers: list | None = None) -> MainWindow:
        window = MainWindow(welcome=False)
        qtbot.addWidget(window)
        asked = answers if answers is not None else []
        window.confirm = lambda title, text: asked.append(text) or confirm  # type: ignore[method-assign]
        window.asked = asked
        window.show()
        qtbot.waitUntil(lambda: not window.jobs.busy, timeout=30_000)
        return window

    return make


def open_project(qtbot, window: MainWindow, name: str) -> None:
    qtbot.waitUntil(lambda: any(s.name == name for s in window.projects_state.projects), timeout=10_000)
    slug = next(s.slug for s in window.projects_state.projects if s.name == name)
    window.projects_state.open(slug)
    qtbot.waitUntil(lambda: window.projects_state.current is not None and window.projects_state.current.slug == slug
                    and window.train_state.project is not None and not window.jobs.busy, timeout=30_000)


class FakeTraining:
    """Stands in for ``api.train``: reports a step every 10 ms until cancelled (then the engine
    would have saved a checkpoint), so a test can quit or delete in the middle of a run."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()

    def __call__(self, request, progress, cancel):
        self.started.set()
        step = 0
        while True:
            if cancel.cancelled:
                self.cancelled.set()
                time.sleep(0.2)  # saving the checkpoint
                raise JobCancelled()
            step += 1
            progress(Progress(Stage.TRAINING, step, 10_000, loss=0.1, loss_smoothed=0.1, run_id="run-1"))
            time.sleep(0.01)


@pytest.fixture
def fake_training(monkeypatch) -> FakeTraining:
    fake = FakeTraining()
    monkeypatch.setattr(api, "train", fake)
    return fake


def start_training(qtbot, window: MainWindow, fake: FakeTraining) -> None:
    window.train_state.settings.model = "demo"
    window.tabs.setCurrentWidget(window.train_panel)
    window.menu_actions.start.trigger()  # Ctrl+Enter
    qtbot.waitUntil(lambda: fake.started.is_set() and window.train_state.job.state.value == "running", timeout=10_000)
