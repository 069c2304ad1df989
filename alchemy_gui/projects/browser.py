"""The list of projects, with New / Delete. The selection is always the open project
(``ProjectsState.current``): clicking a row opens it; Delete asks the window to delete the open one."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from alchemy_gui.common.binding import bind_to
from alchemy_gui.projects.state import ProjectsState
from alchemy_gui.shell.shortcuts import key


class ProjectBrowser(QWidget):
    new_requested = Signal()
    delete_requested = Signal()  # the window asks, stops a running job, then deletes the open project

    def __init__(self, state: ProjectsState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        title = QLabel("Projects")
        title.setObjectName("heading")
        self.list = QListWidget()
        self.list.setObjectName("projectList")
        self.empty_hint = QLabel("No projects yet.\nClick “New project” and add 3–5 photos.")
        self.empty_hint.setObjectName("hint")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.new_button = QPushButton("New project…")
        self.new_button.setObjectName("primary")
        self.new_button.setToolTip(f"Create a project from 3–5 photos of a subject ({key('new_project')})")
        self.list.setToolTip("Your projects; click one to open it")
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Move the open project to the trash (File → Restore from trash… brings it back)")
        self.delete_button.setEnabled(False)

        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty_hint)
        layout.addLayout(buttons)

        self.new_button.clicked.connect(self.new_requested)
        self.delete_button.clicked.connect(self.delete_requested)
        self.list.currentItemChanged.connect(self._on_selection)
        self.bindings = [bind_to(state, "projects", self._show_projects),
                         bind_to(state, "current", self._select_current)]

    def selected_slug(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _show_projects(self, summaries: list) -> None:
        keep = self.state.current.slug if self.state.current else None
        self.list.blockSignals(True)
        self.list.clear()
        for summary in summaries:
            item = QListWidgetItem(_describe(summary))
            if summary.error:
                item.setToolTip(summary.error)
            item.setData(Qt.ItemDataRole.UserRole, summary.slug)
            self.list.addItem(item)
            if summary.slug == keep:
                self.list.setCurrentItem(item)
        if keep is None:
            self.list.setCurrentRow(-1)
        self.list.blockSignals(False)
        self.empty_hint.setVisible(not summaries)
        self.delete_button.setEnabled(self.state.current is not None)

    def _select_current(self, project) -> None:
        self.select_slug(project.slug if project is not None else None)
        self.delete_button.setEnabled(project is not None)

    def select_slug(self, slug: str | None) -> None:
        """Highlight ``slug``'s row without opening it (it is being opened): a list with no current
        row would make the first one current, and open it, when it gets the keyboard focus."""
        rows = [r for r in range(self.list.count()) if self.list.item(r).data(Qt.ItemDataRole.UserRole) == slug]
        self.list.blockSignals(True)
        self.list.setCurrentRow(rows[0] if rows else -1)  # not listed yet: _show_projects selects it
        self.list.blockSignals(False)

    def _on_selection(self, current: QListWidgetItem | None, previous) -> None:
        if current is not None:
            self.state.open(current.data(Qt.ItemDataRole.UserRole))


def _describe(summary) -> str:
    if summary.error:
        return f"{summary.name or summary.slug}\n⚠ cannot be opened (hover for why)"
    photos = f"{summary.photo_count} photo" + ("" if summary.photo_count == 1 else "s")
    return f"{summary.name}\n{summary.token} {summary.class_noun} · {photos}"
