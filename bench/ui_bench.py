"""UI responsiveness: the longest event-loop stall during a demo training run, a SAM click, two
model jobs at once (a SAM click beside a training run) and an insertion (target ≤ 30 ms); time from a fresh process to the window shown (target ≤ 2 s); brush
stroke latency on a 4000×3000 scene.

    OMP_NUM_THREADS=2 QT_QPA_PLATFORM=offscreen python bench/ui_bench.py [--attribute]

``--attribute`` also samples every thread's stack while the heartbeat is late and prints the
stacks seen most often per stall (see bench/stall_probe.py).

A heartbeat QTimer (5 ms) on the UI thread records the largest gap between its ticks, less the
interval: that is how long the window could not repaint or take input. Runs on the demo models in
a fresh data folder; prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("IMAGE_ALCHEMY_HOME", tempfile.mkdtemp(prefix="ui_bench_"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from alchemy_engine.paths import set_demo_mode  # noqa: E402

set_demo_mode(True)

STARTUP = """
import time, sys
from alchemy_gui.app import apply_startup_preferences, create_application
apply_startup_preferences()
app = create_application([sys.argv[0]])
from alchemy_gui.main_window import MainWindow
from PySide6.QtCore import QTimer
window = MainWindow(welcome=False)
window.show()
QTimer.singleShot(0, lambda: (print("shown", time.time(), "torch" in sys.modules, flush=True), window.close()))
app.exec()
"""


def startup_seconds(repeats: int = 3) -> tuple[float, bool]:
    times, torch_loaded = [], False
    for _ in range(repeats):
        start = time.time()
        out = subprocess.run([sys.executable, "-c", STARTUP], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent.parent).stdout
        line = next(line for line in out.splitlines() if line.startswith("shown"))
        times.append(float(line.split()[1]) - start)
        torch_loaded |= line.split()[2] == "True"
    return min(times), torch_loaded


class Heartbeat:
    def __init__(self, interval_ms: int = 5) -> None:
        from PySide6.QtCore import QTimer

        self.interval = interval_ms / 1000
        self.timer = QTimer(interval=interval_ms)
        self.timer.timeout.connect(self._tick)
        self.reset()

    def reset(self) -> None:
        self.last, self.worst = time.perf_counter(), 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last - self.interval)
        self.last = now


def run_until(app, done, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > end:
            raise TimeoutError("the job did not finish in time")
        app.processEvents()
        time.sleep(0.001)


def main() -> int:
    import numpy as np
    from PIL import Image
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    from alchemy_engine import api
    from alchemy_gui.app import create_application
    from alchemy_gui.common.warm_up import start_warm_up
    from alchemy_gui.insert.mask_document import Tool
    from alchemy_gui.main_window import MainWindow

    seconds, torch_at_start = startup_seconds()
    app = create_application([sys.argv[0]])
    folder = Path(os.environ["IMAGE_ALCHEMY_HOME"])
    photos = []
    for i in range(3):
        photos.append(folder / f"p{i}.png")
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(photos[-1])
    api.create_project("Bench", class_noun="dog", images=photos)
    window = MainWindow(welcome=False)
    window.resize(1400, 860)
    window.show()
    beat = Heartbeat()
    beat.timer.start()
    probe = None
    if "--attribute" in sys.argv:
        from stall_probe import StallProbe

        probe = StallProbe(beat)
        probe.start()
    run_until(app, lambda: bool(window.projects_state.projects), 30)
    window.projects_state.open("bench")
    run_until(app, lambda: window.train_state.project is not None and not window.jobs.busy, 60)
    rows: list[tuple[str, float, str]] = []
    attributions: list[tuple[str, dict]] = []

    def measured(what: str, outcome: str) -> None:
        rows.append((what, beat.worst * 1000, outcome))
        if probe is not None:
            attributions.append((what, probe.take()))

    # As app.main does: the engine's libraries load on a thread once the window is up.
    if probe is not None:
        probe.take()
    beat.reset()
    warming = start_warm_up()
    run_until(app, lambda: not warming.is_alive(), 120)
    measured("idle window while the engine loads in the background (imports torch)", "loaded")

    train = window.train_state
    for name, value in {"model": "demo", "steps": 20, "resolution": 64, "rank": 4, "save_every": 10,
                        "sample_every": 10, "sample_steps": 2}.items():
        train.settings.set(name, value)
    for what in ("first demo training run, 20 steps at 64 px", "second demo training run"):
        if probe is not None:
            probe.take()
        beat.reset()
        train.start()
        run_until(app, lambda: not train.running and not window.jobs.busy, 600)
        measured(what, train.status.text.split(":")[0])

    insert = window.insert_state
    scene = folder / "scene.png"
    Image.fromarray(np.random.default_rng(9).integers(0, 255, (512, 512, 3), dtype=np.uint8)).save(scene)
    insert.open_scene(scene)
    run_until(app, lambda: insert.document.scene_path is not None and not window.jobs.busy, 60)

    # Two model jobs at once: a SAM click beside a training run (lanes), and disk work meanwhile.
    train.settings.set("steps", 60)
    if probe is not None:
        probe.take()
    beat.reset()
    train.start()
    run_until(app, lambda: train.job is not None and train.job.state.value == "running", 60)
    insert.document.add_point(200, 200, 1)
    insert.request_mask()
    sam = window.jobs.jobs[-1]
    asked = time.perf_counter()
    window.overview.photos.setCurrentRow(0)
    window.overview.view_selected()
    viewer = window.jobs.jobs[-1]
    run_until(app, lambda: viewer.done, 60)
    photo_ms = (time.perf_counter() - asked) * 1000
    run_until(app, lambda: sam.done, 300)
    beside = "beside training" if train.job.state.value == "running" else "after training"
    run_until(app, lambda: not train.running and not window.jobs.busy, 600)
    measured("training run + a SAM click beside it (two model jobs)",
             f"SAM {sam.state.value} {beside}; a photo opened in {photo_ms:.0f} ms meanwhile")
    insert.document.clear()
    insert.document.mark_saved()
    scene = folder / "scene.png"
    Image.fromarray(np.random.default_rng(9).integers(0, 255, (512, 512, 3), dtype=np.uint8)).save(scene)
    insert.open_scene(scene)
    run_until(app, lambda: insert.document.scene_path is not None and not window.jobs.busy, 60)
    if probe is not None:
        probe.take()
    beat.reset()
    insert.document.add_point(256, 256, 1)
    insert.request_mask()
    run_until(app, lambda: window.jobs.busy, 10)  # jobs start on the next turn of the event loop
    run_until(app, lambda: not window.jobs.busy, 300)
    measured("SAM click (demo SAM, first click: encoder + decoder)", insert.message.text[:40])
    if insert.document.has_mask:
        insert.settings.steps = 2
        if probe is not None:
            probe.take()
        beat.reset()
        insert.insert()
        run_until(app, lambda: not window.jobs.busy and not insert.busy, 600)
        measured("insertion (demo SDXL, 2 steps)", insert.message.text[:40])

    if probe is not None:
        probe.stop()
    big = folder / "big.png"
    Image.new("RGB", (4000, 3000), (120, 140, 160)).save(big)
    insert.open_scene(big)
    run_until(app, lambda: insert.document.scene_path == big.resolve() and not window.jobs.busy, 60)
    window.tabs.setCurrentWidget(window.insert_panel)
    insert.tool = Tool.BRUSH
    canvas = window.insert_panel.canvas
    app.processEvents()
    latencies = []
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(100, 100))
    for step in range(60):
        start = time.perf_counter()
        QTest.mouseMove(canvas, QPoint(100 + step * 5, 100 + step * 3))
        canvas.repaint()
        latencies.append(time.perf_counter() - start)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(400, 280))
    latencies.sort()
    window.close()
    if probe is not None:
        from stall_probe import report

        for what, samples in attributions:
            print(f"## {what}\n{report(samples)}")

    print(f"| window shown after process start | {seconds:.2f} s (target ≤ 2 s); torch loaded: {torch_at_start} |")
    for what, stall, outcome in rows:
        print(f"| longest UI stall: {what} | {stall:.1f} ms (target ≤ 30 ms) · {outcome} |")
    print(f"| brush stroke on 4000×3000, move + repaint | median {latencies[len(latencies) // 2] * 1000:.1f} ms, "
          f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
