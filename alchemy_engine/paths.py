"""Where Image Alchemy keeps its data, and where bundled resources live.

`IMAGE_ALCHEMY_HOME` replaces the whole data root (tests and scripts use it);
otherwise the platform's per-user data and cache directories are used.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "ImageAlchemy"
HOME_ENV = "IMAGE_ALCHEMY_HOME"
CACHE_ENV = "IMAGE_ALCHEMY_CACHE"
DEMO_ENV = "IMAGE_ALCHEMY_DEMO"
CONFIG_ENV = "IMAGE_ALCHEMY_CONFIG"


def data_root() -> Path:
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_root() -> Path:
    """Derived data that is always safe to delete (demo models, SAM embeddings)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser().resolve()
    if os.environ.get(HOME_ENV):
        return data_root() / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def demo_mode() -> bool:
    """True when the app was started with ``--demo`` (or the demo models were chosen): the built-in
    demo models are chosen everywhere."""
    return os.environ.get(DEMO_ENV, "").strip().lower() not in ("", "0", "false", "no")


def set_demo_mode(on: bool) -> None:
    """The one writer of demo mode. It lives in the environment so that the processes a job starts
    (training workers, the CLI) inherit it."""
    if on:
        os.environ[DEMO_ENV] = "1"
    else:
        os.environ.pop(DEMO_ENV, None)


def logs_dir() -> Path:
    """Log files of the app (a console-less build writes what it would have printed here)."""
    return data_root() / "logs"


def projects_dir() -> Path:
    return data_root() / "projects"


def models_dir() -> Path:
    """Where users drop weights: models/sdxl, models/sam, models/detector."""
    return data_root() / "models"


def resources_dir() -> Path:
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def sdxl_config_dir() -> Path:
    """SDXL base 1.0 component configs and both CLIP tokenizers (no weights)."""
    return resources_dir() / "configs" / "sdxl-base-1.0"


def config_dir() -> Path:
    """The app's settings and the user's presets: ``<data root>/config`` under IMAGE_ALCHEMY_HOME
    (tests, portable installs), else the platform's per-user config folder."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override).expanduser().resolve()
    if os.environ.get(HOME_ENV):
        return data_root() / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
