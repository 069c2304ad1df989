"""Streaming a single .safetensors file into the built models (models/loading.py): the result is
diffusers' own from_single_file tensor for tensor, with one file tensor alive at a time."""

from __future__ import annotations

import weakref
from pathlib import Path

import pytest
import torch
from ldm_layout import write_ldm_checkpoint
from safetensors.torch import load_file, save_file

from alchemy_engine.errors import ModelError
from alchemy_engine.models import loading
from alchemy_engine.models.device import DevicePolicy
from alchemy_engine.models.loading import LazyCheckpoint, _Placeholders
from alchemy_engine.models.sdxl import load_sdxl_pipeline

CPU = DevicePolicy("cpu", torch.float32, torch.float32)
COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")


@pytest.fixture(scope="module")
def demo_files(shared_cache) -> dict[str, Path]:
    """The tiny demo SDXL as one original-layout file in fp32 and in fp16 (built once per module)."""
    folder = shared_cache / "single_file_stream"
    files = {"fp32": folder / "tiny_fp32.safetensors", "fp16": folder / "tiny_fp16.safetensors"}
    if not all(f.exists() for f in files.values()):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("IMAGE_ALCHEMY_CACHE", str(shared_cache))
            pipe = load_sdxl_pipeline("demo", CPU)
        folder.mkdir(exist_ok=True)
        write_ldm_checkpoint(pipe, files["fp32"])
        write_ldm_checkpoint(pipe.to(torch.float16), files["fp16"])
    return files


def _config_dir() -> Path:
    from alchemy_engine.models.demo import demo_sdxl_dir

    return demo_sdxl_dir()


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_every_parameter_and_buffer_equals_diffusers_from_single_file(demo_files, precision):
    from diffusers import StableDiffusionXLPipeline

    path = demo_files[precision]
    ours = load_sdxl_pipeline(path, CPU, config_dir=_config_dir())
    reference = StableDiffusionXLPipeline.from_single_file(str(path), config=str(_config_dir()),
                                                           local_files_only=True, dtype=torch.float32)
    for name in COMPONENTS:
        want = getattr(reference, name).state_dict(keep_vars=True)
        got = getattr(ours, name).state_dict(keep_vars=True)
        assert got.keys() == want.keys(), name
        for key in want:
            assert got[key].dtype == want[key].dtype and got[key].device == want[key].device, (name, key)
            assert torch.equal(got[key], want[key]), (name, key)
        assert dict(getattr(ours, name).named_buffers()).keys() == dict(getattr(reference, name).named_buffers()).keys()


def test_an_fp16_file_is_streamed_one_tensor_at_a_time_and_read_once(demo_files, monkeypatch):
    """Each renamed tensor is read just before it is cast into its model, and dropped after; only
    the few inputs a converter transforms (the VAE's 1×1 convolutions, OpenCLIP's q/k/v) are read
    ahead of that. Nothing is read twice but the four small tensors whose shapes diffusers' CLIP
    checks look at."""
    streamed: weakref.WeakSet = weakref.WeakSet()
    most_streamed, reads = 0, 0
    read, resolve = LazyCheckpoint.read, _Placeholders.resolve

    def counting_read(self, key):
        nonlocal reads
        reads += 1
        return read(self, key)

    def watching_resolve(self, value):
        nonlocal most_streamed
        tensor = resolve(self, value)
        if tensor is not value:
            streamed.add(tensor)
            most_streamed = max(most_streamed, len(streamed))
        return tensor

    monkeypatch.setattr(LazyCheckpoint, "read", counting_read)
    monkeypatch.setattr(_Placeholders, "resolve", watching_resolve)
    load_sdxl_pipeline(demo_files["fp16"], CPU, config_dir=_config_dir())
    in_file = len(LazyCheckpoint(demo_files["fp16"]))
    assert in_file <= reads <= in_file + 4, (reads, in_file)
    assert most_streamed == 1


