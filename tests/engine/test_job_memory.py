"""What a job needs in memory and whether jobs fit together (the GUI's model lane), and what the
engine shares between two model jobs running at once: the collector pause, SDXL's tokenizers,
two SAM jobs on their own sessions."""

from __future__ import annotations

import gc
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from alchemy_engine import api
from alchemy_engine.memory import footprints
from alchemy_engine.models import resident

GIB = 1024 ** 3
BUDGET = api.MemoryBudget({"cuda": 24 * GIB}, 32 * GIB)


def test_a_job_fits_beside_others_only_when_the_sum_on_its_device_and_in_ram_fits():
    training = api.JobFootprint("cuda", 14 * GIB, 2 * GIB)
    assert api.fits_together([api.JobFootprint("cuda", 40 * GIB, 0)], BUDGET) == (True, "")  # alone: its own check
    assert api.fits_together([training, api.JobFootprint("cuda", 4 * GIB, GIB)], BUDGET) == (True, "")
    fits, why = api.fits_together([training, api.JobFootprint("cuda", 8 * GIB, GIB)], BUDGET)
    assert not fits and "needs 8.0 GiB on cuda" in why and "6.4 GiB left" in why
    assert api.fits_together([training, api.JobFootprint("cpu", 0, 8 * GIB)], BUDGET)[0]  # the CPU is not the GPU
    fits, why = api.fits_together([training, api.JobFootprint("cpu", 0, 26 * GIB)], BUDGET)
    assert not fits and "on RAM" in why
    assert api.fits_together([training, api.JobFootprint("mps", 9 * GIB, 0)], api.MemoryBudget({}, None))[0]


@pytest.fixture
def rex(tmp_path):
    rng = np.random.default_rng(1)
    photo = tmp_path / "rex.png"
    Image.fromarray(rng.integers(0, 255, (320, 320, 3), dtype=np.uint8)).save(photo)
    return api.create_project("Rex", class_noun="dog", images=[photo]), photo


def test_demo_footprints_come_from_the_engine_estimates(rex, monkeypatch, tmp_path):
    project, photo = rex
    train = api.job_footprints(api.TrainRequest(project=project.slug, model="demo", steps=2))
    estimate = api.estimate_memory(api.TrainRequest(project=project.slug, model="demo", steps=2))
    assert len(train) == 1 and train[0].device == "cpu" and train[0].host_bytes == estimate.need_bytes > 0
    sam = api.job_footprints(api.SegmentRequest(image=photo, out=tmp_path / "m.png",
                                                locate=api.LocateOptions(sam="demo")))
    assert sam == [api.JobFootprint("cpu", 0, footprints.DEMO_BYTES)]
    assert api.job_footprints(object()) == []

    monkeypatch.setattr(footprints, "_device", lambda prefer: prefer or "cuda")  # as on a GPU machine
    own, cpu = api.job_footprints(api.SegmentRequest(image=photo, out=tmp_path / "m.png",
                                                     locate=api.LocateOptions(sam="demo")))
    assert own.device == "cuda" and own.device_bytes > 0
    assert cpu.device == "cpu" and cpu.host_bytes > 0 and "on the CPU" in cpu.note


def test_overlapping_collector_pauses_end_with_the_last_one():
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with resident.collector_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with resident.collector_paused():
            second_in.set()
            first_out.wait(5)
            seen["inside after the first ended"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"inside after the first ended": False} and gc.isenabled()


def test_two_sam_jobs_at_once_on_their_own_sessions(tmp_path):
    """Two model jobs of the GUI's model lane at once: each its own session, the same demo SAM."""
    rng = np.random.default_rng(2)
    both_started = threading.Barrier(2, timeout=30)

    def job(index: int):
        image = tmp_path / f"scene{index}.png"
        Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(image)
        request = api.SegmentRequest(image=image, out=tmp_path / f"mask{index}.png",
                                     locate=api.LocateOptions(points=((30, 20, 1),), sam="demo"))
        both_started.wait()
        return api.segment(request, session=api.InsertionSession()).mask

    with ThreadPoolExecutor(2) as pool:
        masks = list(pool.map(job, range(2)))  # re-raises a job's exception here
    assert [m.name for m in masks] == ["mask0.png", "mask1.png"] and all(m.is_file() for m in masks)


def test_models_are_built_one_thread_at_a_time():
    """accelerate's init_empty_weights patches torch.nn.Module for the whole process while diffusers
    builds a model: SAM built on another thread meanwhile got meta tensors. Loading waits its turn."""
    from alchemy_engine.models.inventory import sam_checkpoint
    from alchemy_engine.models.sam import load_sam

    checkpoint = sam_checkpoint("demo")
    holding, done = threading.Event(), threading.Event()
    seen = {}

    def other_load():  # stands for an SDXL load on a training run's thread
        with resident.building_models():
            holding.set()
            seen["SAM loaded meanwhile"] = done.wait(0.5)

    def sam_load():
        loaded = load_sam(checkpoint)
        done.set()
        return loaded

    loader = threading.Thread(target=other_load)
    loader.start()
    holding.wait(5)
    with ThreadPoolExecutor(1) as pool:
        sam = pool.submit(sam_load)
        loader.join(10)
        model, _variant = sam.result(60)
    assert seen == {"SAM loaded meanwhile": False}
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_sdxl_and_sam_load_at_once_on_two_threads():
    from alchemy_engine.models.inventory import sam_checkpoint
    from alchemy_engine.models.sam import load_sam
    from alchemy_engine.models.sdxl import load_sdxl_pipeline

    with ThreadPoolExecutor(2) as pool:
        pipe = pool.submit(load_sdxl_pipeline, "demo")
        sams = [pool.submit(load_sam, sam_checkpoint("demo")) for _ in range(3)]
        pipe = pipe.result(300)
        for future in sams:
            model, _variant = future.result(300)
            assert not any(p.is_meta for p in model.parameters())
    assert not any(p.is_meta for p in pipe.unet.parameters())
