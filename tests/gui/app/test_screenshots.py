"""``python -m alchemy_gui.screenshots`` renders every view on demo data without an error."""

from __future__ import annotations

from PySide6.QtGui import QImage

from alchemy_gui import screenshots


def test_screenshots_render_every_view(qtbot, tmp_path, monkeypatch):
    """Its fake insert results once had an argument too many (the results strip raised TypeError;
    pytest-qt fails the test on an exception in a slot)."""
    monkeypatch.setenv("IMAGE_ALCHEMY_DEMO", "1")  # render() would set it for the rest of the session
    shots = screenshots.render(tmp_path / "shots")
    assert [p.name for p in shots] == ["projects.png", "train.png", "insert.png", "preferences.png",
                                       "shortcuts.png"]
    assert all(not QImage(str(p)).isNull() for p in shots)
