"""The project's Insert outputs (its *results*, newest first or by score), owned by
:class:`~alchemy_gui.insert.state.InsertState`, which holds the list itself as its observable
``results`` property: finding one, decoding it full size (off the UI thread, kept once read),
reusing the parameters an output was made with, using it as the scene, and deleting it to the
project's trash.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QImage

from alchemy_engine import api
from alchemy_gui.common.thumbnails import FullImageLoader
from alchemy_gui.insert.result_jobs import InsertedImage, parameters_job, trash_job

if TYPE_CHECKING:
    from alchemy_gui.insert.state import InsertState

REUSED = ("prompt", "negative_prompt", "strength", "steps", "guidance", "lora_scale", "style_lora_scale", "seed",
          "variations", "work_pixels", "ip_adapter", "ip_scale", "ip_range", "ip_mode", "ip_photos", "ip_crop",
          "ip_inside_mask", "sampler")  # what "Reuse parameters" takes from an output


class InsertResults:
    def __init__(self, state: InsertState) -> None:
        self.state = state
        self.images: dict[Path, QImage] = {}  # full-size outputs, decoded when first shown
        self.loader = FullImageLoader(state)

    def add_found(self, found: tuple[InsertedImage, ...]) -> None:
        """The project's outputs as read from disk, after those already shown."""
        known = {r.path for r in self.state.results}
        self.state.results = self.state.results + tuple(r for r in found if r.path not in known)

    def forget(self) -> None:
        """Another project: no decoded image is kept."""
        self.images.clear()

    def find(self, path: str | Path) -> InsertedImage | None:
        return next((r for r in self.state.results if r.path == Path(path)), None)

    def with_result_image(self, path: str | Path, then: Callable[[QImage], None]) -> bool:
        """Call ``then`` with the full-size output on the UI thread: at once when it was read before,
        else once a pool thread has decoded it (kept from then on). False when ``path`` is no result."""
        path = Path(path)
        if self.find(path) is None:
            return False
        if path in self.images:
            then(self.images[path])
            return True

        def loaded(image: QImage) -> None:
            if not image.isNull() and self.find(path) is not None:
                self.images[path] = image
            then(image)

        self.read_image(path, loaded)
        return True

    def read_image(self, path: str | Path, then: Callable[[QImage], None]) -> None:
        """Decode any image file off the UI thread; ``then(QImage)`` (null if unreadable) on it."""
        self.loader.load(path, then)

    def score_names(self) -> tuple[str, ...]:
        return tuple(sorted({name for r in self.state.results for name in r.scores}))

    def ordered(self) -> tuple[InsertedImage, ...]:
        """The results in the chosen order: newest first, or by a score (best first, unscored last)."""
        order = self.state.result_order
        if order == "newest":
            return self.state.results
        return tuple(sorted(self.state.results, key=lambda r: (order not in r.scores, -r.scores.get(order, 0.0))))

    def reuse_parameters(self, path: str | Path) -> None:
        """Put the settings an output was made with (read from its own PNG) back into the form."""
        self.state.routing.submit(parameters_job, Path(path), "read parameters", self._on_parameters)

    def _on_parameters(self, params: dict) -> None:
        for name in REUSED:  # an output made without reference guidance turns it off
            if name in params and (params[name] is not None or name in ("ip_adapter", "ip_photos")):
                self.state.settings.set(name, params[name])
        locate = params.get("locate") or {}
        for name in ("grow", "feather"):
            if name in locate:
                setattr(self.state.locate, name, type(getattr(self.state.locate, name))(locate[name]))
        lost = params.get("seed_out_of_range")
        if lost is not None:  # "random" stays random: the box never shows a seed it does not use
            self.state.settings.seed = None
        self.state.set_message("Parameters loaded from the image (seed, prompt, steps, strength…)." if lost is None
                               else f"Parameters loaded from the image (prompt, steps, strength…). Its seed {lost} "
                               f"is beyond 0–{api.SEED_MAX} (an older version's): the seed is left random.")
        self.state.parameters_reused.emit(params)

    def use_as_scene(self, path: str | Path) -> None:
        self.state.open_scene(Path(path))

    def delete(self, path: str | Path) -> None:
        """Move an output to the project's trash folder (``trash/outputs/``)."""
        if self.state.project is not None and self.find(path) is not None:
            self.state.routing.submit(trash_job, (Path(self.state.project.root), Path(path)), "delete result",
                                      self._on_trashed)

    def _on_trashed(self, moved: tuple[Path, Path]) -> None:
        path, target = moved
        self.state.results = tuple(r for r in self.state.results if r.path != path)
        self.images.pop(path, None)
        self.state.set_message(f"Moved {path.name} to {target.parent} (move it back to restore it).")


__all__ = ["REUSED", "InsertResults"]
