"""LoRA files added from elsewhere in the Insert area (Browse…, a model folder, a checkpoint the
Train area exported to try), owned by :class:`~alchemy_gui.insert.state.InsertState`, which holds
the list as its observable ``lora_files`` property. Each file is offered after the project's runs,
remembered per project with the scale it was last used at as the style LoRA; a file gone since is
offered as missing, to put back or remove.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alchemy_engine import api
from alchemy_gui.insert.jobs import Choice
from alchemy_gui.insert.result_jobs import check_lora_job

if TYPE_CHECKING:
    from alchemy_gui.insert.state import InsertState

log = logging.getLogger(__name__)


class LoraFiles:
    def __init__(self, state: InsertState) -> None:
        self.state = state
        self.scales: dict[str, float] = {}  # added file → the style scale it was last used at
        # Each added file keeps its own style scale: choosing it as the style LoRA brings it back.
        state.settings.style_lora_changed.connect(self._use_style_scale)
        state.settings.style_lora_scale_changed.connect(self._keep_style_scale)

    def add(self, path: str | Path, style: bool = False) -> None:
        """Check a LoRA file's header (a job), then offer it and select it (as the subject LoRA,
        or as the style LoRA); a file that is no SDXL LoRA is refused with the engine's message."""
        self.state.set_message(f"Checking {Path(path).name}…")
        self.state.routing.submit(check_lora_job, Path(path), "check LoRA",
                     functools.partial(self._on_checked, style=style))

    def _on_checked(self, info: api.LoraInfo, style: bool) -> None:
        path = str(Path(info.path).resolve())
        self.offer(path, f"{Path(path).name} (file)", f"{path}\n{info.description()}", style)
        self.state.set_message(f"{Path(path).name}: {info.description()}.")

    def offer(self, path: str | Path, label: str, tooltip: str, style: bool = False) -> None:
        """List a checked LoRA file after the project's runs and select it (subject or style)."""
        path = str(Path(path).resolve())
        if path not in {c.value for c in self.state.lora_files}:
            settings = self.state.settings
            scale = settings.style_lora_scale if style else settings.initial["style_lora_scale"]
            self.scales.setdefault(path, scale)
            self._set_files(self.state.lora_files + (Choice(label, path, tooltip),))
        if style:
            self.state.settings.style_lora = path
        else:
            self.state.settings.run = path

    def offer_checkpoint(self, tried) -> None:
        """A training checkpoint exported to try (Train → Try this checkpoint): offered in its own
        project's LoRA list, marked with its step."""
        if self.state.project is None or Path(tried.project_root) != Path(self.state.project.root):
            return
        self.offer(tried.lora, checkpoint_label(tried.run_id, tried.step),
                             f"{tried.lora}\nthe LoRA of step {tried.step}, exported while the run trains")
        self.state.set_message(f"Step {tried.step} of {tried.run_id} is the LoRA now: Insert to try it.")

    def _set_files(self, files: tuple[Choice, ...]) -> None:
        """Offer ``files`` after the project's runs, in place of the files offered until now."""
        old = {c.value for c in self.state.lora_files}
        self.state.lora_files = files
        if self.state.choices is not None:
            runs = tuple(c for c in self.state.choices.runs if c.value not in old) + files
            self.state.choices = dataclasses.replace(self.state.choices, runs=runs)

    def _use_style_scale(self, path: str | None) -> None:
        if path in self.scales:
            self.state.settings.style_lora_scale = self.scales[path]

    def _keep_style_scale(self, scale: float) -> None:
        if self.state.settings.style_lora in {c.value for c in self.state.lora_files}:
            self.scales[self.state.settings.style_lora] = scale

    def entries(self) -> list[dict[str, Any]]:
        """The added files as saved with the project's Insert settings."""
        default = self.state.settings.initial["style_lora_scale"]
        return [{"path": c.value, "scale": self.scales.get(c.value, default)} for c in self.state.lora_files]

    def restore(self, entries: Any) -> None:
        """The files saved by :meth:`entries` (None: none). A file that is gone is listed
        as missing; the style LoRA of settings saved before files were remembered joins the list."""
        info = api.field_info(api.InsertRequest, "style_lora_scale")
        files: list[Choice] = []
        scales: dict[str, float] = {}
        for entry in entries if isinstance(entries, list) else []:
            path, scale = (entry.get("path"), entry.get("scale")) if isinstance(entry, dict) else (None, None)
            if not isinstance(path, str) or not path or path in scales:
                log.warning("ignored a LoRA file entry in the project's Insert settings: %r", entry)
                continue
            scales[path] = float(scale) if scale is not None and not api.value_problem(info, scale) else info.default
            files.append(_file_choice(path))
        style = self.state.settings.style_lora
        if style and style not in scales:
            scales[style] = self.state.settings.style_lora_scale
            files.append(_file_choice(style))
        self.scales = scales
        self._set_files(tuple(files))

    def missing(self) -> list[str]:
        return [Path(c.value).name for c in self.state.lora_files if not Path(c.value).is_file()]

    def remove(self, path: str | None) -> None:
        """Take an added file off the lists (the file itself is not touched)."""
        if path is None or path not in {c.value for c in self.state.lora_files}:
            return
        self.scales.pop(path, None)
        if self.state.settings.style_lora == path:
            self.state.settings.style_lora = None
        self._set_files(tuple(c for c in self.state.lora_files if c.value != path))
        if self.state.settings.run == path:
            runs = self.state.choices.runs if self.state.choices is not None else ()
            self.state.settings.run = runs[0].value if runs else None
        self.state.set_message(f"{Path(path).name} is off the list (the file itself is untouched).")


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


__all__ = ["LoraFiles", "checkpoint_label"]
