"""Insertion on a CPU short of RAM keeps the UNet's weights in the file's half precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from insert_helpers import TINY_WORK, noisy_scene, read_rgb, write_mask

from alchemy_engine.insertion import InsertionSession, InsertRequest, LocateOptions, run
from alchemy_engine.jobs import Stage
from alchemy_engine.memory.inference import choose_unet_storage
from alchemy_engine.models import half_weights
from alchemy_engine.models.demo import demo_sdxl_dir, demo_sdxl_fp16_unet_dir
from alchemy_engine.models.device import DevicePolicy
from alchemy_engine.models.sources import SdxlSource, weight_values

CPU = DevicePolicy("cpu", torch.float32, torch.float32)
GIB = 1024 ** 3


@pytest.fixture(scope="module")
def fp16_unet_model(shared_cache) -> Path:
    with pytest.MonkeyPatch.context() as mp:  # module scope: before the per-test cache setting
        mp.setenv("IMAGE_ALCHEMY_CACHE", str(shared_cache))
        return demo_sdxl_fp16_unet_dir("tiny")


def test_half_only_on_a_cpu_without_room_for_fp32_and_only_from_a_half_file(fp16_unet_model):
    half_file = SdxlSource(kind="diffusers", path=fp16_unet_model, name="demo-fp16")
    fp32_file = SdxlSource(kind="diffusers", path=demo_sdxl_dir("tiny"), name="demo")
    fp32_models = weight_values(half_file) * 4
    assert weight_values(half_file) == weight_values(fp32_file) > 0  # every component counted, any dtype
    assert choose_unet_storage(half_file, CPU, 100 * GIB) == (None, "")  # room to spare
    storage, why = choose_unet_storage(half_file, CPU, fp32_models, process_bytes=0)  # 1.25× does not fit
    assert storage == torch.float16 and why.startswith("UNet weights kept in fp16")
    assert choose_unet_storage(fp32_file, CPU, fp32_models) == (None, "")  # would round the weights
    assert choose_unet_storage(half_file, CPU, None) == (None, "")  # free memory unknown: as before
    gpu = DevicePolicy("cuda", torch.bfloat16, torch.bfloat16)
    assert choose_unet_storage(half_file, gpu, 0) == (None, "")  # GPUs run in half already


def test_an_insertion_with_the_unet_kept_in_half_gives_the_same_image(tmp_path, project, fp16_unet_model,
                                                                      monkeypatch):
    scene = noisy_scene(tmp_path / "scene.png", (128, 128))
    mask = write_mask(tmp_path / "mask.png", (128, 128), (32, 32, 96, 96))
    request = InsertRequest(project="Rex", model=str(fp16_unet_model), scene=scene, steps=3, seed=7,
                            locate=LocateOptions(mask=mask, grow=3, feather=4.0), work_pixels=TINY_WORK)
    roomy = InsertionSession()
    expected = read_rgb(run(request, session=roomy).project_outputs[0])
    assert all(p.dtype == torch.float32 for p in roomy.sdxl(str(fp16_unet_model)).base.unet.parameters())
    roomy.release()

    monkeypatch.setattr("alchemy_engine.models.device.free_device_bytes", lambda device: 64 * 1024 ** 2)
    tight, events = InsertionSession(), []
    result = run(request, session=tight, progress=events.append)
    unet = tight.sdxl(str(fp16_unet_model)).base.unet
    layers = [m for m in unet.modules() if isinstance(m, (half_weights.HalfStoredLinear, half_weights.HalfStoredConv2d))]
    assert len(layers) > 50 and all(m.weight.dtype == torch.float16 for m in layers)
    assert unet.dtype == torch.float32 and tight.loads == 1  # loaded once, as decided then
    lora_weights = [p for name, p in unet.named_parameters() if "lora_" in name]
    assert lora_weights and all(p.dtype == torch.float32 for p in lora_weights)  # the LoRA stays fp32
    assert any(e.stage == Stage.NOTE and e.message.startswith("UNet weights kept in fp16") for e in events)
    assert [n for n in result.notes if n.startswith("UNet weights kept in fp16")]  # the GUI's "Note: …"
    again = run(request, session=tight)  # the next insertion says it too: it is as slow
    assert [n for n in again.notes if n.startswith("UNet weights kept in fp16")] and tight.loads == 1
    assert np.array_equal(read_rgb(result.project_outputs[0]), expected)  # the upcast is exact
    tight.release()
