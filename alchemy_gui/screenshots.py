"""Render each main view on demo data, offscreen: ``python -m alchemy_gui.screenshots OUTDIR``.

Writes ``projects.png`` (the project list and its photos), ``train.png`` (a run in progress with
its loss chart and a preview; the progress is replayed into the view-model, nothing trains),
``insert.png`` (a scene, its mask and results) and the dialogs (``preferences.png``,
``shortcuts.png``). Uses a fresh data folder in OUTDIR unless IMAGE_ALCHEMY_HOME is set.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

SIZE = (1400, 860)


def _subject(path: Path, hue: int, seed: int) -> Path:
    """A simple stand-in photo: a round "dog" on a soft background (small PNGs, unlike noise)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (512, 512), (200 + hue % 40, 215, 190 + (seed * 20) % 50))
    draw = ImageDraw.Draw(img)
    cx, cy = 220 + seed * 25, 270 - seed * 10
    draw.ellipse((cx - 120, cy - 90, cx + 120, cy + 110), fill=(150, 95, 50))
    draw.ellipse((cx + 60, cy - 150, cx + 170, cy - 40), fill=(140, 85, 45))
    draw.ellipse((cx + 120, cy - 110, cx + 140, cy - 90), fill=(20, 20, 20))
    draw.rectangle((0, 420, 512, 512), fill=(110, 160, 90))
    img.save(path)
    return path


def _wait(app, until, timeout_s: float = 30) -> None:
    end = time.monotonic() + timeout_s
    while not until() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()


def _fake_training(window) -> None:
    from PIL import Image, ImageDraw

    from alchemy_engine.jobs import Progress, Stage
    from alchemy_gui.common.images import qimage_from_pil
    from alchemy_gui.train.state import Status

    train = window.train_state
    train.settings.model = "demo"
    history = tuple((s, 0.12 + 0.1 * math.exp(-s / 90) + 0.01 * math.sin(s / 7)) for s in range(10, 241, 10))
    preview = Image.new("RGB", (256, 256), (210, 220, 200))
    ImageDraw.Draw(preview).ellipse((50, 70, 210, 220), fill=(150, 95, 50))
    train.running = True
    train.loss_history = history
    train.preview = qimage_from_pil(preview)
    train.progress = Progress(Stage.TRAINING, 240, 500, loss=history[-1][1], loss_smoothed=history[-1][1],
                              learning_rate=1e-4, it_per_s=2.4, eta_s=108)
    train.status = Status("Training: step 240 of 500.")


def _fake_insert(app, window, folder: Path) -> None:
    import numpy as np
    from PySide6.QtGui import QImage

    from alchemy_gui.insert.state import InsertedImage, Tool

    insert = window.insert_state
    scene = _subject(folder / "scene.png", 10, 3)
    insert.open_scene(scene)
    _wait(app, lambda: insert.document.scene_path is not None)
    mask = np.zeros((512, 512), bool)
    yy, xx = np.mgrid[:512, :512]
    mask[((xx - 295) / 130) ** 2 + ((yy - 250) / 110) ** 2 <= 1] = True
    insert.document.set_mask(mask)
    insert.tool, insert.brush_hardness = Tool.BRUSH, 20  # a soft stroke: the mask's grey levels show
    insert.document.begin_stroke()
    insert.document.paint((180, 390), (420, 400), 22, hardness=0.2)
    insert.document.end_stroke()
    results = []
    for seed in (11, 12, 13):
        image = QImage(str(_subject(folder / f"result-{seed}.png", seed * 9, seed % 4)))
        results.append(InsertedImage(folder / f"result-{seed}.png", image.scaled(128, 128), seed,
                                     "a photo of sks dog in a park"))
    insert.results = tuple(results)
    window.insert_panel.results.list.setCurrentItem(None)  # back to the scene and its mask


def render(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("IMAGE_ALCHEMY_HOME", str(out / "data"))
    from alchemy_engine import api

    api.set_demo_mode(True)
    from alchemy_gui.app import create_application
    from alchemy_gui.main_window import MainWindow
    from alchemy_gui.shell.preferences import PreferencesDialog

    app = create_application([sys.argv[0]])
    photos_dir = out / "data" / "photos"
    photos_dir.mkdir(parents=True, exist_ok=True)
    if not any(s.name == "Rex" for s in api.list_projects()):
        api.create_project("Rex", class_noun="dog", images=[_subject(photos_dir / f"rex{i}.png", 20 * i, i)
                                                           for i in range(4)])
        api.create_project("Blue mug", class_noun="mug", token="zwx", images=[_subject(photos_dir / "mug.png", 5, 1)])
    window = MainWindow(welcome=False)
    window.resize(*SIZE)
    window.show()
    _wait(app, lambda: bool(window.projects_state.projects))
    slug = next(s.slug for s in window.projects_state.projects if s.name == "Rex")
    window.projects_state.open(slug)
    _wait(app, lambda: window.projects_state.current is not None and not window.jobs.busy)
    photos = window.overview.photos
    _wait(app, lambda: all(not photos.item(i).icon().isNull() for i in range(photos.count())))
    shots = []

    def shot(name: str, widget=None) -> None:
        _wait(app, lambda: not window.jobs.busy, 10)
        path = out / f"{name}.png"
        (widget or window).grab().save(str(path))
        shots.append(path)

    window.tabs.setCurrentWidget(window.overview)
    shot("projects")
    window.tabs.setCurrentWidget(window.train_panel)
    _wait(app, lambda: bool(window.train_state.models))
    _fake_training(window)
    shot("train")
    window.train_state.running = False
    window.tabs.setCurrentWidget(window.insert_panel)
    _fake_insert(app, window, photos_dir)
    shot("insert")
    window.menu_actions.preferences.trigger()
    preferences = window.dialog
    assert isinstance(preferences, PreferencesDialog)
    _wait(app, lambda: "found" in preferences.model_lines["sdxl"].text())
    shot("preferences", preferences)
    preferences.reject()
    window.menu_actions.shortcuts.trigger()
    assert window.dialog is not None
    shot("shortcuts", window.dialog)
    window.dialog.reject()
    window.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the PNG files")
    for path in render(parser.parse_args(argv).out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
