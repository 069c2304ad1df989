"""--compile: its own stage before the first step, a note, and eager training when compiling fails.

Inductor takes minutes on a small CPU, so these tests compile with dynamo's ``eager`` backend
(same tracing, guards and graph counting; no code generation) or a backend that always fails.
"""

from __future__ import annotations

import json

import pytest
import torch
from train_helpers import quick_request

from alchemy_engine.models import torch_compile
from alchemy_engine.training import run


def _with_backend(monkeypatch, backend):
    def compile_in_place(module):
        torch._dynamo.reset()
        module.compile(backend=backend, dynamic=False)

    monkeypatch.setattr(torch_compile, "compile_in_place", compile_in_place)


def test_auto_is_on_for_cuda_only():
    assert torch_compile.decide("auto", "cuda:0")[0] and not torch_compile.decide("auto", "cpu")[0]
    assert not torch_compile.decide("auto", "mps")[0] and torch_compile.decide("on", "cpu") == (True, "asked for")


def test_compiled_training_reports_a_compile_stage_before_the_first_step(project, monkeypatch):
    _with_backend(monkeypatch, "eager")
    events = []
    result = run(quick_request(project, steps=2, compile="on"), events.append)
    stages = [e.stage for e in events]
    assert "compile" in stages and stages.index("compile") < stages.index("training")
    assert any(n.startswith("compile: compiled in") and "graph" in n for n in result.notes)
    assert json.loads((result.run_dir / "train_request.json").read_text())["compile"] == "on"


def test_a_failed_compile_falls_back_to_eager_with_a_note(project, monkeypatch):
    def broken(graph, example_inputs):
        raise RuntimeError("no C++ compiler here")

    _with_backend(monkeypatch, broken)
    events = []
    result = run(quick_request(project, steps=2, compile="on"), events.append)
    assert result.steps == 2 and result.final_loss is not None
    assert result.settings_changed["compile"] == ["on", "off"]
    note = next(e.message for e in events if e.stage == "note" and e.message.startswith("compile: on → off"))
    assert "no C++ compiler here" in note
    changed = json.loads((result.run_dir / "settings_changed.json").read_text())
    assert changed["compile"]["used"] == "off"


@pytest.mark.parametrize("value", ["yes", True])
def test_compile_takes_auto_on_or_off(project, value):
    from alchemy_engine.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="compile must be one of auto, on, off"):
        quick_request(project, compile=value).validate()
