"""Every test runs offline with its own data root; demo models are built once per session."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: one math thread each (and in their subprocesses), or they fight.
    os.environ["OMP_NUM_THREADS"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One cache per test session, so demo models are built once and shared by all tests."""
    return tmp_path_factory.mktemp("alchemy_cache")


@pytest.fixture(autouse=True)
def alchemy_home(shared_cache, tmp_path, monkeypatch) -> Path:
    """Each test gets an empty data root (projects, models) of its own."""
    home = tmp_path / "alchemy_home"
    home.mkdir()
    monkeypatch.setenv("IMAGE_ALCHEMY_HOME", str(home))
    monkeypatch.setenv("IMAGE_ALCHEMY_CACHE", str(shared_cache))
    # Model discovery must never see a developer's real Hugging Face cache.
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    return home
