"""One table of shortcuts (alchemy_gui/shell/shortcuts.py): the help dialog lists exactly it, and
the window's actions and the Insert panel bind exactly its keys."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence

from alchemy_gui.shell.shortcuts import ANYWHERE, INSERT_CANVAS, SHORTCUTS


def _portable(sequence: QKeySequence) -> str:
    return sequence.toString(QKeySequence.SequenceFormat.PortableText)


def _table_keys(where: str) -> list[str]:
    return sorted(_portable(s) for entry in SHORTCUTS if entry.where == where for s in entry.sequences())


def test_help_lists_the_table_and_the_bindings_are_the_table(open_window):
    window = open_window()
    window.menu_actions.shortcuts.trigger()
    table = window.dialog.table
    rows = [tuple(table.item(row, column).text() for column in range(3)) for row in range(table.rowCount())]
    assert rows == [(s.where, s.text, s.what) for s in SHORTCUTS]
    window.dialog.close()

    bound = sorted(_portable(s) for action in window.findChildren(QAction) for s in action.shortcuts())
    assert bound == _table_keys(ANYWHERE)
    panel_keys = sorted(_portable(s.key()) for s in window.insert_panel.shortcuts)
    assert panel_keys == _table_keys(INSERT_CANVAS)
    assert len(set(_table_keys(ANYWHERE) + _table_keys(INSERT_CANVAS))) == len(panel_keys) + len(bound)
    window.close()