def test_a_converter_that_renames_and_transforms_an_input_gets_real_data(tmp_path):
    path = tmp_path / "two.safetensors"
    save_file({"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(3, 2)}, str(path))
    placeholders = _Placeholders()

    def renames_and_doubles(checkpoint):
        return {"same": checkpoint["a"], "doubled": checkpoint["a"] * 2}

    def renames_one_transposes_other(checkpoint):
        return {"renamed": checkpoint["a"], "transposed": checkpoint["b"].T}

    both = placeholders.convert_streamed(renames_and_doubles)(LazyCheckpoint(path))
    assert not any(v.is_meta for v in both.values())
    assert torch.equal(both["doubled"], torch.arange(6.0).reshape(2, 3) * 2)

    split = placeholders.convert_streamed(renames_one_transposes_other)(checkpoint=LazyCheckpoint(path))
    assert split["renamed"].is_meta and not split["transposed"].is_meta
    assert torch.equal(placeholders.resolve(split["renamed"]), torch.arange(6.0).reshape(2, 3))
    assert torch.equal(split["transposed"], torch.ones(2, 3))
    assert placeholders.convert_streamed(renames_one_transposes_other)({"a": 1, "b": torch.ones(1, 2)})["renamed"] == 1


def test_a_file_missing_a_unet_weight_is_refused_with_what_to_do(demo_files, tmp_path):
    tensors = load_file(str(demo_files["fp32"]))
    dropped = next(k for k in tensors if k.startswith("model.diffusion_model.output_blocks"))
    del tensors[dropped]
    broken = tmp_path / "broken.safetensors"
    save_file(tensors, str(broken), metadata={"modelspec.architecture": "stable-diffusion-xl-v1-base"})
    with pytest.raises(ModelError, match="incomplete.*download the file again"):
        load_sdxl_pipeline(broken, CPU, config_dir=_config_dir())


def test_diffusers_is_restored_after_loading(demo_files):
    from diffusers.loaders import single_file, single_file_model, single_file_utils

    before = (single_file.load_single_file_checkpoint, single_file_utils.convert_open_clip_checkpoint,
              single_file_model.load_model_dict_into_meta,
              single_file_model.SINGLE_FILE_LOADABLE_CLASSES["UNet2DConditionModel"]["checkpoint_mapping_fn"])
    with pytest.raises(RuntimeError), loading.lazy_single_file():
        raise RuntimeError("a failed load")
    load_sdxl_pipeline(demo_files["fp16"], CPU, config_dir=_config_dir())
    after = (single_file.load_single_file_checkpoint, single_file_utils.convert_open_clip_checkpoint,
             single_file_model.load_model_dict_into_meta,
             single_file_model.SINGLE_FILE_LOADABLE_CLASSES["UNet2DConditionModel"]["checkpoint_mapping_fn"])
    assert after == before


def test_the_loading_estimate_adds_the_largest_tensor_and_the_fused_qkv(demo_files):
    """memory/phases.py: beside the built models, a single file's load holds the tensor being
    cast (at most the largest) and OpenCLIP's fused q/k/v, not a whole component."""
    import types

    from alchemy_engine.memory.phases import _loading_extra_bytes

    file = LazyCheckpoint(demo_files["fp16"])
    sizes = {k: v.numel() * v.element_size() for k, v in file.items()}
    fused_qkv = sum(n for k, n in sizes.items() if k.endswith(("attn.in_proj_weight", "attn.in_proj_bias")))
    extra = _loading_extra_bytes(types.SimpleNamespace(path=demo_files["fp16"], kind="single_file"))
    assert fused_qkv > 0 and extra == max(sizes.values()) + fused_qkv


def test_the_unet_loads_straight_in_half_from_a_half_file_and_equals_the_fp32_load(demo_files):
    from alchemy_engine.models import half_weights
    from alchemy_engine.models.inventory import resolve_sdxl
    from alchemy_engine.models.sources import weight_values

    path = demo_files["fp16"]
    full = load_sdxl_pipeline(path, CPU, config_dir=_config_dir())
    half = load_sdxl_pipeline(path, CPU, config_dir=_config_dir(), unet_storage=torch.float16)
    stored = {id(m.weight) for m in half.unet.modules()
              if isinstance(m, (half_weights.HalfStoredLinear, half_weights.HalfStoredConv2d))}
    assert len(stored) > 50
    for name in COMPONENTS:
        want, got = getattr(full, name).state_dict(), getattr(half, name).state_dict(keep_vars=True)
        assert got.keys() == want.keys(), name
        for key, tensor in got.items():
            expected_dtype = torch.float16 if id(tensor) in stored else torch.float32
            assert tensor.dtype == expected_dtype and torch.equal(tensor.float(), want[key]), (name, key)
    values = sum(p.numel() for name in COMPONENTS for p in getattr(full, name).parameters())
    assert abs(weight_values(resolve_sdxl(str(path))) - values) < 0.01 * values  # all four components
