"""The job convention shared by the CLI, the GUI and tests.

Every long operation is an engine function ``run(request, progress, cancel) -> result``:

* ``request`` is a frozen dataclass deriving from :class:`JobRequest`; it holds only
  primitives, paths and nested requests, round-trips through JSON and has a ``validate()``
  that raises :class:`~alchemy_engine.errors.InvalidRequest` before any heavy work;
* ``progress`` is called with :class:`Progress` events;
* ``cancel`` is a :class:`CancelToken` that the job checks at least once per step.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import threading
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from alchemy_engine.errors import InvalidRequest, JobCancelled
from alchemy_engine.fields import check_fields


class Stage(str, enum.Enum):
    """What a running job is doing. A ``str`` enum: it compares equal to, and prints as, its value."""

    # training
    PREPARING = "preparing"
    MEMORY = "memory"
    LOADING = "loading"
    CLASS_IMAGES = "class images"
    CACHING = "caching"
    COMPILE = "compile"  # torch.compile of the UNet (training and insertion), before the first step
    RESUMING = "resuming"
    TRAINING = "training"
    CHECKPOINT = "checkpoint"  # carries run_id and path (the checkpoint folder)
    SAMPLE = "sample"  # carries preview and preview_path
    # insertion
    LOAD = "load"
    LOCATE = "locate"
    SEGMENT = "segment"
    SCENE = "scene"
    INSERT = "insert"
    OUTPUT = "output"
    # fidelity scores
    GENERATE = "generate"  # images made for scoring
    EVALUATE = "evaluate"  # carries preview (a strip of the scored images)
    # any job
    DOWNLOAD = "download"  # a model fetched on request: step/total in bytes, it_per_s in bytes/s
    NOTE = "note"  # something the user should know, e.g. a setting the engine changed
    WAITING = "waiting"  # queued behind another job (front-ends)
    WORK = "work"  # a job with no stages of its own

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


@dataclasses.dataclass(frozen=True)
class Progress:
    """One event from a running job. Only ``stage`` is always set; ``run_id`` and ``path`` name
    what a checkpoint or result event is about, so front-ends never parse ``message``."""

    stage: Stage
    step: int = 0
    total: int = 0
    message: str = ""
    loss: float | None = None
    loss_smoothed: float | None = None
    learning_rate: float | None = None
    it_per_s: float | None = None
    eta_s: float | None = None
    preview: Any = None  # a PIL.Image.Image, or None
    preview_path: Path | None = None
    run_id: str | None = None
    path: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", Stage(self.stage))  # a plain string is checked here

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (the preview image itself is left out)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "preview"}
        out["stage"] = self.stage.value
        out["preview_path"] = str(self.preview_path) if self.preview_path else None
        out["path"] = str(self.path) if self.path else None
        return {k: v for k, v in out.items() if v is not None and v != ""}


class ProgressCallback(Protocol):
    def __call__(self, event: Progress) -> None: ...


def no_progress(event: Progress) -> None:
    """A progress sink for callers that do not care."""


class CancelToken:
    """Set from any thread; the job checks it once per step and stops cleanly."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise JobCancelled("cancelled by the user")


R = TypeVar("R", bound="JobRequest")


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """Base of every request dataclass: JSON round trip and validation."""

    def validate(self) -> None:
        """Raise InvalidRequest with a message that says what to change.

        Here: every field against its declaration (type, choices, range: ``fields.check_fields``),
        then each nested request's own ``validate()``. A subclass calls ``super().validate()`` first
        and adds only the rules that tie fields together."""
        check_fields(self)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, JobRequest):
                value.validate()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _to_jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidRequest(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        return cls(**{name: _from_jsonable(hints[name], value) for name, value in data.items()})

    @classmethod
    def from_json(cls: type[R], text: str) -> R:
        return cls.from_dict(json.loads(text))


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, JobRequest):
        return value.to_dict()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    return value


def _from_jsonable(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _from_jsonable(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_from_jsonable(item, v) for v in value)
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        return [_from_jsonable(item, v) for v in value]
    if isinstance(hint, type):
        if issubclass(hint, JobRequest):
            return hint.from_dict(value)
        if issubclass(hint, (Path, enum.Enum)):
            return hint(value)
    return value


JobFunction = Callable[[Any, ProgressCallback, CancelToken], Any]
