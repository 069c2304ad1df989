"""The dependency rule: the engine never imports Qt; the GUI starts without torch."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import alchemy_engine
import alchemy_gui

ROOT = Path(__file__).resolve().parent.parent
ML_PACKAGES = ("torch", "diffusers", "peft", "transformers", "segment_anything", "accelerate")


def _modules(package) -> list[str]:
    return [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_every_engine_module_imports_without_qt():
    names = _modules(alchemy_engine)
    assert len(names) > 5
    out = _run(
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'PyQt5', 'PyQt6')))"
    )
    assert out == "[]"


def test_engine_source_never_mentions_qt_imports():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "alchemy_engine").rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.lstrip().startswith(("import PySide6", "from PySide6", "import shiboken6", "from PyQt"))
    ]
    assert offenders == []


def test_gui_source_never_imports_ml_packages():
    offenders = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in (ROOT / "alchemy_gui").rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if any(line.lstrip().startswith((f"import {p}", f"from {p}")) for p in ML_PACKAGES)
    ]
    assert offenders == []


def test_opening_the_window_does_not_import_torch():
    out = _run(
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from alchemy_gui.app import create_application\n"
        "from alchemy_gui.main_window import MainWindow\n"
        "app = create_application([])\n"
        "w = MainWindow(); w.show(); app.processEvents(); w.close()\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {ML_PACKAGES!r}))"
    )
    assert out == "[]"


def test_gui_modules_import(qapp):
    for name in _modules(alchemy_gui):
        __import__(name)


def test_import_contracts_hold():
    """pyproject.toml's import-linter contracts: engine Qt-free, GUI/CLI only through the surface,
    training and insertion independent, a layered engine, no cycles."""
    lint = shutil.which("lint-imports")
    assert lint, "import-linter is part of the test extras: pip install -e .[test]"
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_engine_and_gui_type_check():
    """mypy over alchemy_engine and alchemy_gui (settings in pyproject.toml) finds nothing. In a subprocess: mypy is
    compiled with mypyc and once crashed the test process it shared with Qt."""
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_test_modules_have_unique_names():
    """pytest imports test files by basename (no packages): two test_x.py files break a full run."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
