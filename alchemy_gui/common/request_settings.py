"""A view-model of some fields of a request dataclass: one observable :class:`Property` per field.

Each field starts at the request's own default (``api.defaults``) and is remembered per workspace
as its field says (``remember``), so no default or persistence rule is typed in the GUI; widgets bind to it with :func:`~alchemy_gui.common.binding.bind` like to any view-model::

    TrainSettings = settings_class(TrainRequest, exclude=("project", "resume_run"))
    settings = TrainSettings()
    bind(settings, "steps", spin_box)
    TrainRequest(project=slug, **settings.values())
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from PySide6.QtCore import QObject, Signal

from alchemy_engine import api
from alchemy_gui.common.binding import Property


class RequestSettings(QObject):
    """Base of the classes made by :func:`settings_class`; ``changed(name)`` follows every field."""

    changed = Signal(str)
    request_class: ClassVar[type]
    initial: ClassVar[dict[str, Any]]
    if TYPE_CHECKING:  # the fields are Properties made at run time by settings_class: Any to mypy
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        for name in self.initial:
            getattr(self, f"{name}_changed").connect(lambda _value, n=name: self.changed.emit(n))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(cls.initial)

    @classmethod
    def info(cls, name: str) -> api.FieldInfo:
        """The field's label, help, range and choices, from the request class."""
        return api.field_info(cls.request_class, name)

    def __getitem__(self, name: str) -> Any:
        if name not in self.initial:
            raise KeyError(f"{self.request_class.__name__} has no setting {name!r} here")
        return getattr(self, name)

    def set(self, name: str, value: Any) -> None:
        self[name]  # noqa: B018 - raises KeyError for a name that is not a setting
        setattr(self, name, value)

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.initial}

    def reset(self, keep: Iterable[str] = ()) -> None:
        """Back to the initial values, except the fields named in ``keep``."""
        for name, value in self.initial.items():
            if name not in keep:
                setattr(self, name, value)


def settings_class(request: type, names: Iterable[str] | None = None, *, exclude: Iterable[str] = (),
                   initial: Mapping[str, Any] | None = None) -> type[RequestSettings]:
    """A :class:`RequestSettings` subclass for the fields ``names`` (default: all, less ``exclude``)
    of the dataclass ``request``, each starting at ``initial[name]`` or else the field's default."""
    defaults = api.defaults(request)
    chosen = [n for n in (names if names is not None else defaults) if n not in set(exclude)]
    missing = [n for n in chosen if n not in defaults]
    if missing:
        raise KeyError(f"{request.__name__} has no default for {', '.join(missing)}")
    start = {n: (initial or {}).get(n, defaults[n]) for n in chosen}
    namespace: dict[str, Any] = {"request_class": request, "initial": start}
    for name, value in start.items():
        namespace[name] = Property(value, persist=api.field_info(request, name).remember)
        namespace[f"{name}_changed"] = Signal(object)
    return type(f"{request.__name__}Settings", (RequestSettings,), namespace)


__all__ = ["RequestSettings", "settings_class"]
