"""Reading a diffusers folder one tensor at a time (models/loading.py, ``lazy_folder``): the models
equal diffusers' own ``from_pretrained`` tensor for tensor, and no weights file is mapped or read
whole while its model is built."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from alchemy_engine.errors import ModelError
from alchemy_engine.models import loading
from alchemy_engine.models.device import DevicePolicy
from alchemy_engine.models.loading import LazyCheckpoint
from alchemy_engine.models.sdxl import load_sdxl_pipeline

CPU = DevicePolicy("cpu", torch.float32, torch.float32)
COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")


@pytest.fixture(scope="module")
def half_folder(shared_cache) -> Path:
    """The tiny demo SDXL saved as a diffusers folder in fp16 (what a downloaded fp16 variant is)."""
    folder = shared_cache / "folder_stream" / "tiny_fp16"
    if not (folder / "model_index.json").is_file():
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("IMAGE_ALCHEMY_CACHE", str(shared_cache))
            pipe = load_sdxl_pipeline("demo", CPU)
        pipe.to(torch.float16).save_pretrained(folder)
    return folder


def test_a_half_folder_loads_equal_to_diffusers_from_pretrained(half_folder):
    from diffusers import StableDiffusionXLPipeline

    ours = load_sdxl_pipeline(half_folder, CPU)
    reference = StableDiffusionXLPipeline.from_pretrained(half_folder, dtype=torch.float32, local_files_only=True,
                                                          use_safetensors=True)
    for name in COMPONENTS:
        want = getattr(reference, name).state_dict()
        got = getattr(ours, name).state_dict()
        assert got.keys() == want.keys(), name
        for key in want:
            assert got[key].dtype == want[key].dtype == torch.float32 or not want[key].is_floating_point(), key
            assert torch.equal(got[key], want[key]), (name, key)


def test_no_weights_file_is_read_whole_and_every_tensor_once(half_folder, monkeypatch):
    import safetensors.torch
    from transformers import modeling_utils as transformers_modeling

    def whole_file(*args, **kwargs):
        raise AssertionError("a weights file was read whole")

    monkeypatch.setattr(safetensors.torch, "load_file", whole_file)
    reads: list[str] = []
    read = LazyCheckpoint.read
    monkeypatch.setattr(LazyCheckpoint, "read", lambda self, key: reads.append(key) or read(self, key))
    backends: list[str | None] = []
    opened = transformers_modeling.safe_open

    def watching_open(*args, **kwargs):
        backends.append(kwargs.get("backend"))
        return opened(*args, **kwargs)

    monkeypatch.setattr(transformers_modeling, "safe_open", watching_open)
    load_sdxl_pipeline(half_folder, CPU)
    in_files = sum(len(LazyCheckpoint(f)) for f in half_folder.glob("[uv]*/*.safetensors"))
    assert len(reads) == in_files
    assert backends and set(backends) == {"pread"}  # the text encoders: read, not mapped
    assert transformers_modeling.safe_open is watching_open  # put back after the load


def test_a_tensor_to_be_cast_is_a_view_of_the_file_that_writes_do_not_reach(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"half": torch.arange(4.0).half(), "full": torch.ones(3), "ids": torch.arange(3)}, str(path))
    file = LazyCheckpoint(path, cast_to=torch.float32)
    half = file["half"]
    half += 1  # copy-on-write: the file keeps its bytes
    assert torch.equal(file["half"], torch.arange(4.0).half())
    assert torch.equal(load_file(str(path))["half"], torch.arange(4.0).half())
    assert torch.equal(file["full"], torch.ones(3)) and torch.equal(file["ids"], torch.arange(3))


@pytest.mark.parametrize("cast_to", [None, torch.float32])
def test_a_file_cut_short_is_refused_with_what_to_do(tmp_path, cast_to):
    path = tmp_path / "cut.safetensors"
    save_file({"a": torch.ones(64, dtype=torch.float16), "b": torch.ones(4096, dtype=torch.float16)}, str(path))
    path.write_bytes(path.read_bytes()[:-100])
    file = LazyCheckpoint(path, cast_to=cast_to)
    assert torch.equal(file["a"], torch.ones(64, dtype=torch.float16))
    with pytest.raises(ModelError, match="cut short.*download the file again"):
        file["b"]


def test_diffusers_and_transformers_are_restored_after_a_failed_load():
    from diffusers.models import model_loading_utils, modeling_utils
    from transformers import modeling_utils as transformers_modeling

    before = (modeling_utils.load_state_dict, model_loading_utils.load_state_dict, transformers_modeling.safe_open)
    with pytest.raises(RuntimeError), loading.lazy_folder(torch.float32):
        raise RuntimeError("a failed load")
    assert (modeling_utils.load_state_dict, model_loading_utils.load_state_dict,
            transformers_modeling.safe_open) == before


def test_the_loading_estimate_adds_the_folders_largest_tensor(half_folder):
    """memory/phases.py: beside the built models a folder's load holds one tensor being cast."""
    import types

    from alchemy_engine.memory.phases import _loading_extra_bytes

    largest = max(t.numel() * t.element_size() for f in half_folder.glob("*/*.safetensors")
                  for t in load_file(str(f)).values())
    assert _loading_extra_bytes(types.SimpleNamespace(path=half_folder, kind="folder")) == largest
