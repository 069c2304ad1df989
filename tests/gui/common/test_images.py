from __future__ import annotations

import threading

import numpy as np
from PIL import Image
from PySide6.QtGui import QImage

from alchemy_gui.common.images import qimage_from_mask, qimage_from_pil


def test_pil_to_qimage_keeps_pixels(qapp):
    image = Image.new("RGB", (5, 3), (10, 20, 30))
    image.putpixel((4, 2), (200, 100, 50))
    qimage = qimage_from_pil(image)
    assert (qimage.width(), qimage.height()) == (5, 3)
    assert qimage.pixelColor(4, 2).getRgb()[:3] == (200, 100, 50)
    assert qimage.pixelColor(0, 0).getRgb()[:3] == (10, 20, 30)


def test_mask_overlay_is_clear_outside(qapp):
    mask = np.zeros((4, 6), dtype=bool)
    mask[1:3, 2:4] = True
    overlay = qimage_from_mask(mask)
    assert overlay.pixelColor(2, 1).alpha() > 0
    assert overlay.pixelColor(0, 0).alpha() == 0


def test_previews_become_qimages_on_the_job_thread_not_the_ui_thread(qtbot, monkeypatch):
    from alchemy_engine.jobs import Progress, Stage
    from alchemy_gui.common import images
    from alchemy_gui.common.job_list import JobList

    converted_on: list[int] = []

    def recording(image):
        converted_on.append(threading.get_ident())
        return qimage_from_pil(image)

    monkeypatch.setattr(images, "qimage_from_pil", recording)

    def engine_job(request, progress, cancel):
        progress(Progress(Stage.SAMPLE, 1, 2, preview=Image.new("RGB", (48, 32), (1, 2, 3))))
        progress(Progress(Stage.TRAINING, 2, 2))
        return "done"

    seen = []
    runner = JobList()
    worker = runner.submit(images.previews_as_qimages(engine_job), None)
    worker.progress.connect(seen.append)
    with qtbot.waitSignal(worker.finished, timeout=10000):
        pass
    qtbot.waitUntil(lambda: not runner.busy, timeout=10000)
    preview = seen[0].preview
    assert isinstance(preview, QImage) and (preview.width(), preview.height()) == (48, 32)
    assert preview.pixelColor(0, 0).getRgb()[:3] == (1, 2, 3) and seen[1].preview is None
    assert len(converted_on) == 1 and converted_on[0] != threading.main_thread().ident
    assert worker.name == "test_previews_become_qimages_on_the_job_thread_not_the_ui_thread.<locals>.engine_job"
