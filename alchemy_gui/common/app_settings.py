"""What the app remembers: its own settings file and each project's workspace settings.

- :class:`AppSettings`: the JSON object in ``api.config_dir()/settings.json`` (window layout, last
  project and tab, recent scenes, preferences). ``set`` keeps the value and saves shortly after
  (atomically, by the engine); :meth:`flush` saves now (on quit).
- :func:`load_workspace_settings` / :func:`save_workspace_settings`: a project's Train or Insert
  settings, in the project folder (``workspace/<name>.json``).
- :class:`WorkspaceSettingsKeeper`: ties a view-model's ``settings`` objects to those files: when
  its ``project`` changes the previous project's settings are saved and the new one's restored;
  every change is saved shortly after.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QObject, QTimer, SignalInstance

from alchemy_engine import api
from alchemy_engine.errors import AlchemyError
from alchemy_gui.common.binding import observable_properties

if TYPE_CHECKING:
    from alchemy_gui.insert.state import InsertState
    from alchemy_gui.train.state import TrainState

log = logging.getLogger(__name__)
SAVE_DELAY_MS = 400
RECENT_SCENES = 10
# A value remembered beside a workspace's settings: (its change signal, read it, restore it); the
# restorer receives None for a project that has none saved.
Extra = tuple[SignalInstance, Callable[[], Any], Callable[[Any], None]]


def _plain(value: Any) -> Any:
    """A JSON value: paths become strings, tuples lists."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load_workspace_settings(project: Any, workspace: str) -> dict[str, Any]:
    """The settings saved for ``workspace`` ("train", "insert") of ``project``; {} when none."""
    return api.load_workspace_settings(project, workspace) if project is not None else {}


def save_workspace_settings(project: Any, workspace: str, values: Mapping[str, Any]) -> None:
    """Save ``values`` for ``workspace`` of ``project`` (atomically, in the project folder)."""
    if project is not None:
        api.save_workspace_settings(project, workspace, {k: _plain(v) for k, v in values.items()})


class AppSettings(QObject):
    """The app's settings file as a dict with debounced, atomic saves."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.values: dict[str, Any] = api.load_app_settings()
        self._timer = QTimer(self, singleShot=True, interval=SAVE_DELAY_MS)
        self._timer.timeout.connect(self.flush)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        value = _plain(value)
        if self.values.get(key) != value:
            self.values[key] = value
            self._timer.start()

    def flush(self) -> None:
        self._timer.stop()
        try:
            api.save_app_settings(self.values)
        except AlchemyError as exc:  # a read-only config folder must not stop the app
            log.warning("settings not saved: %s", exc)

    def add_recent_scene(self, path: str | Path) -> list[str]:
        path = str(path)
        recent = [path] + [p for p in self.get("recent_scenes", []) if p != path]
        self.set("recent_scenes", recent[:RECENT_SCENES])
        return self.get("recent_scenes")


class SettingsGroup(Protocol):
    """What the keeper needs of a group: a ``RequestSettings``, or the Insert brush settings."""

    @property
    def initial(self) -> Mapping[str, Any]: ...

    @property
    def changed(self) -> Any: ...  # Signal(str): the name of the setting that changed

    def values(self) -> dict[str, Any]: ...

    def set(self, name: str, value: Any) -> None: ...


class WorkspaceSettingsKeeper(QObject):
    """Remembers ``groups`` (name → RequestSettings or another SettingsGroup) of ``state`` per
    project, as ``workspace``.

    ``state`` needs a ``project`` attribute and a ``project_changed`` signal. A group's value whose
    :class:`~alchemy_gui.common.binding.Property` says ``persist=False`` is never remembered (for
    request settings: the field's ``remember``, e.g. the device, the insertion prompt). Values read
    back are type-checked against the field's default so a hand-edited file cannot break a form.
    ``extras`` (key → :data:`Extra`) are remembered too, restored after the groups (the chosen
    preset, the LoRA files added from elsewhere); their restorers check what they read back.
    """

    def __init__(self, state: TrainState | InsertState, workspace: str, groups: Mapping[str, SettingsGroup],
                 extras: Mapping[str, Extra] | None = None) -> None:
        super().__init__(state)
        self.state, self.workspace, self.groups = state, workspace, dict(groups)
        self.extras = dict(extras or {})
        self.project = None
        self._restoring = False
        self._timer = QTimer(self, singleShot=True, interval=SAVE_DELAY_MS)
        self._timer.timeout.connect(self.save)
        for settings in self.groups.values():
            settings.changed.connect(self._on_changed)
        for signal, _read, _restore in self.extras.values():
            signal.connect(self._on_changed)
        state.project_changed.connect(self._on_project)
        self._on_project(getattr(state, "project", None))

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {group: {k: v for k, v in settings.values().items() if _persists(settings, k)}
                                  for group, settings in self.groups.items()}
        values.update({key: read() for key, (_signal, read, _restore) in self.extras.items()})
        return values

    def save(self) -> None:
        self._timer.stop()
        if self.project is None:
            return
        try:
            save_workspace_settings(self.project, self.workspace, self.values())
        except (AlchemyError, TypeError) as exc:  # a deleted project, a full disk: settings are a convenience
            log.warning("%s settings of %s not saved: %s", self.workspace, self.project, exc)

    def restore(self) -> None:
        stored = load_workspace_settings(self.project, self.workspace)
        self._restoring = True
        try:
            for group, settings in self.groups.items():
                saved = stored.get(group, {})
                for name, initial in settings.initial.items():
                    if not _persists(settings, name) or name not in saved:
                        continue
                    value = saved[name]
                    problem = api.value_problem(settings.info(name), value) if hasattr(settings, "info") else ""
                    if problem:  # an older version's value, or a hand-edited file
                        log.warning("%s: saved %s %s; kept the default", self.workspace, name, problem)
                        continue
                    if initial is None or value is None or isinstance(value, type(initial)) or (
                            isinstance(initial, float) and isinstance(value, int)):
                        settings.set(name, float(value) if isinstance(initial, float) and value is not None else value)
            for key, (_signal, _read, restore_extra) in self.extras.items():
                restore_extra(stored.get(key))
        finally:
            self._restoring = False

    def _on_changed(self, *_: object) -> None:
        if not self._restoring and self.project is not None:
            self._timer.start()

    def _on_project(self, project) -> None:
        if project is self.project:
            return
        if self._timer.isActive():
            self.save()
        same = (project is not None and self.project is not None
                and Path(project.root) == Path(self.project.root))
        self.project = project
        if project is not None and not same:
            self.restore()


__all__ = ["AppSettings", "WorkspaceSettingsKeeper", "load_workspace_settings", "save_workspace_settings"]


def _persists(group: object, name: str) -> bool:
    """Whether ``group`` remembers ``name``: its Property's ``persist`` (True for a plain value)."""
    prop = observable_properties(type(group)).get(name)
    return prop.persist if prop is not None else True
