from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCREENSHOTS = Path(os.environ.get("ALCHEMY_SCREENSHOTS", Path(__file__).parent.parent / "_screenshots"))


@pytest.fixture
def photos(tmp_path) -> list[Path]:
    rng = np.random.default_rng(0)
    files = []
    for i in range(3):
        pixels = rng.integers(0, 255, size=(320 + 16 * i, 384, 3), dtype=np.uint8)
        path = tmp_path / f"photo_{i}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        files.append(path)
    return files


@pytest.fixture
def screenshot():
    """Save a widget's picture for a human to look at (tests/_screenshots/, ignored by git)."""

    def grab(widget, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        assert widget.grab().save(str(path))
        return path

    return grab


@pytest.fixture(autouse=True)
def styled_app(qapp):
    """Tests see the app as users do: our stylesheet and icon on pytest-qt's QApplication."""
    from alchemy_gui.app import apply_style

    apply_style(qapp)
    return qapp
