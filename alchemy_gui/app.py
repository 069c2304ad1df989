"""Start the desktop app. Imports no ML package itself: torch loads on a background thread once
the window is shown (``common/warm_up.py``), or inside the first job, whichever comes first."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from alchemy_engine import api

WARM_UP_DELAY_MS = 300
DEMO_MODELS_KEY = "demo_models"  # the app setting behind Preferences → "Use the demo models"


def create_application(argv: list[str] | None = None):
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("Image Alchemy")
    app.setOrganizationName("ImageAlchemy")
    apply_style(app)
    return app


def apply_style(app) -> None:
    """The app icon and stylesheet from resources/, and the wheel guard (tests call this on pytest-qt's app)."""
    from PySide6.QtGui import QIcon

    from alchemy_gui.common.wheel_guard import install_wheel_guard

    install_wheel_guard(app)
    icon = api.resources_dir() / "icons" / "app.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    style = api.resources_dir() / "style.qss"
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))


def apply_startup_preferences() -> None:
    """Preferences that only take effect at start: the data folder and the demo models. The
    settings file stays where it was read from, whatever the data folder becomes."""
    settings = api.load_app_settings()
    os.environ.setdefault("IMAGE_ALCHEMY_CONFIG", str(api.config_dir()))
    folder = settings.get("data_folder")
    if folder and not os.environ.get("IMAGE_ALCHEMY_HOME"):
        os.environ["IMAGE_ALCHEMY_HOME"] = str(folder)
    apply_demo_preference(settings)


def apply_demo_preference(settings: dict[str, Any]) -> None:
    """The one place the saved "demo models" preference turns demo mode on, at start (``--demo``
    and the welcome dialog turn it on too, through the same :func:`api.set_demo_mode`)."""
    if settings.get(DEMO_MODELS_KEY):
        api.set_demo_mode(True)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    apply_startup_preferences()
    app = create_application(argv)
    from PySide6.QtCore import QTimer

    from alchemy_gui.common.warm_up import start_warm_up
    from alchemy_gui.main_window import MainWindow

    window = MainWindow()
    window.show()
    QTimer.singleShot(WARM_UP_DELAY_MS, start_warm_up)  # the first paint goes first
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
