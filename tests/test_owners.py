"""Concepts with one owner: nothing but their owner may write them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = [ROOT / "main.py", *sorted((ROOT / "alchemy_engine").rglob("*.py")), *sorted((ROOT / "alchemy_gui").rglob("*.py")),
           *sorted((ROOT / "bench").rglob("*.py")), *sorted((ROOT / "packaging").rglob("*.py"))]


def _lines_matching(pattern: str, files: list[Path], owner: Path) -> list[str]:
    found = []
    for path in files:
        if path == owner:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_only_paths_switches_demo_mode():
    """Demo mode is switched on through `paths.set_demo_mode` only: no other file names its variable."""
    owner = ROOT / "alchemy_engine" / "paths.py"
    assert "IMAGE_ALCHEMY_DEMO" in owner.read_text(encoding="utf-8")
    assert _lines_matching(r"IMAGE_ALCHEMY_DEMO|DEMO_ENV", PRODUCT, owner) == []


def test_only_app_names_the_demo_preference():
    """The saved preference is named once (`app.DEMO_MODELS_KEY`) and applied at start in one place."""
    owner = ROOT / "alchemy_gui" / "app.py"
    gui = sorted((ROOT / "alchemy_gui").rglob("*.py"))
    assert _lines_matching(r"[\"']demo_models[\"']", gui, owner) == []
    assert _lines_matching(r"apply_demo_preference\(", gui, owner) == []
