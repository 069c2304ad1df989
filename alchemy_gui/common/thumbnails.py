"""Decode images on a thread pool so the UI does not wait while they are read: photo thumbnails
(:class:`ThumbnailLoader`) and whole images (:class:`FullImageLoader`, for results viewed large,
copied or compared; a 4000×3000 PNG takes ~0.3 s to decode). Their ``wait`` blocks the caller until
the pool is done: for closing the window, never while it is in use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader


class _Done(QObject):
    loaded = Signal(str, QImage)


class _Task(QRunnable):
    """Read one image (scaled to fit ``size`` × ``size``, or whole when ``size`` is None)."""

    def __init__(self, path: Path, size: int | None, done: _Done) -> None:
        super().__init__()
        self.path, self.size, self.done = path, size, done

    def run(self) -> None:
        reader = QImageReader(str(self.path))
        reader.setAutoTransform(True)
        original = reader.size()
        if original.isValid() and self.size is not None:
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


class FullImageLoader(QObject):
    """``load(path, then)`` → later ``then(QImage)`` on the GUI thread, the whole image (a null
    QImage when the file cannot be read). Calls for a path that is being read share that read."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._waiting: dict[str, list[Callable[[QImage], None]]] = {}
        self._done = _Done()
        self._done.loaded.connect(self._on_loaded)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)

    def load(self, path: Path | str, then: Callable[[QImage], None]) -> None:
        waiting = self._waiting.setdefault(str(path), [])
        waiting.append(then)
        if len(waiting) == 1:
            self._pool.start(_Task(Path(path), None, self._done))

    def wait(self, msecs: int = 5000) -> bool:
        return self._pool.waitForDone(msecs)

    def _on_loaded(self, path: str, image: QImage) -> None:
        for then in self._waiting.pop(path, []):
            then(image)
