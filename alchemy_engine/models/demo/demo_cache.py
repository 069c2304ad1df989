"""Where demo models are cached, and building one exactly once (crash- and race-safe)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from alchemy_engine import paths

DEMO_FORMAT_VERSION = 3


def demo_cache_dir() -> Path:
    return paths.cache_root() / "demo_models" / f"v{DEMO_FORMAT_VERSION}"


def build_once(target: Path, write) -> Path:
    """Build into a temporary sibling and rename, so a crash never leaves half a model."""
    if target.exists():
        return target
    from alchemy_engine.models.resident import building_models

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with building_models():
            write(staging)
        try:
            staging.rename(target)
        except OSError:
            if not target.exists():  # another process did not win the race: a real failure
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging) if staging.is_dir() else staging.unlink()
    return target
