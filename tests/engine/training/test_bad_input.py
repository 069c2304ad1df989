"""Bad input and faults end in one clear message, and nothing already made is lost."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from train_helpers import make_project, quick_request

from alchemy_engine.errors import AlchemyError, ImageImportError, InvalidRequest, JobCancelled, ModelError
from alchemy_engine.jobs import CancelToken
from alchemy_engine.models import lora_files
from alchemy_engine.project.runs import list_runs
from alchemy_engine.training import run, trainer
from alchemy_engine.training.request import TrainRequest


@pytest.mark.parametrize("changes, message", [
    (dict(steps=0), "steps must be"),
    (dict(rank=0), "rank must be"),
    (dict(alpha=-1.0), "alpha must be"),
    (dict(resolution=1000), "multiple of 32"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(optimizer="sgd"), "optimizer must be one of"),
    (dict(mixed_precision="fp8"), "mixed_precision"),
    (dict(min_snr_gamma=-1.0), "min_snr_gamma"),
    (dict(background_weight=2.0), "background_weight"),
    (dict(prompt_template="a photo of a dog"), "{token}"),
    (dict(text_encoder_lr=1e-5), "text_encoder_lora is off"),
    (dict(lr_warmup_steps=9, steps=5), "lr_warmup_steps"),
    (dict(prior_preservation=True, class_images=0), "class_images"),
])
def test_request_validation_names_the_setting(changes, message):
    with pytest.raises(InvalidRequest, match=message.replace("{", r"\{").replace("}", r"\}")):
        TrainRequest(project="p", **changes).validate()


def test_request_json_round_trip():
    request = TrainRequest(project="p", model="demo", alpha=8.0, masked_loss=True, resume_run="r1")
    assert TrainRequest.from_json(request.to_json()) == request
    assert request.lora_scale == 0.5


def test_project_without_photos(tmp_path):
    from alchemy_engine.project import create_project

    empty = create_project("Empty", class_noun="cat")
    with pytest.raises(InvalidRequest, match="has no photos yet"):
        run(quick_request(empty))


def test_unreadable_photo_is_named(project):
    broken = project.reference_photos()[1].path
    broken.write_bytes(b"this is not a PNG")
    with pytest.raises(ImageImportError, match=broken.name):
        run(quick_request(project))


def test_missing_photo_file_is_named(project):
    gone = project.reference_photos()[0].path
    gone.unlink()
    with pytest.raises(ImageImportError, match="missing"):
        run(quick_request(project))


def test_few_photos_warn(tmp_path):
    result = run(quick_request(make_project(tmp_path / "two", name="Two", count=2), steps=1))
    assert any("only 2 photo(s)" in w for w in result.warnings)


def test_masked_loss_without_any_mask(project):
    with pytest.raises(InvalidRequest, match="no photo has one"):
        run(quick_request(project, masked_loss=True))


def test_non_sdxl_model_is_refused(project, tmp_path):
    sd15 = tmp_path / "sd15.safetensors"
    save_file({"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(320, 768),
               "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": torch.zeros(77, 768),
               "first_stage_model.decoder.conv_in.weight": torch.zeros(512, 4, 3, 3)}, str(sd15))
    with pytest.raises(ModelError, match="SDXL|SD 1"):
        run(quick_request(project, model=str(sd15)))
    assert not list(project.runs_dir.iterdir())  # refused before a run folder was made


def test_lora_from_another_architecture_is_refused(tmp_path):
    from diffusers import UNet2DConditionModel

    from alchemy_engine.models.demo import demo_sdxl_dir

    unet = UNet2DConditionModel.from_pretrained(demo_sdxl_dir("tiny") / "unet")
    sd15_style = tmp_path / "sd15_lora.safetensors"
    key = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    save_file({f"{key}.lora_down.weight": torch.zeros(4, 768), f"{key}.lora_up.weight": torch.zeros(320, 4),
               f"{key}.alpha": torch.tensor(4.0)}, str(sd15_style))
    with pytest.raises(ModelError, match="different model architecture"):
        lora_files.check_lora_file(sd15_style, unet)
    wrong_width = tmp_path / "wide.safetensors"
    key = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"
    save_file({f"{key}.lora.down.weight": torch.zeros(4, 768), f"{key}.lora.up.weight": torch.zeros(32, 4)},
              str(wrong_width))
    with pytest.raises(ModelError, match="different model architecture"):
        lora_files.check_lora_file(wrong_width, unet)
    not_lora = tmp_path / "random.safetensors"
    save_file({"foo": torch.zeros(3)}, str(not_lora))
    with pytest.raises(ModelError):
        lora_files.check_lora_file(not_lora, unet)


def test_our_lora_passes_the_architecture_check(trained_run):
    from diffusers import UNet2DConditionModel

    from alchemy_engine.models.demo import demo_sdxl_dir

    unet = UNet2DConditionModel.from_pretrained(demo_sdxl_dir("tiny") / "unet")
    _, result, _ = trained_run
    lora_files.check_lora_file(result.lora, unet)
    lora_files.check_lora_file(result.lora_kohya, unet)


def test_out_of_memory_names_the_settings_to_lower(project, monkeypatch):
    def oom(state):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer, "optimizer_step", oom)
    with pytest.raises(AlchemyError, match=r"out of GPU memory.*resolution 64, batch_size 1, rank 4.*--fit"):
        run(quick_request(project))


def test_cancel_while_the_unet_loads_leaves_no_run(project):
    cancel = CancelToken()

    def cancel_on_unet_load(event):
        if event.stage == "loading" and "UNet" in event.message:
            cancel.cancel()

    with pytest.raises(JobCancelled):
        run(quick_request(project), cancel_on_unet_load, cancel)
    assert list_runs(project.runs_dir) == []


def test_cancel_during_caching_leaves_a_consistent_cache(project, shared_cache):
    cancel = CancelToken()

    def cancel_on_second_photo(event):
        if event.stage == "caching" and event.step == 1:
            cancel.cancel()

    with pytest.raises(JobCancelled):
        run(quick_request(project), cancel_on_second_photo, cancel)
    cache = project.cache_dir / "training"
    assert not [p for p in cache.rglob("*") if ".tmp" in p.name]
    assert list_runs(project.runs_dir) == []  # stopped before training: no run to resume or clean up
    result = run(quick_request(project, steps=1))
    assert result.cache["latents_reused"] == 1 and result.cache["latents_computed"] == 2
