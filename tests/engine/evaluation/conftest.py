"""Fixtures for evaluation tests: the demo evaluation models and one short training run.

The trained run (tiny demo SDXL, 64 px, 4 steps, scored at steps 2 and 4 with the demo
evaluation models) is made once per module and serves the insert and evaluate tests too.
"""

from __future__ import annotations

import pytest
from eval_helpers import make_project


@pytest.fixture(scope="session")
def scorer(shared_cache):
    """The demo DINO, CLIP-L and DINOv2 models, loaded once."""
    from alchemy_engine.evaluation.metrics import FidelityScorer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMAGE_ALCHEMY_CACHE", str(shared_cache))
        return FidelityScorer.load("demo", dinov2=True, device="cpu")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_cache):
    """(home, project, TrainResult) of a run trained with --eval-every 2 on the demo models."""
    from alchemy_engine.training import TrainRequest, run

    home = tmp_path_factory.mktemp("eval_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMAGE_ALCHEMY_HOME", str(home))
        mp.setenv("IMAGE_ALCHEMY_CACHE", str(shared_cache))
        project = make_project(home / "photos")
        request = TrainRequest(project=str(project.root), model="demo", steps=4, resolution=64, rank=4,
                               learning_rate=1e-3, save_every=0, sample_every=0, sample_steps=2,
                               eval_every=2, eval_prompts=2, eval_models="demo")
        events = []
        result = run(request, events.append)
    return home, project, result, events


@pytest.fixture()
def trained_home(trained, monkeypatch):
    """Point the data folder at the trained run's home for this test."""
    monkeypatch.setenv("IMAGE_ALCHEMY_HOME", str(trained[0]))
    return trained
