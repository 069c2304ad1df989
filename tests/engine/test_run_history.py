"""Previous runs in detail: name, date, loss curve, previews, settings; renaming and deleting."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from alchemy_engine import api
from alchemy_engine.errors import InvalidRequest, ProjectError
from alchemy_engine.project.locks import run_lock


def _fake_run(project, run_id: str = "20260102-030405-abcdef", steps: int = 6):
    run = project.runs_dir / run_id
    (run / "samples").mkdir(parents=True)
    (run / "train_request.json").write_text(json.dumps({"project": project.slug, "steps": steps, "rank": 4,
                                                        "model": "demo", "resolution": 64}))
    rows = ["step,loss,loss_smoothed,lr"] + [f"{s},{1.0 / s},{0.5 / s},0.001" for s in range(1, steps + 1)]
    (run / "loss.csv").write_text("\n".join(rows) + "\n12,0.1")  # a half-written last row
    for step in (3, 6):
        Image.new("RGB", (8, 8)).save(run / "samples" / f"step-{step:06d}.png")
    return run


@pytest.fixture
def project():
    return api.create_project("Rex", class_noun="dog")


def test_a_run_reads_back_its_curve_previews_and_settings(project):
    run = _fake_run(project)
    info = api.read_run(run)
    assert info.display_name == run.name and info.started.year == 2026 and info.started.hour == 3
    assert info.label == f"{run.name} · 6 steps · loss {0.5 / 6:.4f} · 2026-01-02 03:04"
    curve = api.read_loss_curve(run)
    assert curve[0] == (1, 0.5) and curve[-1] == (6, pytest.approx(0.5 / 6)) and len(curve) == 6
    assert [p.name for p in api.run_samples(run)] == ["step-000003.png", "step-000006.png"]
    assert api.run_settings(run)["rank"] == 4
    details = api.describe_run(run)
    assert details["settings"]["steps"] == 6 and details["problem"] == "" and len(details["samples"]) == 2


def test_a_damaged_request_is_a_message(project):
    run = _fake_run(project)
    (run / "train_request.json").write_text("{not json")
    with pytest.raises(InvalidRequest, match="damaged"):
        api.run_settings(run)
    assert api.describe_run(run)["settings"] is None


def test_rename_stores_a_display_name_and_empty_restores_the_id(project):
    run = _fake_run(project)
    assert api.rename_run(run, "  first   try ") == "first try"
    assert json.loads((run / "run_name.json").read_text()) == {"name": "first try"}
    info = api.list_runs(project.runs_dir)[0]
    assert info.name == "first try" and info.label.startswith("first try · 6 steps")
    with pytest.raises(InvalidRequest, match="at most 80"):
        api.rename_run(run, "x" * 81)
    api.rename_run(run, "")
    assert api.read_run(run).display_name == run.name and not (run / "run_name.json").exists()


def test_delete_moves_the_run_to_the_projects_trash(project):
    run = _fake_run(project)
    trash = api.delete_run(project, run.name)
    assert not run.exists() and (trash / "loss.csv").is_file()
    assert trash.parent == project.root / "trash" / "runs" and trash.name.startswith(run.name)
    assert api.list_runs(project.runs_dir) == []
    with pytest.raises(InvalidRequest, match="has no run"):
        api.delete_run(project, run.name)
    with pytest.raises(InvalidRequest, match="not a run id"):
        api.delete_run(project, "../rex")


def test_a_run_that_trains_cannot_be_deleted(project):
    run = _fake_run(project)
    with run_lock(run, "training run x"):
        with pytest.raises(ProjectError, match="being trained by training run x"):
            api.delete_run(project, run.name)
    assert run.is_dir()
    api.delete_run(project, run.name)
    assert not run.exists()


def test_a_half_made_run_folder_is_never_listed(project):
    """A process killed while it made a run folder leaves its hidden staging folder, request included."""
    _fake_run(project)
    staging = project.runs_dir / ".tmp-20260102-040404-fedcba-1a2b3c4d"
    staging.mkdir()
    (staging / "train_request.json").write_text(json.dumps({"steps": 6}), encoding="utf-8")
    assert [r.path.name for r in api.list_runs(project.runs_dir)] == ["20260102-030405-abcdef"]


def test_a_new_run_removes_staging_folders_a_kill_left_but_not_fresh_ones(project):
    import os
    import time

    from alchemy_engine.project.runs import STALE_STAGING_S, remove_stale_staging

    old = project.runs_dir / ".tmp-20260101-000000-aaaaaa-11111111"
    fresh = project.runs_dir / ".tmp-20260102-000000-bbbbbb-22222222"  # another process staging now
    for folder in (old, fresh):
        folder.mkdir(parents=True)
        (folder / "train_request.json").write_text("{}", encoding="utf-8")
    then = time.time() - STALE_STAGING_S - 60
    os.utime(old, (then, then))
    kept = _fake_run(project)
    assert remove_stale_staging(project.runs_dir) == [old]
    assert not old.exists() and fresh.is_dir() and kept.is_dir()
