"""Training loads the encoders, then the UNet — never both — and no encoder a warm cache covers."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import quick_request

from alchemy_engine.models import sdxl
from alchemy_engine.models.sdxl import ENCODERS
from alchemy_engine.training import run

UNET_ONLY = tuple(sorted(ENCODERS))


@pytest.fixture
def loads(monkeypatch):
    """The ``without`` of every SDXL load a run makes, in order."""
    seen: list[tuple[str, ...]] = []
    real = sdxl.load_sdxl_pipeline

    def spy(*args, without=(), **kwargs):
        seen.append(tuple(sorted(without)))
        return real(*args, without=without, **kwargs)

    monkeypatch.setattr(sdxl, "load_sdxl_pipeline", spy)
    return seen


def _lora(result) -> dict[str, torch.Tensor]:
    return load_file(result.lora)


def test_first_run_loads_encoders_then_unet_and_a_cached_rerun_loads_only_the_unet(project, loads):
    first = run(quick_request(project, steps=3))
    assert loads == [("unet",), UNET_ONLY]  # encoders (VAE + both CLIPs), released, then the UNet
    loads.clear()
    again = run(quick_request(project, steps=3))
    assert loads == [UNET_ONLY]  # every latent and embedding cached: no encoder read at all
    assert again.cache["latents_computed"] == 0 and again.cache["embeddings_computed"] == 0
    a, b = _lora(first), _lora(again)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # same data, same LoRA


def test_previews_load_only_the_vae_when_the_cache_is_warm(project, loads):
    run(quick_request(project, steps=2))
    loads.clear()
    result = run(quick_request(project, steps=2, sample_every=2))
    assert loads == [("text_encoder", "text_encoder_2", "unet"), UNET_ONLY]
    assert len(result.samples) == 1 and result.samples[0].is_file()


def test_a_damaged_cache_file_loads_the_encoders_when_found(project, loads):
    first = run(quick_request(project, steps=2))
    embeddings = sorted((project.cache_dir / "training" / "embeddings").glob("*.safetensors"))
    embeddings[0].write_bytes(b"not a tensor file")
    loads.clear()
    result = run(quick_request(project, steps=2))
    assert loads == [("unet",), UNET_ONLY]  # the plan saw a cached file; reading it failed: encoders then
    assert result.cache["embeddings_computed"] == 1
    assert torch.equal(_lora(first)[next(iter(_lora(first)))], _lora(result)[next(iter(_lora(result)))])


def test_class_images_to_draw_load_the_whole_pipeline_once(project, loads):
    request = quick_request(project, steps=2, prior_preservation=True, class_images=2, sample_steps=1)
    run(request)
    assert loads == [()]  # drawing class images needs every part; the UNet then trains as loaded
    loads.clear()
    run(request)
    assert loads == [UNET_ONLY]  # class images drawn, their latents cached: only the UNet


def test_warm_run_estimate_follows_what_is_loaded(project):
    """The estimate of a fully cached run has no encoders in its loading and caching phases, and
    still lands within 15 % of every measured phase (demo:mid, CPU)."""
    request = quick_request(project, model="demo:mid", resolution=256, rank=16, steps=2)
    cold = run(request)
    warm = run(request)
    cold_est = cold.memory_estimate["phases_gib"]
    warm_est = warm.memory_estimate["phases_gib"]
    assert warm_est["loading"]["host_gib"] < cold_est["loading"]["host_gib"]
    phases = json.loads((warm.run_dir / "memory.json").read_text())["phases"]
    ratios = {name: row["host_ratio"] for name, row in phases.items()}
    print("warm run, estimate / measured:", ratios)
    assert all(0.85 <= r <= 1.15 for r in ratios.values()), ratios


def test_the_vae_encodes_in_float32_where_the_models_run_in_float16(tmp_path):
    """SDXL's VAE overflows in float16 (black or NaN latents): encoding upcasts it, previews get
    it back in the run's precision."""
    from types import SimpleNamespace

    from alchemy_engine.jobs import no_progress
    from alchemy_engine.models.device import DevicePolicy
    from alchemy_engine.models.inventory import resolve_sdxl
    from alchemy_engine.training.staged_models import LoadPlan, StagedModels

    policy = DevicePolicy("cpu", torch.float16, torch.float32)
    run_setup = SimpleNamespace(source=resolve_sdxl("demo"), policy=policy, device=torch.device("cpu"),
                                request=quick_request(SimpleNamespace(root=tmp_path), sample_every=5))
    models = StagedModels(run_setup, LoadPlan(), no_progress)
    models.load_first()
    assert models.pipe.unet is None and models.pipe.vae.dtype == torch.float16
    assert models.encoders().vae.dtype == torch.float32
    assert models.pipe.text_encoder.dtype == torch.float16
    parts = models.release_encoders()
    assert parts["vae"].dtype == torch.float16 and "unet" not in parts and models.pipe is None
