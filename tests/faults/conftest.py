"""Fault-injection suite: write failures at every write point, kills, damaged files, two processes.

The default test run covers a spread of points per job; ``-m faults`` runs the full sweep (every
write point × every kind of failure, and SIGKILL at every write point of a training run).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine" / "training"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine" / "insertion"))


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A project with three photos (made once per module), to copy for each injected fault."""
    from train_helpers import make_photo

    folder = tmp_path_factory.mktemp("photos")
    return [make_photo(folder / f"photo{i}.png", size, seed=i)
            for i, size in enumerate([(256, 256), (320, 256), (256, 384)])]


@pytest.fixture
def fresh_project(template):
    """``fresh_project(name)``: a new project with the template photos."""
    from alchemy_engine.project import create_project

    def make(name: str = "Rex"):
        return create_project(name, class_noun="dog", images=template)

    return make


@pytest.fixture(scope="session")
def demo_lora(shared_cache) -> Path:
    from insert_helpers import make_demo_lora

    target = shared_cache / "test_loras" / "lora.safetensors"
    return target if target.exists() else make_demo_lora(target)
