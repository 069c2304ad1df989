"""Whole images (results viewed large, copied, compared) are decoded on a pool thread, never on
the UI thread, and handed back on it."""

from __future__ import annotations

import threading

import pytest
from PIL import Image
from PySide6.QtGui import QImage, QImageReader

from alchemy_gui.common import thumbnails
from alchemy_gui.common.thumbnails import FullImageLoader


class RecordingReader(QImageReader):
    """A QImageReader that notes which thread decodes."""

    threads: list[int] = []

    def read(self) -> QImage:
        RecordingReader.threads.append(threading.get_ident())
        return super().read()


@pytest.fixture
def reads(monkeypatch) -> list[int]:
    """The ids of the threads that decoded an image file in this test."""
    RecordingReader.threads = []
    monkeypatch.setattr(thumbnails, "QImageReader", RecordingReader)
    return RecordingReader.threads


def test_whole_image_is_decoded_off_the_ui_thread_and_shared_by_concurrent_calls(qtbot, tmp_path, reads):
    path = tmp_path / "big.png"
    Image.new("RGB", (640, 480), (10, 200, 30)).save(path)
    loader = FullImageLoader()
    got: list[tuple[str, QImage]] = []
    loader.load(path, lambda image: got.append(("first", image)))
    loader.load(path, lambda image: got.append(("second", image)))
    assert got == []  # the caller returns before anything is decoded
    qtbot.waitUntil(lambda: len(got) == 2, timeout=10000)
    assert [who for who, _ in got] == ["first", "second"]
    assert all((image.width(), image.height()) == (640, 480) for _, image in got)  # whole, not a thumbnail
    assert got[0][1].pixelColor(5, 5).getRgb()[:3] == (10, 200, 30)
    assert len(reads) == 1 and reads[0] != threading.main_thread().ident
    assert loader.wait()


def test_unreadable_file_gives_a_null_image(qtbot, tmp_path, reads):
    loader = FullImageLoader()
    got: list[QImage] = []
    loader.load(tmp_path / "gone.png", got.append)
    qtbot.waitUntil(lambda: len(got) == 1, timeout=10000)
    assert got[0].isNull()
