"""Two processes, one project: a project in use is not renamed or deleted, a run is resumed once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from train_helpers import quick_request

from alchemy_engine.errors import InvalidRequest, ProjectError
from alchemy_engine.project import delete_project, open_project, rename_project

_HOLD = """
import sys, time
from pathlib import Path
from alchemy_engine.project.locks import project_job, run_lock
with project_job(Path(sys.argv[1]), "training run " + sys.argv[2]):
    Path(sys.argv[1], "runs", sys.argv[2]).mkdir(parents=True, exist_ok=True)
    with run_lock(Path(sys.argv[1], "runs", sys.argv[2]), "training run " + sys.argv[2]):
        print("held", flush=True)
        time.sleep(60)
"""


@pytest.fixture
def holder(fresh_project):
    """Another process that trains run ``r1`` of project Rex (it holds the job and run locks)."""
    project = fresh_project()
    process = subprocess.Popen([sys.executable, "-c", _HOLD, str(project.root), "r1"], stdout=subprocess.PIPE,
                               text=True, env=dict(os.environ))
    try:
        assert process.stdout.readline().strip() == "held"
        yield project, process
    finally:
        process.kill()
        process.wait(timeout=30)
        process.stdout.close()


def test_a_project_in_use_by_another_process_is_not_renamed_or_deleted(holder):
    project, process = holder
    for action in (lambda: delete_project(project), lambda: rename_project(project, "Other")):
        with pytest.raises(ProjectError, match=rf"in use by training run r1 \(pid {process.pid}\)"):
            action()
    assert open_project(project.root).name == "Rex"
    process.kill()  # kill -9: the OS drops the lock, the stale entry is cleaned up
    process.wait(timeout=30)
    assert rename_project(project, "Other").name == "Other"


def test_a_run_is_resumed_by_one_process_at_a_time(holder):
    from alchemy_engine.training import run

    project, process = holder
    (project.runs_dir / "r1" / "train_request.json").write_text(quick_request(project).to_json())
    with pytest.raises(InvalidRequest, match=rf"run r1 is already being trained by training run r1 \(pid {process.pid}\)"):
        run(quick_request(project, resume_run="r1"))


def test_training_holds_the_project_while_it_runs(fresh_project):
    """The GUI case: delete pressed while this process trains."""
    from alchemy_engine.training import run

    project = fresh_project()
    refused = []

    def try_delete(event):
        if event.stage == "training" and not refused:
            with pytest.raises(ProjectError, match=r"in use by training run \d{8}-\d{6}-\w{6}") as info:
                delete_project(project)
            refused.append(str(info.value))

    result = run(quick_request(project), try_delete)
    assert refused and result.lora.is_file()
    delete_project(project)  # free again once the job ended


def test_insertion_holds_the_project_while_it_runs(fresh_project, demo_lora, tmp_path):
    from fault_helpers import copy_lora
    from insert_helpers import TINY_WORK, noisy_scene, write_mask

    from alchemy_engine.insertion import InsertRequest, LocateOptions, run

    project = fresh_project()
    copy_lora(project, demo_lora)
    scene = noisy_scene(tmp_path / "scene.png", (96, 64))
    mask = write_mask(tmp_path / "mask.png", (96, 64), (20, 10, 60, 50))
    refused = []

    def try_rename(event):
        if event.stage == "insert" and not refused:
            with pytest.raises(ProjectError, match="in use by an insertion"):
                rename_project(project, "Other")
            refused.append(True)

    run(InsertRequest(project=str(project.root), model="demo", scene=scene, locate=LocateOptions(mask=mask),
                      steps=2, seed=1, work_pixels=TINY_WORK, strength=0.9), try_rename)
    assert refused
