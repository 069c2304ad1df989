"""``train --gpus 2 --device cpu``: torchrun's 2 processes (gloo) against one process with batch 2,
and a stop or a kill followed by an exact resume. Slow (each run starts 4 Python processes):
``pytest -m multiprocess``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from data_parallel_helpers import (
    MAIN,
    QUICK,
    assert_same_lora,
    env_for,
    free_port,
    max_difference,
    options,
    result_of,
    run_cli,
    run_workers,
    worker_pids,
)
from train_helpers import quick_request, subject_mask

from alchemy_engine.errors import JobCancelled
from alchemy_engine.jobs import CancelToken
from alchemy_engine.training import checkpoints, run

pytestmark = [pytest.mark.multiprocess, pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")]


@pytest.mark.parametrize("settings", [
    dict(),
    dict(flip=True, noise_offset=0.05),
    dict(prior_preservation=True, class_images=3, prior_weight=0.5),  # odd class count: a rank's share runs empty
    dict(masked_loss=True, background_weight=0.2),
    dict(grad_accum=2, lr_scheduler="linear", lr_warmup_steps=2),
    dict(text_encoder_lora=True, gradient_checkpointing="on"),  # unused TE1 layer; non-reentrant checkpointing
], ids=["plain", "flip", "prior", "masked", "accum", "text-encoders"])
def test_gpus_2_with_batch_1_trains_the_lora_of_batch_2(project, shared_cache, settings):
    if settings.get("masked_loss"):
        for photo in project.reference_photos():
            project.set_mask(photo.name, subject_mask(photo))
    common = dict(steps=6, seed=3, save_every=0, sample_steps=2, **settings)
    done = run_cli(project, shared_cache, "--gpus", "2", *options(batch_size=1, **common))
    assert done.returncode == 0, done.stderr[-3000:]
    result = result_of(done.stdout)
    assert result["world_size"] == 2 and result["steps"] == 6
    reference = run(quick_request(project, device="cpu", batch_size=2, **common))
    assert max_difference(reference.lora, result["lora"]) < 1e-5


def test_the_app_runs_gpus_2_as_two_processes_stops_and_resumes_them(project, shared_cache, monkeypatch):
    """What the GUI does: ``api.train`` with gpus 2 starts torchrun, reads rank 0's events, stops
    every rank on cancel, and resumes with the run's own 2 processes."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    settings = dict(steps=6, seed=3, sample_every=3, save_every=2, device="cpu")
    cancel, events = CancelToken(), []

    def stop_at_2(event):
        events.append(event)
        if event.stage == "training" and event.step == 2:
            cancel.cancel()

    with pytest.raises(JobCancelled, match="--resume"):
        run(quick_request(project, gpus=2, batch_size=1, **settings), stop_at_2, cancel)
    stopped = next(e.run_id for e in events if e.run_id)
    assert [e.step for e in events if e.stage == "training"][:2] == [1, 2]
    events.clear()
    result = run(quick_request(project, resume_run=stopped), events.append)
    assert result.world_size == 2 and result.steps == 6 and result.resumed_from >= 2
    assert [e.preview.size for e in events if e.stage == "sample"][-1] == (64, 64)
    reference = run(quick_request(project, batch_size=2, **settings))
    assert max_difference(reference.lora, result.lora) < 1e-5


def _launch(project, cache, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(MAIN), "train", str(project.root), *QUICK, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(project, cache))


def _newest_run(project, but):
    return max((p for p in project.runs_dir.iterdir() if p.name != but), key=lambda p: p.name)


SETTINGS = dict(steps=8, batch_size=1, seed=5, save_every=2, keep_last=5, flip=True)


def test_ctrl_c_stops_every_rank_at_one_step_and_resume_is_bit_identical(project, shared_cache):
    ranks = run_workers(project, shared_cache, *options(**SETTINGS))
    assert all(r.returncode == 0 for r in ranks), ranks[0].stderr[-3000:]
    reference = result_of(ranks[0].stdout)
    child = _launch(project, shared_cache, "--gpus", "2", *options(**SETTINGS))
    try:
        assert child.stdout is not None
        for line in child.stdout:
            event = json.loads(line)
            if event.get("stage") == "training" and event["step"] >= 3:
                child.send_signal(signal.SIGINT)  # what a Ctrl+C at the terminal does
                break
        child.communicate(timeout=300)
    finally:
        child.kill()
    assert child.returncode == 130
    stopped = _newest_run(project, but=reference["run_dir"].rsplit("/", 1)[-1])
    assert not (stopped / "lora.safetensors").exists()
    newest = checkpoints.latest_checkpoint(stopped)
    assert newest is not None and int(newest.name.rsplit("-", 1)[-1]) >= 3
    resumed = run_cli(project, shared_cache, "--resume", stopped.name)  # 2 processes again: the run's own gpus
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = result_of(resumed.stdout)
    assert result["world_size"] == 2 and result["resumed_from"] >= 3
    assert_same_lora(reference["lora"], result["lora"])


def test_kill_9_of_rank_1_fails_the_run_and_resume_is_exact(project, shared_cache):
    ranks = run_workers(project, shared_cache, *options(**SETTINGS))
    assert all(r.returncode == 0 for r in ranks), ranks[0].stderr[-3000:]
    reference = result_of(ranks[0].stdout)
    child = _launch(project, shared_cache, "--gpus", "2", *options(**SETTINGS))
    try:
        assert child.stdout is not None
        for line in child.stdout:
            event = json.loads(line)
            if event.get("stage") == "checkpoint" and event["step"] >= 4:
                os.kill(worker_pids(child.pid)[1], signal.SIGKILL)
                break
        child.communicate(timeout=300)
    finally:
        child.kill()
    assert child.returncode not in (0, None)
    killed = _newest_run(project, but=reference["run_dir"].rsplit("/", 1)[-1])
    assert not (killed / "lora.safetensors").exists()
    resumed = run_cli(project, shared_cache, "--resume", killed.name)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_lora(reference["lora"], result_of(resumed.stdout)["lora"])


def test_two_machines_by_rendezvous_train_the_lora_of_batch_2(project, shared_cache):
    """packaging/launchers/train_nodes.sh as on 2 machines (here both on 127.0.0.1, 1 process each)."""
    script = MAIN.parent / "packaging" / "launchers" / "train_nodes.sh"
    env = dict(env_for(project, shared_cache), NODES="2", GPUS="1", HOST="127.0.0.1", PORT=str(free_port()),
               RUN_ID=f"test-{os.getpid()}", PYTHON=sys.executable)
    args = [str(script), str(project.root), *QUICK, *options(steps=4, seed=3, batch_size=1, save_every=0)]
    nodes = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    try:
        outputs = [node.communicate(timeout=300) for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    spoken = [out for out, _ in outputs if out.strip()]
    assert len(spoken) == 1  # rank 0's machine alone prints
    result = result_of(spoken[0])
    assert result["world_size"] == 2
    reference = run(quick_request(project, device="cpu", batch_size=2, steps=4, seed=3))
    assert max_difference(reference.lora, result["lora"]) < 1e-5
