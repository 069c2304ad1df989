"""Decode photo thumbnails on a thread pool so the UI never waits on the disk."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader


class _Done(QObject):
    loaded = Signal(str, QImage)


class _Task(QRunnable):
    def __init__(self, path: Path, size: int, done: _Done) -> None:
        super().__init__()
        self.path, self.size, self.done = path, size, done

    def run(self) -> None:
        reader = QImageReader(str(self.path))
        reader.setAutoTransform(True)
        original = reader.size()
        if original.isValid():
            reader.setScaledSize(original.scaled(QSize(self.size, self.size),
                                                 _keep_aspect()))
        image = reader.read()  # a null QImage on failure; the view shows a placeholder
        self.done.loaded.emit(str(self.path), image)


def _keep_aspect():
    from PySide6.QtCore import Qt

    return Qt.AspectRatioMode.KeepAspectRatio


class ThumbnailLoader(QObject):
    """``request(path)`` → later ``loaded(path, QImage)`` on the GUI thread."""

    loaded = Signal(str, QImage)

    def __init__(self, size: int = 160, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self._done = _Done()
        self._done.loaded.connect(self.loaded)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)

    def request(self, path: Path) -> None:
        self._pool.start(_Task(Path(path), self.size, self._done))

    def wait(self, msecs: int = 5000) -> bool:
        return self._pool.waitForDone(msecs)
