"""Exact resume: after a cancel or a kill -9, the resumed run ends with bit-identical LoRA tensors."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import quick_request, subprocess_env

from alchemy_engine.errors import AlchemyError, JobCancelled
from alchemy_engine.jobs import CancelToken
from alchemy_engine.training import checkpoints, run

MAIN = Path(__file__).resolve().parents[3] / "main.py"


def assert_same_lora(a: Path, b: Path) -> None:
    first, second = load_file(str(a)), load_file(str(b))
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_cancel_saves_a_checkpoint_and_resume_matches_an_uninterrupted_run(project):
    settings = dict(steps=8, save_every=3, keep_last=5, batch_size=2, flip=True, noise_offset=0.05)
    reference = run(quick_request(project, **settings))
    cancel = CancelToken()

    def stop_at_5(event):
        if event.stage == "training" and event.step == 5:
            cancel.cancel()

    with pytest.raises(JobCancelled, match="--resume"):
        run(quick_request(project, **settings), stop_at_5, cancel)
    runs = sorted(p for p in project.runs_dir.iterdir() if p != reference.run_dir)
    stopped = runs[-1]
    assert [c.name for c in checkpoints.list_checkpoints(stopped)] == ["step-000003", "step-000005"]
    assert not (stopped / "lora.safetensors").exists()
    resumed = run(quick_request(project, resume_run=stopped.name))
    assert resumed.run_dir == stopped and resumed.resumed_from == 5 and resumed.steps == 8
    assert_same_lora(reference.lora, resumed.lora)
    assert_same_lora(reference.lora_kohya, resumed.lora_kohya)
    steps = [line.split(",")[0] for line in (stopped / "loss.csv").read_text().splitlines()[1:]]
    assert steps == [str(s) for s in range(1, 9)]


def test_sigkill_mid_run_then_resume_is_bit_identical(project, tmp_path, shared_cache):
    settings = dict(steps=24, save_every=4, keep_last=2)
    reference = run(quick_request(project, **settings))
    command = [sys.executable, str(MAIN), "train", str(project.root), "--model", "demo", "--json",
               "--steps", "24", "--save-every", "4", "--resolution", "64", "--rank", "4",
               "--learning-rate", "1e-3", "--sample-every", "0"]
    env = subprocess_env(Path(project.root).parents[1], shared_cache)
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        for line in child.stdout:
            event = json.loads(line)
            if event.get("stage") == "checkpoint" and event["step"] >= 8:
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    killed = max((p for p in project.runs_dir.iterdir() if p != reference.run_dir), key=lambda p: p.name)
    assert not (killed / "lora.safetensors").exists()
    assert checkpoints.latest_checkpoint(killed) is not None
    out = subprocess.run([sys.executable, str(MAIN), "train", str(project.root), "--resume", killed.name, "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["steps"] == 24 and result["resumed_from"] >= 8
    assert_same_lora(reference.lora, Path(result["lora"]))


def test_disk_full_while_saving_keeps_the_previous_checkpoint(project, monkeypatch):
    real_save = torch.save
    calls = {"n": 0}

    def flaky_save(obj, f, *args, **kwargs):
        if "step-000004" in str(f):
            calls["n"] += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", flaky_save)
    with pytest.raises(AlchemyError, match=r"disk is full.*--resume.*step 2 is intact"):
        run(quick_request(project, steps=6, save_every=2))
    monkeypatch.setattr(torch, "save", real_save)
    stopped = max(project.runs_dir.iterdir(), key=lambda p: p.name)
    assert [c.name for c in checkpoints.list_checkpoints(stopped)] == ["step-000002"]
    assert not list((stopped / "checkpoints").glob(".tmp-*"))
    resumed = run(quick_request(project, resume_run=str(stopped)))
    assert resumed.resumed_from == 2 and resumed.lora.is_file()


def test_resume_without_checkpoint_or_unknown_run_is_refused(project):
    from alchemy_engine.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="no training run 'nope'"):
        run(quick_request(project, resume_run="nope"))
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(JobCancelled):
        run(quick_request(project), cancel=cancel)
    assert not project.runs_dir.exists() or not list(project.runs_dir.iterdir())  # no empty run folder
    stopped = project.runs_dir / "20260101-000000-abcdef"  # a run that died before its first checkpoint
    stopped.mkdir(parents=True)
    (stopped / "train_request.json").write_text(quick_request(project).to_json())
    with pytest.raises(InvalidRequest, match="before its first checkpoint"):
        run(quick_request(project, resume_run=stopped.name))
