"""SIGKILL at a write point of a training run: the project opens, nothing torn sits under a final
name, and the run resumes (or, killed before its first checkpoint, a new run trains).

Default: a kill during the LoRA export. ``-m faults``: every write point.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fault_helpers import Injector, assert_clean
from test_write_faults import TRAIN, _clone, _resume_or_retrain
from train_helpers import quick_request

HERE = Path(__file__).resolve().parent
_KILLED_RUN = """
import sys
sys.path[:0] = [sys.argv[3], sys.argv[4]]
from fault_helpers import Injector
from train_helpers import quick_request
from alchemy_engine.project import open_project
from alchemy_engine.training import run
with Injector(fail_at=int(sys.argv[2]), kill=True):
    run(quick_request(open_project(sys.argv[1]), steps=%d, save_every=%d))
print("not killed")
""" % (TRAIN["steps"], TRAIN["save_every"])


def _kill_at(project, n: int) -> None:
    out = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(project.root), str(n), str(HERE),
                          str(HERE.parent / "engine" / "training")], capture_output=True, text=True, timeout=600)
    assert out.returncode == -signal.SIGKILL, out.stdout + out.stderr[-2000:]


def _write_points(fresh_project):
    from alchemy_engine.training import run

    base = fresh_project("Base")
    with Injector() as counter:
        run(quick_request(_clone(base, "count"), **TRAIN))
    return base, counter.points


def _check_kill(base, n: int) -> None:
    project = _clone(base, f"k{n}")
    _kill_at(project, n)
    assert_clean(project.root, temporaries=True)
    result = _resume_or_retrain(project, temporaries=True)  # a killed run that cannot resume keeps its
    left = [p for p in result.run_dir.rglob(".*") if p.name != ".lock"]  # temporaries; a resumed one none
    assert not left, left


def test_kill_during_export_then_resume(fresh_project):
    """(tests/engine/training/test_resume.py kills mid-run and checks the resume is bit-identical.)"""
    base, found = _write_points(fresh_project)
    mid_export = next(i for i, (phase, path) in enumerate(found, 1)
                      if phase == "commit" and path.name == "lora_kohya.safetensors")
    _check_kill(base, mid_export)


@pytest.mark.faults
def test_kill_at_every_write_point_then_resume(fresh_project):
    base, found = _write_points(fresh_project)
    for n in range(1, len(found) + 1):
        _check_kill(base, n)
