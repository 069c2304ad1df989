"""Variations in batches on the tiny demo SDXL: the same image per seed as one at a time, the
scene untouched outside the mask, out-of-memory fallback, cancel between batches, and the choice."""

from __future__ import annotations

import json

import numpy as np
import pytest
from insert_helpers import TINY_WORK, noisy_scene, write_mask
from PIL import Image

from alchemy_engine.errors import InvalidRequest, JobCancelled
from alchemy_engine.insertion import InsertRequest, LocateOptions, batches, run
from alchemy_engine.jobs import CancelToken, Stage
from alchemy_engine.memory.inference import GIB, choose_batch_size, parse_batch_size, per_image_bytes

STEPS, STRENGTH = 3, 0.9  # 2 denoising steps a variation


def _request(tmp_path, **changes) -> InsertRequest:
    scene = noisy_scene(tmp_path / "scene.png", (128, 96))
    mask = write_mask(tmp_path / "mask.png", (128, 96), (20, 20, 70, 70))
    base = dict(project="Rex", model="demo", scene=scene, locate=LocateOptions(mask=mask, grow=3, feather=4.0),
                steps=STEPS, strength=STRENGTH, seed=100, variations=4, work_pixels=TINY_WORK)
    return InsertRequest(**{**base, **changes})


def _by_seed(result) -> dict[int, np.ndarray]:
    return {seed: np.asarray(Image.open(path).convert("RGB"))
            for seed, path in zip(result.seeds, result.project_outputs)}


def _assert_same_image(batched: np.ndarray, alone: np.ndarray, seed: int) -> None:
    """Not bit-identical: batched convolutions and matrix products sum in another order, so floats
    differ by ~1e-5 (measured: at most 1.7e-5 on 0..1 pixels) and about 0.02 % of pixels round to
    the next uint8 level; never more than one level, and only a few pixels."""
    diff = np.abs(batched.astype(int) - alone)
    assert diff.max() <= 1, seed
    assert (diff > 0).mean() < 0.005, seed


@pytest.fixture()
def one_at_a_time(tmp_path, project, session):
    return _by_seed(run(_request(tmp_path, batch_size="1"), session=session))


def test_a_batch_gives_every_seed_its_own_image_and_keeps_the_outside(tmp_path, project, session, one_at_a_time):
    events = []
    result = run(_request(tmp_path, batch_size="4"), events.append, session=session)
    batched = _by_seed(result)
    assert sorted(batched) == sorted(one_at_a_time) == [100, 101, 102, 103]
    scene = np.asarray(Image.open(tmp_path / "scene.png").convert("RGB"))
    alpha = np.asarray(Image.open(result.mask))
    for seed, image in batched.items():
        _assert_same_image(image, one_at_a_time[seed], seed)
        assert np.array_equal(image[alpha == 0], scene[alpha == 0])
    assert not np.array_equal(batched[100], batched[101])  # each seed its own noise
    notes = [e.message for e in events if e.stage == Stage.NOTE]
    assert "batch size 4 as asked" in notes
    steps = [(e.step, e.total, e.message) for e in events if e.stage == Stage.INSERT]
    assert [s for s, _, _ in steps] == [4, 8] and {t for _, t, _ in steps} == {8}
    assert steps[0][2] == "variations 1–4/4 (seeds 100, 101, 102, 103)"
    assert [e.step for e in events if e.stage == Stage.OUTPUT] == [1, 2, 3, 4]


def test_out_of_memory_retries_the_batch_in_halves(tmp_path, project, session, one_at_a_time, monkeypatch):
    import torch

    sizes = []
    real = batches.inpaint_batch

    def tight_memory(pipe, image, mask, samplings, callback):
        sizes.append(len(samplings))
        if len(samplings) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(pipe, image, mask, samplings, callback)

    monkeypatch.setattr(batches, "inpaint_batch", tight_memory)
    events = []
    result = run(_request(tmp_path, batch_size="4"), events.append, session=session)
    assert sizes == [4, 2, 2]
    assert any("out of memory with 4 variations" in n for n in result.notes)
    assert any("out of memory" in e.message for e in events if e.stage == Stage.NOTE)
    for seed, image in _by_seed(result).items():
        _assert_same_image(image, one_at_a_time[seed], seed)


def test_out_of_memory_of_a_single_image_is_not_hidden(tmp_path, project, session, monkeypatch):
    def no_memory(pipe, image, mask, samplings, callback):
        raise RuntimeError("MPS backend out of memory")

    monkeypatch.setattr(batches, "inpaint_batch", no_memory)
    with pytest.raises(RuntimeError, match="out of memory"):
        run(_request(tmp_path, batch_size="2", variations=2), session=session)


def test_cancel_is_checked_between_batches(tmp_path, project, session):
    cancel = CancelToken()
    seen = []

    def progress(event):
        seen.append(event)
        if event.stage == Stage.OUTPUT:
            cancel.cancel()  # after the first batch's first image, before the second batch
    with pytest.raises(JobCancelled):
        run(_request(tmp_path, batch_size="2"), progress, cancel, session=session)
    assert [e.step for e in seen if e.stage == Stage.INSERT] == [2, 4]  # the first batch only
    assert [e.step for e in seen if e.stage == Stage.OUTPUT] == [1, 2]


def test_auto_batches_on_gpus_as_free_memory_allows_and_not_on_the_cpu():
    cpu = choose_batch_size("auto", 8, "cpu", 64 * GIB, GIB)
    assert cpu.size == 1 and "CPU" in cpu.reason
    assert choose_batch_size("auto", 8, "cuda:0", 10 * GIB, GIB).size == 7  # 10 GiB less 25 %
    assert choose_batch_size("auto", 3, "cuda", 100 * GIB, GIB).size == 3
    assert choose_batch_size("auto", 20, "mps", 100 * GIB, GIB).size == 8
    assert choose_batch_size("auto", 4, "cuda", GIB // 2, GIB).size == 1
    assert choose_batch_size("auto", 4, "mps", None, GIB).size == 1
    assert choose_batch_size("6", 4, "cpu", None, 0).size == 4
    assert choose_batch_size(2, 4, "cpu", None, 0).reason == "batch size 2 as asked"
    assert parse_batch_size(" AUTO ") is None and parse_batch_size("8") == 8
    for bad in ("0", "9", "two", True):
        with pytest.raises(ValueError, match="auto or a whole number from 1 to 8"):
            parse_batch_size(bad)
    with pytest.raises(InvalidRequest, match="batch_size must be one of auto, 1, 2"):
        InsertRequest(project="Rex", scene_prompt="a dog", batch_size="12").validate()


def test_memory_per_image_is_measured_from_the_unet_at_the_work_size():
    import torch

    from alchemy_engine.models.demo import demo_sdxl_dir

    config = json.loads((demo_sdxl_dir("tiny") / "unet" / "config.json").read_text())
    small = per_image_bytes(config, (16, 16), torch.float32, "cuda")
    large = per_image_bytes(config, (32, 32), torch.float32, "cuda")
    assert 3.5 * small < large < 5 * small  # activations grow with the latent area
    assert per_image_bytes(config, (32, 32), torch.float32, "cpu") > large  # score matrices counted
    assert per_image_bytes(config, (32, 32), torch.float32, "cuda", guidance=False) < large
    assert per_image_bytes(config, (32, 32), torch.bfloat16, "cuda") < large
