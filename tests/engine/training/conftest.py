"""Fixtures for training tests: a small project of synthetic photos and fast demo-model requests.

Every run uses the tiny demo SDXL at 64 px so a training step takes milliseconds on a CPU.
"""

from __future__ import annotations

import pytest
from train_helpers import make_project, quick_request


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "photos")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, shared_cache):
    """One short run (rank 4, alpha 8, previews on) shared by the output tests of a module."""
    from alchemy_engine.training import run

    home = tmp_path_factory.mktemp("train_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMAGE_ALCHEMY_HOME", str(home))
        mp.setenv("IMAGE_ALCHEMY_CACHE", str(shared_cache))
        proj = make_project(home / "photos")
        events = []
        result = run(quick_request(proj, steps=6, alpha=8.0, save_every=3, sample_every=3), events.append)
    return proj, result, events
