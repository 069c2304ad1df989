"""A failing disk at every write point of a train, a resume, an insert, a photo import and a
project edit: one clear message, no traceback, the project still opens, nothing partial or
orphaned is left, and the work can be resumed (or redone) once the disk is fine again.

Default run: a spread of points per job, cycling through the kinds of failure. ``-m faults``:
every point × every kind.
"""

from __future__ import annotations

import shutil

import pytest
from fault_helpers import FAULTS, Injector, assert_clean, assert_message, copy_lora, spread
from insert_helpers import TINY_WORK, noisy_scene, write_mask
from train_helpers import make_photo, quick_request

from alchemy_engine import paths
from alchemy_engine.errors import AlchemyError, JobCancelled
from alchemy_engine.jobs import CancelToken
from alchemy_engine.project import open_project, rename_project
from alchemy_engine.training import checkpoints

KINDS = list(FAULTS)
TRAIN = dict(steps=4, save_every=2)


def _clone(project, name: str):
    target = paths.projects_dir() / name
    shutil.copytree(project.root, target)
    return open_project(target)


def _points(job) -> int:
    with Injector() as counter:
        job()
    return len(counter.points)


def _inject(job, n: int, fault: str, root, *others) -> bool:
    """Fail the n-th write with ``fault``; True when it fired (the job then must have failed well)."""
    with Injector(fail_at=n, fault=fault) as injector:
        try:
            job()
        except AlchemyError as exc:
            assert injector.fired, f"failed without an injected fault: {exc}"
            assert_message(exc, fault)
        else:
            assert not injector.fired, f"write point {injector.fired} failed but the job succeeded"
    assert_clean(root, *others)
    return injector.fired is not None


def _resume_or_retrain(project, temporaries: bool = False):
    """After the disk recovers: resume a resumable run, else train anew; both must succeed."""
    from alchemy_engine.project.runs import list_runs
    from alchemy_engine.training import run

    resumable = [r for r in list_runs(project.runs_dir) if r.resumable]
    if resumable:
        result = run(quick_request(project, resume_run=resumable[0].run_id))
        assert result.resumed_from == resumable[0].checkpoint_step
    else:
        result = run(quick_request(project, **TRAIN))
    assert result.lora.is_file() and result.lora_kohya.is_file()
    assert_clean(project.root, temporaries=temporaries)
    return result


def _sweep_train(fresh_project, most: int | None, kinds):
    from alchemy_engine.training import run

    base = fresh_project("Base")
    total = _points(lambda: run(quick_request(_clone(base, "count"), **TRAIN)))
    indices = range(1, total + 1) if most is None else spread(total, most)
    fired = 0
    for i, n in enumerate(indices):
        for fault in kinds(i):
            project = _clone(base, f"t{n}-{fault.lower()}")
            fired += _inject(lambda p=project: run(quick_request(p, **TRAIN)), n, fault, project.root)
            _resume_or_retrain(project)
    assert fired == len(indices)  # loss.csv is written by step, not by the clock: no point moves
    return total


def test_train_survives_a_failed_write_at_spread_points(fresh_project):
    total = _sweep_train(fresh_project, 4, lambda i: [KINDS[i % len(KINDS)]])
    assert total >= 20  # run folder, caches, loss log, two checkpoints, both LoRA files


