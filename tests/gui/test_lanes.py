"""Job lanes: while a training run runs, disk work goes on at once and lands in its own project; a
SAM click runs beside training when the memory estimates fit, and says what it waits for when they
do not; a cancelled queued job never starts; quitting lists every running job.

Training is the app conftest's fake (it runs until cancelled), so anything that waited behind it
would never finish: each ``waitUntil`` below can only pass if its job ran beside the training run.
The memory figures of the fit tests are set by the test; ``fits_together`` is the engine's own.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from alchemy_engine import api
from alchemy_gui.common.job_list import JobKind, JobList, JobState
from alchemy_gui.insert import state as insert_state_module
from alchemy_gui.insert.jobs import load_scene_job
from alchemy_gui.main_window import MainWindow
from alchemy_gui.projects.photo_viewer import PhotoViewer
from tests.gui.app.conftest import FakeTraining, open_project

GIB = 1024 ** 3
QUICK_MS = 15_000  # generous for a loaded 2-core machine; the training run never ends by itself


@pytest.fixture
def fake_training(monkeypatch) -> FakeTraining:
    fake = FakeTraining()
    monkeypatch.setattr(api, "train", fake)
    return fake


@pytest.fixture
def memory(monkeypatch):
    """Fixed footprints (training 10 GiB on the GPU; SAM 2 GiB there or 1 GiB of RAM on the CPU)
    and a budget the test sets; the engine's ``fits_together`` decides."""
    budget = {"gpu": 24 * GIB, "ram": 64 * GIB}

    def footprints(request):
        if isinstance(request, api.TrainRequest):
            return [api.JobFootprint("cuda", 10 * GIB, GIB)]
        if isinstance(request, api.SegmentRequest):
            return [api.JobFootprint("cuda", 2 * GIB, GIB // 4),
                    api.JobFootprint("cpu", 0, GIB, note="SAM runs on the CPU this time: the GPU is full")]
        return []

    monkeypatch.setattr(api, "job_footprints", footprints)
    monkeypatch.setattr(api, "memory_budget", lambda: api.MemoryBudget({"cuda": budget["gpu"]}, budget["ram"]))
    return budget


@pytest.fixture
def window(qtbot, photos):
    api.create_project("Rex", class_noun="dog", images=photos[:2])
    api.create_project("Mug", class_noun="mug", images=photos[2:])
    win = MainWindow(welcome=False)  # not qtbot.addWidget: it would delete the window before this teardown
    win.asked = []
    win.confirm = lambda title, text: win.asked.append(text) or False  # type: ignore[method-assign]
    win.show()
    qtbot.waitUntil(lambda: not win.jobs.busy, timeout=30_000)
    open_project(qtbot, win, "Rex")
    yield win
    win.jobs.cancel_all()
    qtbot.waitUntil(lambda: not win.jobs.busy, timeout=30_000)
    win.close()
    win.deleteLater()


def _train(qtbot, window, fake) -> None:
    window.train_state.settings.model = "demo"
    window.train_state.start()
    qtbot.waitUntil(lambda: fake.started.is_set() and window.train_state.job.state is JobState.RUNNING,
                    timeout=60_000)
    assert window.train_state.running


def _scene(tmp_path, name="park.png"):
    path = tmp_path / name
    Image.fromarray(np.full((64, 96, 3), 90, np.uint8)).save(path)
    return path


def test_disk_work_goes_on_beside_training_and_lands_in_its_own_project(qtbot, window, fake_training,
                                                                        memory, photos, tmp_path):
    _train(qtbot, window, fake_training)
    training = window.train_state.job

    window.overview.photos.setCurrentRow(0)  # a photo opens
    window.overview.view_selected()
    qtbot.waitUntil(lambda: window.overview.findChild(PhotoViewer) is not None, timeout=QUICK_MS)
    window.overview.findChild(PhotoViewer).close()

    rex = window.projects_state.current  # a mask is saved
    name = rex.reference_photos()[0].name
    mask = np.zeros((rex.reference_photos()[0].height, rex.reference_photos()[0].width), bool)
    mask[10:50, 10:50] = True
    window.overview.photos_state.save_mask(rex.slug, name, mask)
    qtbot.waitUntil(lambda: api.open_project("rex").photo(name).mask_path is not None, timeout=QUICK_MS)

    scene = _scene(tmp_path)  # a scene opens and is kept as Rex's current scene
    with qtbot.waitSignal(window.insert_state.scene_ready, timeout=QUICK_MS):
        window.insert_state.open_scene(scene)
    qtbot.waitUntil(lambda: api.load_scene_mask(rex.root) is not None, timeout=QUICK_MS)
    assert api.load_scene_mask(rex.root).scene == scene.resolve()

    from alchemy_gui.projects.state import NewProject  # a project is created and shown
    window.projects_state.create(NewProject("Cat", "sks", "cat", (photos[0],)))
    qtbot.waitUntil(lambda: window.projects_state.current is not None
                    and window.projects_state.current.name == "Cat" and window.train_state.project.name == "Cat",
                    timeout=QUICK_MS)

    open_project_now(qtbot, window, "Mug")  # a photo added after switching lands in Mug
    window.projects_state.add_photos([photos[1]])
    qtbot.waitUntil(lambda: len(api.open_project("mug").reference_photos()) == 2, timeout=QUICK_MS)
    assert len(api.open_project("rex").reference_photos()) == 2 and len(api.open_project("cat").reference_photos()) == 1

    assert training.state is JobState.RUNNING and not fake_training.cancelled.is_set()
    assert window.train_state.running and window.train_state.progress is None  # Mug is on screen, not Rex


def open_project_now(qtbot, window, name: str) -> None:
    slug = next(s.slug for s in window.projects_state.projects if s.name == name)
    window.projects_state.open(slug)
    qtbot.waitUntil(lambda: window.projects_state.current.slug == slug and window.insert_state.project.slug == slug,
                    timeout=QUICK_MS)


def test_a_scene_still_loading_when_the_project_changes_is_kept_by_its_own_project(qtbot, window, monkeypatch,
                                                                                   tmp_path):
    release = threading.Event()

    def slow_load(scene, progress, cancel):
        release.wait(10)
        return load_scene_job(scene, progress, cancel)

    monkeypatch.setattr(insert_state_module, "load_scene_job", slow_load)
    rex = window.projects_state.current
    scene = _scene(tmp_path, "beach.png")
    window.insert_state.open_scene(scene)
    window.projects_state.open("mug")
    release.set()
    qtbot.waitUntil(lambda: window.projects_state.current.slug == "mug", timeout=QUICK_MS)
    qtbot.waitUntil(lambda: api.load_scene_mask(rex.root) is not None, timeout=QUICK_MS)
    assert api.load_scene_mask(rex.root).scene == scene.resolve()  # Rex keeps it...
    assert window.insert_state.document.scene_path != scene.resolve()  # ...and Mug does not show it
    assert api.load_scene_mask(api.open_project("mug").root) is None


def test_a_sam_click_runs_beside_training_when_both_fit(qtbot, window, fake_training, memory, tmp_path):
    _train(qtbot, window, fake_training)
    state = window.insert_state
    with qtbot.waitSignal(state.scene_ready, timeout=QUICK_MS):
        state.open_scene(_scene(tmp_path))
    state.locate.sam = "demo"
    with qtbot.waitSignal(state.mask_ready, timeout=60_000):
        state.document.add_point(30, 20, 1)
        state.request_mask()
    sam = [j for j in window.jobs.jobs if j.kind is JobKind.SEGMENT][-1]
    assert sam.state is JobState.FINISHED and sam.note == ""  # on its own device: 10 + 2 GiB fit 24
    assert window.train_state.job.state is JobState.RUNNING


def test_a_sam_click_moves_to_the_cpu_when_the_gpu_is_full_and_waits_when_nothing_fits(
        qtbot, window, fake_training, memory, tmp_path):
    memory["gpu"] = 11 * GIB  # training's 10 GiB leave no room for SAM's 2 on the GPU
    _train(qtbot, window, fake_training)
    state = window.insert_state
    with qtbot.waitSignal(state.scene_ready, timeout=QUICK_MS):
        state.open_scene(_scene(tmp_path))
    state.locate.sam = "demo"
    with qtbot.waitSignal(state.mask_ready, timeout=60_000):
        state.document.add_point(30, 20, 1)
        state.request_mask()
    sam = [j for j in window.jobs.jobs if j.kind is JobKind.SEGMENT][-1]
    assert "on the CPU" in sam.note

    window.jobs.gate._budget = api.MemoryBudget({"cuda": 11 * GIB}, int(1.5 * GIB))  # and RAM is short too
    state.document.add_point(40, 30, 1)
    state.request_mask()
    waiting = [j for j in window.jobs.jobs if j.kind is JobKind.SEGMENT][-1]
    qtbot.waitUntil(lambda: "waits for Training 'Rex'" in state.message.text, timeout=QUICK_MS)
    assert waiting.state is JobState.QUEUED and "GiB" in waiting.wait_text()
    window.train_state.cancel()  # the run stops (saving a checkpoint): SAM goes ahead
    qtbot.waitUntil(lambda: waiting.state is JobState.FINISHED, timeout=60_000)


def test_a_cancelled_queued_job_never_starts(qtbot):
    jobs = JobList(budget=lambda: api.MemoryBudget({}, None))
    gate = threading.Event()
    started = []

    def blocker(request, progress, cancel):
        gate.wait(10)
        return "first"

    def never(request, progress, cancel):
        started.append(request)
        return "second"

    first = jobs.submit(blocker, None, "first")  # both in the disk lane: the second waits its turn
    second = jobs.submit(never, "x", "second")
    qtbot.waitUntil(lambda: first.state is JobState.RUNNING, timeout=QUICK_MS)
    assert second.state is JobState.QUEUED
    second.cancel()
    gate.set()
    qtbot.waitUntil(lambda: not jobs.busy, timeout=QUICK_MS)
    assert first.state is JobState.FINISHED and first.result == "first"
    assert second.state is JobState.CANCELLED and started == [] and second.started is None


def test_quit_lists_every_running_job(qtbot, window, fake_training, memory, tmp_path):
    memory["gpu"], memory["ram"] = 11 * GIB, int(1.5 * GIB)  # the SAM click has to wait
    _train(qtbot, window, fake_training)
    state = window.insert_state
    with qtbot.waitSignal(state.scene_ready, timeout=QUICK_MS):
        state.open_scene(_scene(tmp_path))
    state.document.add_point(30, 20, 1)
    state.request_mask()
    qtbot.waitUntil(lambda: "waits for" in state.message.text, timeout=QUICK_MS)
    qtbot.waitUntil(lambda: not [j for j in window.jobs.active() if j.lane.value == "light"], timeout=QUICK_MS)
    popup = window.jobs_button.show_popup()
    rows = {popup.table.item(r, 0).text(): r for r in range(popup.table.rowCount())}
    assert rows["Training 'Rex'"] == 0 and popup.table.item(0, 1).text() == "running"
    sam = rows["SAM mask 'Rex'"]  # waiting jobs follow the running ones, finished ones come last
    assert sam == 1 and "waits for Training 'Rex'" in popup.table.item(sam, 3).text()
    assert window.jobs_button.text() == "Jobs: 1 running · 1 waiting"

    window.close()  # answered "No"
    assert window.asked[-1] == "2 jobs are running:\n• Training 'Rex'\n• SAM mask 'Rex' (queued)\n\nStop them and quit?"
    assert window.isVisible() and window.train_state.running
    popup.table.cellWidget(sam, 4).click()  # Cancel on the waiting SAM click: it never starts
    qtbot.waitUntil(lambda: [j for j in window.jobs.jobs if j.kind is JobKind.SEGMENT][-1].state
                    is JobState.CANCELLED, timeout=QUICK_MS)
    window.close()
    assert window.asked[-1] == "Training 'Rex' is running — stop and quit?"


def test_try_this_checkpoint_offers_the_newest_kept_step_on_the_insert_tab(qtbot, window, fake_training, memory,
                                                                           monkeypatch, tmp_path):
    exported = []

    def export(project_root, run_id, step):  # the engine's export (tested with `export --step`)
        lora = tmp_path / f"step-{step}" / "lora.safetensors"
        lora.parent.mkdir()
        lora.write_bytes(b"x")
        exported.append((run_id, step))
        return lora, lora.with_name("lora_kohya.safetensors")

    monkeypatch.setattr(api, "kept_checkpoint_steps", lambda run_dir: [20, 40])
    monkeypatch.setattr(api, "export_checkpoint_lora", export)
    _train(qtbot, window, fake_training)
    qtbot.waitUntil(lambda: window.train_state.active_run_id == "run-1", timeout=QUICK_MS)
    assert window.train_panel.try_button.isEnabled()
    window.train_panel.try_button.click()
    qtbot.waitUntil(lambda: "exported" in window.train_state.status.text, timeout=QUICK_MS)
    assert exported == [("run-1", 40)] and window.train_state.job.state is JobState.RUNNING
    offered = window.insert_state.lora_files[-1]
    assert offered.label == "run-1 · step 40 (checkpoint)"
    assert window.insert_state.settings.run == offered.value == str(tmp_path / "step-40" / "lora.safetensors")


def test_a_tried_checkpoint_keeps_its_step_when_its_project_is_opened_again(tmp_path):
    """Saved with the project's Insert settings as a path; read back it is still 'run · step N'."""
    from alchemy_gui.insert.added_loras import _file_choice

    lora = tmp_path / "runs" / "20261207-101500-ab12" / "exports" / "step-400" / "lora.safetensors"
    lora.parent.mkdir(parents=True)
    lora.write_bytes(b"x")
    assert _file_choice(str(lora)).label == "20261207-101500-ab12 · step 400 (checkpoint)"
    other = tmp_path / "mine.safetensors"
    other.write_bytes(b"x")
    assert _file_choice(str(other)).label == "mine.safetensors (file)"
