"""Both LoRA files load fully: every kohya key by ComfyUI's and A1111's rules, both files in diffusers.

The adapter is the training code's own (``lora_io``) on the tiny demo SDXL, with feed-forward and
both text encoders on, and random ``lora_up`` weights so a dropped layer changes the outputs.
"""

from __future__ import annotations

import json

import pytest
import torch
from lora_rules import check_a1111, check_comfyui, module_shapes_fit
from safetensors import safe_open
from safetensors.torch import load_file
from train_helpers import quick_request

from alchemy_engine.training import lora_export, lora_io

INFO = {"token": "sks", "class_noun": "dog", "trigger": "sks dog", "base_model": "demo", "rank": 4,
        "alpha": 8.0, "steps": 6, "learning_rate": 1e-3, "text_encoder_lr": 5e-5, "resolution": 64,
        "seed": 0, "photos": 3, "output_name": "rex-run1"}


def _demo_pipe():
    from diffusers import StableDiffusionXLPipeline

    from alchemy_engine.models.demo import demo_sdxl_dir

    pipe = StableDiffusionXLPipeline.from_pretrained(demo_sdxl_dir("tiny"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _attach(components: dict, rank: int = 4, alpha: float = 8.0) -> dict:
    lora_io.add_unet_lora(components["unet"], rank, alpha, train_ff=True)
    for name in ("text_encoder", "text_encoder_2"):
        lora_io.add_text_encoder_lora(components[name], rank, alpha)
    return {name: components[name] for name in ("unet", "text_encoder", "text_encoder_2")}


@pytest.fixture(scope="module")
def adapted():
    """A demo pipeline with LoRA on UNet attention + FF and both text encoders (the models dict)."""
    torch.manual_seed(0)
    pipe = _demo_pipe()
    models = _attach({"unet": pipe.unet, "text_encoder": pipe.text_encoder, "text_encoder_2": pipe.text_encoder_2})
    with torch.no_grad():
        for model in models.values():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, 0.05)
    return pipe, models


def _outputs(pipe) -> list[torch.Tensor]:
    """Both text encoders' penultimate hidden states and one UNet prediction."""
    ids = pipe.tokenizer(["a photo of sks dog"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        te1 = pipe.text_encoder(ids, output_hidden_states=True).hidden_states[-2]
        te2 = pipe.text_encoder_2(ids, output_hidden_states=True)
        latents = torch.randn(1, 4, 8, 8, generator=gen)
        added = {"text_embeds": te2.text_embeds, "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]])}
        unet = pipe.unet(latents, 10, torch.cat([te1, te2.hidden_states[-2]], -1), added_cond_kwargs=added).sample
    return [te1, te2.hidden_states[-2], unet]


def test_every_kohya_key_loads_in_comfyui_and_a1111(adapted):
    pipe, models = adapted
    tensors = lora_export.kohya_state_dict(models)
    modules = {k.rpartition(".")[0].removesuffix(".lora_down").removesuffix(".lora_up") for k in tensors}
    assert len(tensors) == 3 * len(modules)  # lora_down, lora_up and alpha for every module
    assert {k.split("_")[1] for k in modules} == {"unet", "te1", "te2"}
    assert any("_ff_net_0_proj" in k for k in modules) and any("_ff_net_2" in k for k in modules)
    assert all(k.startswith("lora_te") is ("_text_model_encoder_layers_" in k) for k in modules)
    for verdict in (check_comfyui(tensors, pipe), check_a1111(tensors, pipe)):
        assert verdict.problems == [] and verdict.loaded == verdict.total == len(tensors)
    assert module_shapes_fit(tensors, pipe) == []
    assert {float(v) for k, v in tensors.items() if k.endswith(".alpha")} == {8.0}


def test_the_rule_checks_catch_the_old_layout(adapted):
    """What the converter chain used to write: no text_model for CLIP-L, `_lora.up` without alpha."""
    pipe, models = adapted
    old = {}
    for key, value in lora_export.kohya_state_dict(models).items():
        key = key.replace("lora_te1_text_model_", "lora_te1_")
        if key.startswith("lora_unet_"):
            if key.endswith(".alpha"):
                continue
            key = key.replace(".lora_up.weight", "_lora.up.weight").replace(".lora_down.weight", "_lora.down.weight")
        old[key] = value
    comfy, a1111 = check_comfyui(old, pipe), check_a1111(old, pipe)
    assert comfy.problems and a1111.problems
    assert comfy.loaded < comfy.total and a1111.loaded < a1111.total


def test_full_size_sdxl_keys_load_in_both(monkeypatch):
    """The real SDXL layout, on the meta device (names and shapes only, no weights)."""
    from alchemy_engine.models.demo.sdxl import build_sdxl_components

    class Pipe:  # what the rule checks read
        def __init__(self, parts):
            self.__dict__.update(parts)

    parts = build_sdxl_components("full", device="meta")
    models = _attach(parts, rank=16, alpha=16.0)
    monkeypatch.setattr(lora_export, "peft_state", lambda model: _meta_peft_state(model))
    tensors = lora_export.kohya_state_dict(models)
    combos = {"attention": lambda k: "_ff_" not in k and k.startswith("lora_unet_"),
              "attention + FF": lambda k: k.startswith("lora_unet_"),
              "attention + TE": lambda k: "_ff_" not in k,
              "attention + FF + TE": lambda k: True}
    counts = {}
    for combo, keep in combos.items():
        subset = {k: v for k, v in tensors.items() if keep(k)}
        comfy, a1111 = check_comfyui(subset, Pipe(parts)), check_a1111(subset, Pipe(parts), per_level=3)
        assert comfy.problems == [] and a1111.problems == [], combo
        counts[combo] = (comfy.loaded, a1111.loaded, len(subset))
    assert counts == {"attention": (1680, 1680, 1680), "attention + FF": (2100, 2100, 2100),
                      "attention + TE": (2208, 2208, 2208), "attention + FF + TE": (2628, 2628, 2628)}


def _meta_peft_state(model):
    from peft.utils import get_peft_model_state_dict

    return dict(get_peft_model_state_dict(model, adapter_name=lora_io.ADAPTER))


def test_kohya_file_loads_back_in_diffusers_with_the_same_outputs(adapted, tmp_path):
    pipe, models = adapted
    path = tmp_path / "lora_kohya.safetensors"
    lora_export.save_kohya(path, models, INFO)
    fresh = _demo_pipe()
    plain = _outputs(fresh)
    fresh.load_lora_weights(str(path), adapter_name="kohya")
    for got, want, before in zip(_outputs(fresh), _outputs(pipe), plain):
        assert (want - before).abs().max() > 1e-3  # the LoRA changes every output
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    assert meta["ss_network_module"] == "networks.lora" and meta["ss_base_model_version"] == "sdxl_base_v1-0"
    assert meta["ss_network_dim"] == "4" and float(meta["ss_network_alpha"]) == 8.0
    assert meta["ss_output_name"] == "rex-run1" and meta["ss_network_train_unet_only"] == "False"
    assert json.loads(meta["ss_tag_frequency"]) == {"1_sks dog": {"sks dog": 3}}
    assert meta["modelspec.architecture"] == "stable-diffusion-xl-v1-base/lora"
    assert meta["alchemy.token"] == "sks"


def test_diffusers_file_loads_in_a_stock_pipeline_with_the_same_outputs(adapted, tmp_path):
    pipe, models = adapted
    path = tmp_path / "lora.safetensors"
    lora_export.save_diffusers(path, models, INFO)
    keys = list(load_file(str(path)))
    for prefix in ("unet.", "text_encoder.text_model.encoder.layers.", "text_encoder_2.text_model.encoder.layers."):
        assert any(k.startswith(prefix) for k in keys), prefix
    assert all(k.startswith(("unet.", "text_encoder.text_model.", "text_encoder_2.text_model.")) for k in keys)
    # transformers 5's CLIPTextModel has no text_model wrapper while its bigG encoder keeps one, so
    # with transformers 5 both namings are exercised here; the file always says text_model.
    fresh = _demo_pipe()
    fresh.load_lora_weights(str(path), adapter_name="ours")
    for got, want in zip(_outputs(fresh), _outputs(pipe)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_a_run_with_text_encoders_and_ff_writes_files_both_front_ends_load(project):
    from alchemy_engine.training import run

    result = run(quick_request(project, steps=2, text_encoder_lora=True, train_ff=True, alpha=8.0))
    tensors = load_file(str(result.lora_kohya))
    pipe = _demo_pipe()
    for verdict in (check_comfyui(tensors, pipe), check_a1111(tensors, pipe)):
        assert verdict.problems == [] and verdict.loaded == len(tensors)
    assert any(k.startswith("lora_te1_text_model_") for k in tensors)
    assert any(k.startswith("lora_te2_text_model_") for k in tensors)
    with safe_open(str(result.lora_kohya), framework="pt") as handle:
        meta = handle.metadata()
    assert meta["ss_output_name"] == f"{project.slug}-{result.run_dir.name}" and meta["ss_network_dim"] == "4"
    assert meta["ss_num_train_images"] == "3"
