"""The window fits a 1366×768 laptop screen: its minimum size leaves room for a taskbar and a
title bar, with a project open on every tab (what does not fit scrolls)."""

from __future__ import annotations

from alchemy_engine import api

from .conftest import open_project

LAPTOP = (1366, 768)
DESKTOP_CHROME = (16, 40 + 32)  # window frame; taskbar and title bar


def test_the_window_fits_a_1366_by_768_screen(qtbot, open_window, photos):
    api.create_project("Rex", class_noun="dog", images=photos)
    window = open_window()
    open_project(qtbot, window, "Rex")
    limit = (LAPTOP[0] - DESKTOP_CHROME[0], LAPTOP[1] - DESKTOP_CHROME[1])
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        qtbot.wait(10)
        needed = window.minimumSizeHint().expandedTo(window.minimumSize())
        assert needed.width() <= limit[0] and needed.height() <= limit[1], (window.tabs.tabText(index), needed)
        window.resize(*limit)  # what a window manager does to a window taller than the screen
        qtbot.wait(10)
        assert window.width() <= limit[0] and window.height() <= limit[1]


def test_the_first_size_leaves_room_for_the_title_bar_on_a_short_screen(monkeypatch, qtbot):
    from types import SimpleNamespace

    from PySide6.QtCore import QRect

    from alchemy_gui import main_window

    laptop = SimpleNamespace(availableGeometry=lambda: QRect(0, 0, 1366, 728))  # 768 less a 40-px taskbar
    monkeypatch.setattr(main_window.QGuiApplication, "primaryScreen", staticmethod(lambda: laptop))
    assert main_window._first_size() == (1200, 728 - main_window.TITLE_BAR)
    big = SimpleNamespace(availableGeometry=lambda: QRect(0, 0, 2560, 1400))
    monkeypatch.setattr(main_window.QGuiApplication, "primaryScreen", staticmethod(lambda: big))
    assert main_window._first_size() == (1200, 780)
