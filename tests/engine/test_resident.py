"""Inference models kept loaded by a session are freed when training starts."""

from __future__ import annotations

import pytest

from alchemy_engine.errors import AlchemyError
from alchemy_engine.insertion.session import InsertionSession
from alchemy_engine.models import resident
from alchemy_engine.training import TrainRequest
from alchemy_engine.training import run as train


def test_release_all_empties_every_live_session():
    session = InsertionSession()
    session.sam("demo", "cpu")
    assert session._sam
    assert resident.release_all() >= 1
    assert not session._sam


def test_training_frees_inference_models_first(monkeypatch):
    released = []
    monkeypatch.setattr(resident, "release_all", lambda: released.append(True) or 0)
    monkeypatch.setattr("alchemy_engine.training.trainer.setup.prepare", lambda request: None)
    monkeypatch.setattr("alchemy_engine.training.trainer._fit_memory",
                        lambda *a: (_ for _ in ()).throw(AlchemyError("stop here")))
    with pytest.raises(AlchemyError, match="stop here"):
        train(TrainRequest(project="any"))
    assert released == [True]