def test_loss_rows_are_written_by_step_whatever_the_clock(fresh_project, monkeypatch):
    """The sweeps above count a run's write points once and replay them: they hold only if the
    same request writes at the same points on a slow machine as on a fast one."""
    import itertools
    import types

    from alchemy_engine.training import loss_log, run

    seconds = itertools.count()  # a very slow machine: a second passes at every look at the clock
    clock = types.SimpleNamespace(monotonic=lambda: float(next(seconds)), perf_counter=loss_log.time.perf_counter)
    monkeypatch.setattr(loss_log, "time", clock)
    project = fresh_project("Slow")
    with Injector() as counter:
        result = run(quick_request(project, steps=12, save_every=0))
    appends = [path for phase, path in counter.points if path.name == "loss.csv"]
    assert len(appends) == 2  # at step 10 (WRITE_EVERY_STEPS) and at the end
    rows = (result.run_dir / "loss.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and [r.split(",")[0] for r in rows[1:]] == [str(s) for s in range(1, 13)]


@pytest.mark.faults
def test_train_survives_every_kind_of_failure_at_every_write(fresh_project):
    _sweep_train(fresh_project, None, lambda i: KINDS)


def _stopped_run(fresh_project):
    from alchemy_engine.training import run

    project = fresh_project("Stopped")
    cancel = CancelToken()

    def stop_at_3(event):
        if event.stage == "training" and event.step == 3:
            cancel.cancel()

    with pytest.raises(JobCancelled):
        run(quick_request(project, steps=6, save_every=2), stop_at_3, cancel)
    [stopped] = list(project.runs_dir.iterdir())
    return project, stopped.name


def _sweep_resume(fresh_project, most, kinds):
    from alchemy_engine.training import run

    base, run_id = _stopped_run(fresh_project)
    total = _points(lambda: run(quick_request(_clone(base, "count"), resume_run=run_id)))
    indices = range(1, total + 1) if most is None else spread(total, most)
    for i, n in enumerate(indices):
        for fault in kinds(i):
            project = _clone(base, f"r{n}-{fault.lower()}")
            _inject(lambda p=project: run(quick_request(p, resume_run=run_id)), n, fault, project.root)
            assert checkpoints.list_checkpoints(project.runs_dir / run_id)  # always something to resume
            _resume_or_retrain(project)
    return total


def test_resume_survives_a_failed_write_at_spread_points(fresh_project):
    assert _sweep_resume(fresh_project, 3, lambda i: [KINDS[(i + 1) % len(KINDS)]]) >= 8


@pytest.mark.faults
def test_resume_survives_every_kind_of_failure_at_every_write(fresh_project):
    _sweep_resume(fresh_project, None, lambda i: KINDS)


def _insert_job(project, tmp_path, out):
    from alchemy_engine.insertion import InsertRequest, LocateOptions, run

    scene = noisy_scene(tmp_path / "scene.png", (96, 64))
    mask = write_mask(tmp_path / "mask.png", (96, 64), (20, 10, 60, 50))
    request = InsertRequest(project=str(project.root), model="demo", scene=scene, locate=LocateOptions(mask=mask),
                            steps=2, seed=7, work_pixels=TINY_WORK, strength=0.9, variations=2, out=out)
    return lambda: run(request)


def _sweep_insert(fresh_project, demo_lora, tmp_path, kinds):
    project = fresh_project("Insert")
    copy_lora(project, demo_lora)
    total = _points(_insert_job(project, tmp_path, tmp_path / "count"))
    assert total >= 10  # 2 outputs, 2 copies, the mask and its copy: open and commit each
    for n in range(1, total + 1):
        for fault in kinds(n):
            out = tmp_path / f"out-{n}-{fault}"
            assert _inject(_insert_job(project, tmp_path, out), n, fault, project.root, out)
    return total


def test_insert_survives_a_failed_write_at_every_point(fresh_project, demo_lora, tmp_path):
    _sweep_insert(fresh_project, demo_lora, tmp_path, lambda n: [KINDS[n % len(KINDS)]])


@pytest.mark.faults
def test_insert_survives_every_kind_of_failure_at_every_write(fresh_project, demo_lora, tmp_path):
    _sweep_insert(fresh_project, demo_lora, tmp_path, lambda n: KINDS)


def _new_photos(tmp_path):
    folder = tmp_path / "more"
    folder.mkdir(exist_ok=True)
    return [make_photo(folder / f"new{i}.png", (256, 288), seed=40 + i) for i in range(2)]


@pytest.mark.parametrize("kinds", [pytest.param(lambda n: [KINDS[n % 3]], id="spread"),
                                   pytest.param(lambda n: KINDS, id="all", marks=pytest.mark.faults)])
def test_photo_import_commits_whole_or_not_at_all(fresh_project, tmp_path, kinds):
    photos = _new_photos(tmp_path)
    base = fresh_project("Photos")
    total = _points(lambda: _clone(base, "count").import_photos(photos))
    assert total >= 6  # two staged PNGs, two moves, project.json
    for n in range(1, total + 1):
        for fault in kinds(n):
            project = _clone(base, f"p{n}-{fault.lower()}")
            assert _inject(lambda p=project: p.import_photos(photos), n, fault, project.root)
            report = open_project(project.root).import_photos(photos)  # again, on a healthy disk
            assert [p.name for p in report.imported] == ["new0.png", "new1.png"]  # no "-2" names
            assert_clean(project.root)


def _edits(project, tmp_path):
    from train_helpers import subject_mask

    photo = project.reference_photos()[0]
    return [lambda: project.update(settings={"steps": 10}), lambda: project.set_caption(photo, "a dog"),
            lambda: project.set_mask(photo, subject_mask(photo)),
            lambda: rename_project(project, f"Renamed {project.slug}"), lambda: project.remove_photo(photo)]


@pytest.mark.parametrize("kinds", [pytest.param(lambda n: [KINDS[n % 3]], id="spread"),
                                   pytest.param(lambda n: KINDS[:3], id="all", marks=pytest.mark.faults)])
def test_project_edits_keep_the_previous_version(fresh_project, tmp_path, kinds):
    base = fresh_project("Edits")
    for index in range(5):
        total = _points(_edits(_clone(base, f"count{index}"), tmp_path)[index])
        for n in range(1, total + 1):
            for fault in kinds(n + index):
                project = _clone(base, f"e{index}-{n}-{fault.lower()}")
                before = project.project_file.read_bytes()
                assert _inject(_edits(project, tmp_path)[index], n, fault, project.root)
                assert project.project_file.read_bytes() == before or index == 4  # remove: record first
