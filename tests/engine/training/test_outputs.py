"""A short run writes every output, and its LoRA files load in diffusers at the right scale."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from alchemy_engine.models import lora_files


def _demo_pipe():
    from diffusers import StableDiffusionXLPipeline

    from alchemy_engine.models.demo import demo_sdxl_dir

    pipe = StableDiffusionXLPipeline.from_pretrained(demo_sdxl_dir("tiny"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _image(pipe) -> np.ndarray:
    out = pipe("a photo of sks dog", width=64, height=64, num_inference_steps=2, guidance_scale=5.0,
               generator=torch.Generator().manual_seed(0), output_type="np")
    return out.images[0]


def test_short_run_writes_all_outputs(trained_run):
    _, result, events = trained_run
    run_dir = result.run_dir
    assert result.steps == 6 and result.final_loss is not None and np.isfinite(result.final_loss)
    for name in ("train_request.json", "loss.csv", "lora.safetensors", "lora_kohya.safetensors"):
        assert (run_dir / name).is_file(), name
    saved = json.loads((run_dir / "train_request.json").read_text())
    assert saved["rank"] == 4 and saved["alpha"] == 8.0 and saved["model"] == "demo"
    rows = list(csv.DictReader((run_dir / "loss.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(1, 7))
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step-000003.png", "step-000006.png"]
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] and len(list((run_dir / "checkpoints").iterdir())) == 2
    stages = {e.stage for e in events}
    assert {"caching", "training", "checkpoint", "sample"} <= stages
    previews = [e for e in events if e.stage == "sample"]
    assert previews[0].preview is not None and previews[0].preview_path.is_file()
    last = [e for e in events if e.stage == "training"][-1]
    assert last.step == last.total == 6 and last.loss is not None and last.loss_smoothed is not None
    assert last.learning_rate == pytest.approx(1e-3) and last.it_per_s > 0 and last.eta_s == 0


def test_metadata_names_subject_base_model_and_scale(trained_run):
    proj, result, _ = trained_run
    meta = lora_files.read_metadata(result.lora)
    assert meta["token"] == "sks" and meta["class_noun"] == "dog" and meta["base_model"] == "demo"
    assert json.loads(meta["rank"]) == 4 and json.loads(meta["alpha"]) == 8.0 and json.loads(meta["steps"]) == 6
    assert meta["base_model_hash"] and json.loads(meta["learning_rate"]) == 1e-3
    with safe_open(str(result.lora), framework="pt") as handle:
        adapter = json.loads(handle.metadata()["lora_adapter_metadata"])
        keys = list(handle.keys())
    assert adapter["unet.r"] == 4 and adapter["unet.lora_alpha"] == 8.0
    assert keys and all(k.startswith("unet.") for k in keys)
    with safe_open(str(result.lora_kohya), framework="pt") as handle:
        kohya = {k: handle.get_tensor(k) for k in handle.keys()}
    assert all(k.startswith("lora_unet_") for k in kohya)
    alphas = [v for k, v in kohya.items() if k.endswith(".alpha")]
    assert alphas and all(float(a) == 8.0 for a in alphas)
    assert len(alphas) * 2 == len(kohya) - len(alphas)  # one lora_down + one lora_up per alpha


def test_lora_changes_the_image_and_both_files_agree_at_scale_alpha_over_rank(trained_run):
    _, result, _ = trained_run
    pipe = _demo_pipe()
    plain = _image(pipe)
    images, scalings = {}, {}
    for name, path in (("diffusers", result.lora), ("kohya", result.lora_kohya)):
        pipe.load_lora_weights(str(path), adapter_name=name)
        pipe.set_adapters([name])
        images[name] = _image(pipe)
        module = pipe.unet.down_blocks[1].attentions[0].transformer_blocks[0].attn1.to_q
        scalings[name] = module.scaling[name]
    assert scalings == {"diffusers": 2.0, "kohya": 2.0}  # alpha 8 / rank 4
    assert np.abs(images["diffusers"] - plain).max() > 1e-3
    np.testing.assert_allclose(images["diffusers"], images["kohya"], atol=1e-5)


def test_loaded_lora_equals_trained_weights(trained_run):
    """The diffusers file holds exactly the trained tensors (checkpoint at the last step)."""
    from safetensors.torch import load_file

    _, result, _ = trained_run
    pipe = _demo_pipe()
    pipe.load_lora_weights(str(result.lora), adapter_name="x")
    trained = load_file(str(result.run_dir / "checkpoints" / "step-000006" / "lora.safetensors"))
    loaded = {f"unet/{k}": v for k, v in pipe.unet.named_parameters() if "lora_" in k}
    assert len(trained) == len(loaded)
    for key, tensor in trained.items():
        assert torch.equal(loaded[key.replace(".default.", ".x.")], tensor), key
