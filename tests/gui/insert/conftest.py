"""Fixtures of the Insert area's GUI tests: the demo LoRA, project 'Rex' with one run, the panel."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from alchemy_engine import project as projects
from alchemy_gui.common.job_list import JobList
from alchemy_gui.insert.panel import InsertPanel
from alchemy_gui.projects.state import ProjectsState

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "engine" / "insertion"))
from insert_helpers import make_demo_lora  # noqa: E402


@pytest.fixture(scope="session")
def demo_lora(shared_cache) -> Path:
    target = shared_cache / "gui_loras" / "lora.safetensors"
    return target if target.exists() else make_demo_lora(target)


@pytest.fixture
def project(demo_lora):
    proj = projects.create_project("Rex", class_noun="dog", token="sks")
    run = proj.runs_dir / "20250101-000000-abcdef"
    run.mkdir(parents=True)
    shutil.copyfile(demo_lora, run / "lora.safetensors")
    return proj


@pytest.fixture
def panel(qtbot):
    runner = JobList()
    state = ProjectsState(runner)
    widget = InsertPanel(state, runner)
    qtbot.addWidget(widget)
    widget.resize(1100, 720)
    widget.show()
    yield widget
    runner.cancel_all()
    qtbot.waitUntil(lambda: not runner.busy, timeout=60000)
