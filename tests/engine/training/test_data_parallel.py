"""Training on several processes (torch.distributed, gloo on this CPU): the same LoRA as one process
with the global batch, rank 0 alone speaks and writes, and the refusals.

The default suite checks the seam in one process (2 ranks' shares give the global batch's gradient)
and runs one small 2-process training (11 s on 2 idle cores, a minute under load); the runs through torchrun (``--gpus``, stop,
kill, several machines) are in test_data_parallel_launch.py, marked ``multiprocess``.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from data_parallel_helpers import max_difference, options, result_of, run_workers
from train_helpers import make_project, quick_request

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.training import TrainRequest, checkpoints, loop, run
from alchemy_engine.training.batch_shares import rank_share
from alchemy_engine.training.world import check_gpus

TOLERANCE = 1e-5


def _pass(count: int) -> dict:
    return {"latents": torch.arange(count, dtype=torch.float32).view(count, 1, 1, 1).expand(count, 4, 2, 2),
            "embeds": torch.zeros(count, 3, 5), "pooled": torch.zeros(count, 5), "rows": torch.arange(count),
            "time_ids": torch.zeros(count, 6), "scale": torch.ones(count), "weights": None}


@pytest.mark.parametrize("count, size", [(4, 2), (3, 2), (1, 2), (5, 4)])
def test_rank_shares_cover_the_pass_once_and_weigh_like_one_mean(count, size):
    shares = [rank_share(_pass(count), rank, size) for rank in range(size)]
    rows = [int(r) for share in shares if share["scale"].sum() > 0 for r in share["rows"]]
    assert rows == list(range(count))  # every sample once, in order
    # a rank's loss is the mean over its rows of scale x loss; DDP divides the sum over ranks by size:
    # the weights of all samples add up to 1, as in one process's mean
    total = sum(float(s["scale"].mean()) for s in shares) / size
    assert total == pytest.approx(1.0)
    for share in shares:
        assert share["latents"].shape[0] >= 1  # an empty share is a zero-weight copy: same passes
        assert share["share"][0] == count


class _Captured(Exception):
    pass


def _loop_state(project, monkeypatch, **settings):
    """The LoopState the trainer builds for these settings (one process), before its first step."""
    from alchemy_engine.training import trainer

    seen = {}

    def capture(run_setup, state, *args):
        seen["state"] = state
        raise _Captured

    monkeypatch.setattr(trainer, "_train", capture)
    with pytest.raises(_Captured):
        run(quick_request(project, **settings))
    return seen["state"]


def _gradients(state, passes, start: torch.Tensor) -> tuple[list[torch.Tensor], float]:
    """Every rank's pass from the generator state ``start``; gradients and losses averaged as DDP does."""
    grads, loss = [torch.zeros_like(p) for p in state.params], 0.0
    for batch in passes:
        state.generator.set_state(start)
        value = loop.forward_loss(state, batch)
        value.backward()
        loss += float(value.detach()) / len(passes)
        for total, p in zip(grads, state.params):
            total += p.grad / len(passes)
            p.grad = None
    return grads, loss


def test_rank_shares_give_the_gradient_of_the_global_batch(tmp_path, monkeypatch):
    """The seam in loop.py without processes: 2 ranks' shares, averaged as DDP averages, give the
    one-process gradient of the same global batch; a bucket's last batch of one image leaves rank 1
    a zero-weight copy."""
    project = make_project(tmp_path / "three", count=3)
    state = _loop_state(project, monkeypatch, batch_size=2, seed=3, noise_offset=0.05)
    whole = loop._epoch_plan(state, 0)
    state.request = dataclasses.replace(state.request, batch_size=1)
    shares = [loop._epoch_plan(dataclasses.replace(state, ranks=(rank, 2)), 0) for rank in range(2)]
    assert sorted(len(p[0]["latents"]) for p in whole) == [1, 2]
    for n, passes in enumerate(whole):
        start = state.generator.get_state()
        expected, loss = _gradients(state, passes, start)
        got, shared_loss = _gradients(state, [shares[0][n][0], shares[1][n][0]], start)
        assert shared_loss == pytest.approx(loss, rel=1e-5)
        for a, b in zip(expected, got):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)


def test_more_processes_than_gpus_is_refused_with_what_to_do():
    if torch.cuda.is_available():
        pytest.skip("needs a computer without CUDA")
    with pytest.raises(InvalidRequest, match="device cpu"):
        check_gpus(2, None)
    with pytest.raises(InvalidRequest, match="MPS"):
        check_gpus(2, "mps")
    with pytest.raises(InvalidRequest, match="gpus must be between"):
        TrainRequest(project="p", gpus=0).validate()
    check_gpus(2, "cpu")
    check_gpus(1, None)


def test_two_gpus_on_a_computer_without_them_is_refused_before_anything_starts(project):
    if torch.cuda.is_available():
        pytest.skip("needs a computer without CUDA")
    with pytest.raises(InvalidRequest, match="more GPUs than this computer has"):
        run(quick_request(project, gpus=2))
    assert not list(project.runs_dir.glob("*"))


@pytest.mark.multiprocess
def test_two_processes_train_the_lora_of_one_process_with_the_global_batch(project, shared_cache):
    """The invariant, rank 0 alone speaking, each latent encoded once, and the refusal to resume
    a 2-process run in one process."""
    settings = dict(steps=4, batch_size=1, seed=3, save_every=2, flip=True, noise_offset=0.05)
    ranks = run_workers(project, shared_cache, *options(**settings))
    for done in ranks:
        assert done.returncode == 0, done.stderr[-3000:]
    assert ranks[1].stdout == ""  # only rank 0 speaks
    events = [json.loads(line) for line in ranks[0].stdout.splitlines()]
    assert sum(e.get("message") == "checking photos and model" for e in events) == 1
    result = result_of(ranks[0].stdout)
    assert result["world_size"] == 2
    # 3 photos x (flipped or not), each encoded by one rank only
    assert result["cache"]["latents_computed"] == 6 and result["cache"]["latents_reused"] == 0
    reference = run(quick_request(project, **dict(settings, batch_size=2)))
    assert max_difference(reference.lora, result["lora"]) < TOLERANCE
    run_dir = project.runs_dir / result["run_dir"].rsplit("/", 1)[-1]
    assert json.loads((run_dir / "train_request.json").read_text())["gpus"] == 2
    rng = torch.load(checkpoints.latest_checkpoint(run_dir) / "rng.pt", weights_only=True)
    assert rng["world_size"] == 2 and len(rng["ranks"]) == 2
    # `run` resumes it with 2 processes again; one process (a torchrun by hand with another count) is refused
    from alchemy_engine.training.trainer import run as run_in_this_process

    with pytest.raises(InvalidRequest, match="trained by 2 process"):
        run_in_this_process(quick_request(project, resume_run=run_dir.name))
