"""The Insert area's history and LoRA-file actions, part of
:class:`~alchemy_gui.insert.state.InsertState` (which declares the signals and properties they use):
the project's outputs (newest first or by score), reusing an output's parameters, using it as the
scene, deleting it to the project's trash, and LoRA files added from elsewhere (remembered per
project with the scale each was last used at as the style LoRA; a file gone since is offered as
missing, to put back or remove).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtGui import QImage

from alchemy_engine import api
from alchemy_gui.common.thumbnails import FullImageLoader
from alchemy_gui.insert.history_jobs import InsertedImage, check_lora_job, parameters_job, trash_job
from alchemy_gui.insert.jobs import Choice

log = logging.getLogger(__name__)
REUSED = ("prompt", "negative_prompt", "strength", "steps", "guidance", "lora_scale", "style_lora_scale", "seed",
          "variations", "work_pixels", "ip_adapter", "ip_scale", "ip_range", "ip_mode", "ip_photos", "ip_crop",
          "ip_inside_mask", "sampler")  # what "Reuse parameters" takes from an output


class HistoryActions:
    """Mixed into InsertState (a QObject); ``self`` is that state."""

    results: Any
    result_order: Any
    lora_files: Any
    lora_scales: dict[str, float]  # added file → the style scale it was last used at
    _images: dict[Path, QImage]
    _full_images: FullImageLoader  # made on first use (read_image)

    # --- history ------------------------------------------------------------------------------------
    def _on_history(self, found: tuple[InsertedImage, ...]) -> None:
        known = {r.path for r in self.results}
        self.results = self.results + tuple(r for r in found if r.path not in known)

    def result(self, path: str | Path) -> InsertedImage | None:
        return next((r for r in self.results if r.path == Path(path)), None)

    def with_result_image(self, path: str | Path, then: Callable[[QImage], None]) -> bool:
        """Call ``then`` with the full-size output on the UI thread: at once when it was read before,
        else once a pool thread has decoded it (kept from then on). False when ``path`` is no result."""
        path = Path(path)
        if self.result(path) is None:
            return False
        if path in self._images:
            then(self._images[path])
            return True

        def loaded(image: QImage) -> None:
            if not image.isNull() and self.result(path) is not None:
                self._images[path] = image
            then(image)

        self.read_image(path, loaded)
        return True

    def read_image(self, path: str | Path, then: Callable[[QImage], None]) -> None:
        """Decode any image file off the UI thread; ``then(QImage)`` (null if unreadable) on it."""
        loader = getattr(self, "_full_images", None)
        if loader is None:
            loader = self._full_images = FullImageLoader(self)
        loader.load(path, then)

    def score_names(self) -> tuple[str, ...]:
        return tuple(sorted({name for r in self.results for name in r.scores}))

    def ordered_results(self) -> tuple[InsertedImage, ...]:
        """The results in the chosen order: newest first, or by a score (best first, unscored last)."""
        order = self.result_order
        if order == "newest":
            return self.results
        return tuple(sorted(self.results, key=lambda r: (order not in r.scores, -r.scores.get(order, 0.0))))

    def reuse_parameters(self, path: str | Path) -> None:
        """Put the settings an output was made with (read from its own PNG) back into the form."""
        self._submit(parameters_job, Path(path), "read parameters", self._on_parameters)

    def _on_parameters(self, params: dict) -> None:
        for name in REUSED:  # an output made without reference guidance turns it off
            if name in params and (params[name] is not None or name in ("ip_adapter", "ip_photos")):
                self.settings.set(name, params[name])
        locate = params.get("locate") or {}
        for name in ("grow", "feather"):
            if name in locate:
                setattr(self.locate, name, type(getattr(self.locate, name))(locate[name]))
        lost = params.get("seed_out_of_range")
        if lost is not None:  # "random" stays random: the box never shows a seed it does not use
            self.settings.seed = None
        self.set_message("Parameters loaded from the image (seed, prompt, steps, strength…)." if lost is None else
                         f"Parameters loaded from the image (prompt, steps, strength…). Its seed {lost} is "
                         f"beyond 0–{api.SEED_MAX} (an older version's): the seed is left random.")
        self.parameters_reused.emit(params)

    def use_as_scene(self, path: str | Path) -> None:
        self.open_scene(Path(path))

    def delete_result(self, path: str | Path) -> None:
        """Move an output to the project's trash folder (``trash/outputs/``)."""
        if self.project is not None and self.result(path) is not None:
            self._submit(trash_job, (Path(self.project.root), Path(path)), "delete result", self._on_trashed)

    def _on_trashed(self, moved: tuple[Path, Path]) -> None:
        path, target = moved
        self.results = tuple(r for r in self.results if r.path != path)
        self._images.pop(path, None)
        self.set_message(f"Moved {path.name} to {target.parent} (move it back to restore it).")

    # --- LoRA files from elsewhere ------------------------------------------------------------------
    def add_lora_file(self, path: str | Path, style: bool = False) -> None:
        """Check a LoRA file's header (a job), then offer it and select it (as the subject LoRA,
        or as the style LoRA); a file that is no SDXL LoRA is refused with the engine's message."""
        self.set_message(f"Checking {Path(path).name}…")
        self._submit(check_lora_job, Path(path), "check LoRA",
                     functools.partial(self._on_lora_checked, style=style))

    def _on_lora_checked(self, info: api.LoraInfo, style: bool) -> None:
        path = str(Path(info.path).resolve())
        self.offer_lora_file(path, f"{Path(path).name} (file)", f"{path}\n{info.description()}", style)
        self.set_message(f"{Path(path).name}: {info.description()}.")

    def offer_lora_file(self, path: str | Path, label: str, tooltip: str, style: bool = False) -> None:
        """List a checked LoRA file after the project's runs and select it (subject or style)."""
        path = str(Path(path).resolve())
        if path not in {c.value for c in self.lora_files}:
            scale = self.settings.style_lora_scale if style else self.settings.initial["style_lora_scale"]
            self.lora_scales.setdefault(path, scale)
            self._set_lora_files(self.lora_files + (Choice(label, path, tooltip),))
        if style:
            self.settings.style_lora = path
        else:
            self.settings.run = path

    def offer_checkpoint(self, tried) -> None:
        """A training checkpoint exported to try (Train → Try this checkpoint): offered in its own
        project's LoRA list, marked with its step."""
        if self.project is None or Path(tried.project_root) != Path(self.project.root):
            return
        self.offer_lora_file(tried.lora, checkpoint_label(tried.run_id, tried.step),
                             f"{tried.lora}\nthe LoRA of step {tried.step}, exported while the run trains")
        self.set_message(f"Step {tried.step} of {tried.run_id} is the LoRA now: Insert to try it.")

    def _set_lora_files(self, files: tuple[Choice, ...]) -> None:
        """Offer ``files`` after the project's runs, in place of the files offered until now."""
        old = {c.value for c in self.lora_files}
        self.lora_files = files
        if self.choices is not None:
            runs = tuple(c for c in self.choices.runs if c.value not in old) + files
            self.choices = dataclasses.replace(self.choices, runs=runs)

    def _follow_lora_files(self) -> None:
        """Each added file keeps its own style scale: choosing it as the style LoRA brings it back."""
        self.lora_scales = {}
        self.settings.style_lora_changed.connect(self._use_style_scale)
        self.settings.style_lora_scale_changed.connect(self._keep_style_scale)

    def _use_style_scale(self, path: str | None) -> None:
        if path in self.lora_scales:
            self.settings.style_lora_scale = self.lora_scales[path]

    def _keep_style_scale(self, scale: float) -> None:
        if self.settings.style_lora in {c.value for c in self.lora_files}:
            self.lora_scales[self.settings.style_lora] = scale

    def lora_file_entries(self) -> list[dict[str, Any]]:
        """The added files as saved with the project's Insert settings."""
        default = self.settings.initial["style_lora_scale"]
        return [{"path": c.value, "scale": self.lora_scales.get(c.value, default)} for c in self.lora_files]

    def restore_lora_files(self, entries: Any) -> None:
        """The files saved by :meth:`lora_file_entries` (None: none). A file that is gone is listed
        as missing; the style LoRA of settings saved before files were remembered joins the list."""
        info = api.field_info(api.InsertRequest, "style_lora_scale")
        files: list[Choice] = []
        scales: dict[str, float] = {}
        for entry in entries if isinstance(entries, list) else []:
            path, scale = (entry.get("path"), entry.get("scale")) if isinstance(entry, dict) else (None, None)
            if not isinstance(path, str) or not path or path in scales:
                log.warning("ignored a LoRA file entry in the project's Insert settings: %r", entry)
                continue
            ok = isinstance(scale, (int, float)) and not isinstance(scale, bool) and info.minimum <= scale <= info.maximum
            scales[path] = float(scale) if ok else info.default
            files.append(_file_choice(path))
        style = self.settings.style_lora
        if style and style not in scales:
            scales[style] = self.settings.style_lora_scale
            files.append(_file_choice(style))
        self.lora_scales = scales
        self._set_lora_files(tuple(files))

    def missing_lora_files(self) -> list[str]:
        return [Path(c.value).name for c in self.lora_files if not Path(c.value).is_file()]

    def remove_lora_file(self, path: str | None) -> None:
        """Take an added file off the lists (the file itself is not touched)."""
        if path is None or path not in {c.value for c in self.lora_files}:
            return
        self.lora_scales.pop(path, None)
        if self.settings.style_lora == path:
            self.settings.style_lora = None
        self._set_lora_files(tuple(c for c in self.lora_files if c.value != path))
        if self.settings.run == path:
            runs = self.choices.runs if self.choices is not None else ()
            self.settings.run = runs[0].value if runs else None
        self.set_message(f"{Path(path).name} is off the list (the file itself is untouched).")


def checkpoint_label(run_id: str, step: int) -> str:
    return f"{run_id} · step {step} (checkpoint)"


def _exported_checkpoint(path: Path) -> tuple[str, int] | None:
    """(run id, step) of a LoRA that Try this checkpoint exported (``runs/<id>/exports/step-N/``)."""
    step, exports = path.parent.name, path.parent.parent
    if exports.name == "exports" and step.startswith("step-") and step[5:].isdigit():
        return exports.parent.name, int(step[5:])
    return None


def _file_choice(path: str) -> Choice:
    if Path(path).is_file():
        exported = _exported_checkpoint(Path(path))
        if exported is not None:  # still marked with its step when the project is opened again
            return Choice(checkpoint_label(*exported), path, f"{path}\nthe LoRA of step {exported[1]}")
        return Choice(f"{Path(path).name} (file)", path, path)
    return Choice(f"{Path(path).name} (missing)", path,
                  f"{path}\nThis file is missing: put it back, or choose it and press Remove.")


__all__ = ["HistoryActions", "REUSED"]
