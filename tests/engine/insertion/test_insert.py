"""Insertion end to end on the tiny demo SDXL (random weights, 64-192 px, a few steps)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from insert_helpers import TINY_WORK, noisy_scene, read_rgb, write_mask
from PIL import Image

from alchemy_engine.errors import InvalidRequest, JobCancelled, ModelError
from alchemy_engine.insertion import InsertRequest, LocateOptions, run
from alchemy_engine.insertion.locate import NothingFound
from alchemy_engine.insertion.metadata import REQUEST_KEY, parse_parameters, read_png_text
from alchemy_engine.jobs import CancelToken


def _request(scene, mask=None, **changes) -> InsertRequest:
    locate = LocateOptions(mask=mask, grow=3, feather=4.0)
    base = dict(project="Rex", model="demo", scene=scene, locate=locate, steps=3, seed=7,
                work_pixels=TINY_WORK, strength=0.9)
    return InsertRequest(**{**base, **changes})


@pytest.mark.parametrize("scene_size,box,crop", [
    ((160, 96), (0, 0, 40, 30), True),      # top-left corner, non-square scene
    ((96, 160), (60, 120, 96, 160), True),  # bottom-right corner, portrait scene
    ((150, 100), (0, 40, 150, 70), False),  # full-width band, whole frame at ~128 px
])
def test_pixels_outside_the_feathered_mask_are_bit_identical(tmp_path, project, session, scene_size, box, crop):
    scene = noisy_scene(tmp_path / "scene.png", scene_size)
    mask = write_mask(tmp_path / "mask.png", scene_size, box)
    result = run(_request(scene, mask, crop_to_mask=crop, out=tmp_path / "out"), session=session)
    before, after = read_rgb(scene), read_rgb(result.outputs[0])
    alpha = np.asarray(Image.open(result.mask))
    assert after.shape == before.shape
    assert np.array_equal(after[alpha == 0], before[alpha == 0])
    x0, y0, x1, y1 = box
    assert (after[y0:y1, x0:x1] != before[y0:y1, x0:x1]).any()
    assert result.outputs[0].parent == (tmp_path / "out").resolve()
    assert result.project_outputs[0].parent == project.outputs_dir


def test_same_seed_same_image_and_lora_scale_changes_the_inside(tmp_path, project, session):
    scene = noisy_scene(tmp_path / "scene.png", (128, 128))
    mask = write_mask(tmp_path / "mask.png", (128, 128), (32, 32, 96, 96))
    one = run(_request(scene, mask), session=session)
    loads = session.loads
    again = run(_request(scene, mask), session=session)
    off = run(_request(scene, mask, lora_scale=0.0), session=session)
    a, b, c = (read_rgb(r.project_outputs[0]) for r in (one, again, off))
    assert np.array_equal(a, b)
    inside = np.asarray(Image.open(mask)) > 0
    assert np.abs(a[inside].astype(int) - c[inside]).mean() > 1.0
    assert session.loads == loads  # SDXL stays loaded across calls; only the LoRA scale changed


def test_variations_use_consecutive_seeds_and_metadata_reads_back(tmp_path, project, session):
    scene = noisy_scene(tmp_path / "scene.png", (128, 96))
    mask = write_mask(tmp_path / "mask.png", (128, 96), (20, 20, 60, 70))
    result = run(_request(scene, mask, variations=2, seed=100, lora_scale=0.5), session=session)
    assert result.seeds == (100, 101) and len(result.outputs) == 2
    assert not np.array_equal(read_rgb(result.outputs[0]), read_rgb(result.outputs[1]))
    text = read_png_text(result.outputs[1])
    fields = parse_parameters(text["parameters"])
    assert fields["prompt"] == "a photo of sks dog <lora:run-1:0.5>"
    assert fields["Seed"] == "101" and fields["Steps"] == "3" and fields["Size"] == "128x96"
    assert fields["Sampler"] == "Euler" and fields["Model"] == "demo" and fields["Denoising strength"] == "0.9"
    saved = InsertRequest.from_json(text[REQUEST_KEY])
    assert saved.seed == 101 and saved.lora_scale == 0.5 and saved.locate.mask == mask


def test_automatic_mode_end_to_end_with_a_generated_scene(tmp_path, project, session):
    locate = LocateOptions(sam="demo", detector="demo", box_threshold=0.0, text_threshold=0.0,
                           grow=2, feather=2.0)
    req = InsertRequest(project="Rex", model="demo", scene_prompt="a dog on a beach", scene_width=128,
                        scene_height=64, scene_steps=2, locate=locate, steps=2, strength=1.0, seed=3,
                        work_pixels=TINY_WORK, blur=2.0, colour_match=True, out=tmp_path / "out")
    events = []
    result = run(req, events.append, session=session)
    assert result.scene.parent == project.scenes_dir and result.prompt == "a sks dog on a beach"
    assert result.detections and len(result.outputs) == 1
    scene, out = read_rgb(result.scene), read_rgb(result.outputs[0])
    alpha = np.asarray(Image.open(result.mask))
    assert np.array_equal(out[alpha == 0], scene[alpha == 0])
    stages = {e.stage for e in events}
    assert {"scene", "locate", "insert", "output"} <= stages
    steps = [e.step for e in events if e.stage == "insert"]
    assert steps == [1, 2]


def test_huge_scene_costs_a_work_size_run(tmp_path, project, session):
    size = (3000, 2000)
    Image.new("RGB", size, (40, 90, 160)).save(tmp_path / "big.png")
    mask = write_mask(tmp_path / "mask.png", size, (1500, 1000, 1560, 1080))
    result = run(_request(tmp_path / "big.png", mask), session=session)
    x0, y0, x1, y1 = result.crop_box
    assert (x1 - x0) * (y1 - y0) < 0.01 * size[0] * size[1] and result.work_size == (128, 128)
    out = read_rgb(result.outputs[0])
    assert out.shape == (2000, 3000, 3) and (out[:990] == (40, 90, 160)).all()


def test_tiny_scene_is_upscaled(tmp_path, project, session):
    scene = noisy_scene(tmp_path / "s.png", (40, 24))
    result = run(_request(scene, write_mask(tmp_path / "m.png", (40, 24), (10, 5, 20, 15))), session=session)
    assert read_rgb(result.outputs[0]).shape == (24, 40, 3) and result.work_size[0] >= 128


def test_shared_pipelines_are_views_not_copies(session):
    loaded = session.sdxl("demo")
    for pipe in (loaded.inpaint, loaded.img2img):
        assert pipe.unet is loaded.base.unet and pipe.vae is loaded.base.vae
        assert pipe.text_encoder_2 is loaded.base.text_encoder_2
    assert session.sdxl("demo") is loaded


def test_the_views_keep_the_models_precision(session):
    """diffusers' from_pipe cast every shared module to float32: a GPU's bf16 SDXL doubled in size."""
    import torch

    from alchemy_engine.insertion.session import LoadedSdxl
    from alchemy_engine.models.device import DevicePolicy
    from alchemy_engine.models.sdxl import load_sdxl_pipeline

    base = load_sdxl_pipeline("demo", DevicePolicy("cpu", torch.bfloat16, torch.float32))
    loaded = LoadedSdxl(None, None, base, "bf16")
    for pipe in (loaded.inpaint, loaded.img2img):
        assert pipe.unet is base.unet and pipe.scheduler is base.scheduler
        assert pipe.config.force_zeros_for_empty_prompt == base.config.force_zeros_for_empty_prompt
    assert {m.dtype for m in (base.unet, base.vae, base.text_encoder, base.text_encoder_2)} == {torch.bfloat16}


def test_cancel_stops_at_the_next_step(tmp_path, project, session):
    scene = noisy_scene(tmp_path / "scene.png", (64, 64))
    cancel = CancelToken()
    seen = []

    def progress(event):
        seen.append(event)
        if event.stage == "insert":
            cancel.cancel()
    with pytest.raises(JobCancelled):
        run(_request(scene, write_mask(tmp_path / "m.png", (64, 64), (8, 8, 40, 40)), steps=6), progress,
            cancel, session=session)
    assert [e.step for e in seen if e.stage == "insert"] == [1]
    assert not list(project.outputs_dir.glob("insert-*.png"))  # no image, no mask left behind


def test_bad_inputs_say_what_to_do(tmp_path, project, session, monkeypatch):
    scene = noisy_scene(tmp_path / "scene.png", (64, 48))
    with pytest.raises(InvalidRequest, match="mask is 32x32 but the scene is 64x48"):
        run(_request(scene, write_mask(tmp_path / "small.png", (32, 32), (0, 0, 8, 8))), session=session)
    with pytest.raises(InvalidRequest, match="the mask is empty"):
        run(_request(scene, write_mask(tmp_path / "empty.png", (64, 48), (0, 0, 0, 0))), session=session)
    with pytest.raises(InvalidRequest, match="the mask is empty"):
        locate = LocateOptions(mask=write_mask(tmp_path / "dot.png", (64, 48), (5, 5, 7, 7)), grow=-3)
        run(_request(scene, locate=locate), session=session)
    auto = LocateOptions(sam="demo")
    with pytest.raises(ModelError, match=r"needs a text detector.*--point"):
        run(_request(scene, locate=auto), session=session)

    class Blind:
        def detect(self, *args, **kwargs):
            return []
    monkeypatch.setattr(session, "detector", lambda folder, device: Blind())
    with pytest.raises(NothingFound, match="found no 'dog'"):
        run(_request(scene, locate=dataclasses.replace(auto, detector="demo")), session=session)


def test_full_mask_is_allowed(tmp_path, project, session):
    scene = noisy_scene(tmp_path / "scene.png", (64, 64))
    result = run(_request(scene, write_mask(tmp_path / "m.png", (64, 64), (0, 0, 64, 64))), session=session)
    assert result.crop_box == (0, 0, 64, 64)


def test_no_lora_points_to_training(tmp_path, session):
    from alchemy_engine.project import create_project

    create_project("Empty", class_noun="mug")
    scene = noisy_scene(tmp_path / "scene.png", (64, 64))
    with pytest.raises(ModelError, match=r"no trained LoRA yet; train one first \(the Train tab, or: python main.py train"):
        run(_request(scene, write_mask(tmp_path / "m.png", (64, 64), (0, 0, 9, 9)), project="Empty"),
            session=session)


def test_lora_for_another_architecture_is_refused(tmp_path, project, session):
    import torch
    from safetensors.torch import save_file

    bad = tmp_path / "sd15.safetensors"
    key = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
    save_file({f"{key}.lora_A.weight": torch.zeros(4, 320), f"{key}.lora_B.weight": torch.zeros(320, 4)}, bad)
    scene = noisy_scene(tmp_path / "scene.png", (64, 64))
    with pytest.raises(ModelError, match="different model architecture"):
        run(_request(scene, write_mask(tmp_path / "m.png", (64, 64), (0, 0, 9, 9)), lora=bad), session=session)


def test_lora_metadata_words_win_over_changed_project_words(tmp_path, project, session):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    lora = project.runs_dir / "run-1" / "lora.safetensors"
    with safe_open(str(lora), framework="pt") as handle:
        meta = dict(handle.metadata() or {})
    meta.update({"alchemy.token": "zwx", "alchemy.class_noun": "dog", "alchemy.base_model_hash": "other"})
    save_file(load_file(str(lora)), str(lora), metadata=meta)
    scene = noisy_scene(tmp_path / "scene.png", (64, 64))
    result = run(_request(scene, write_mask(tmp_path / "m.png", (64, 64), (0, 0, 20, 20))), session=session)
    assert result.prompt == "a photo of zwx dog"
    assert any("trained as 'zwx dog'" in n for n in result.notes)
    assert any("trained on" in n for n in result.notes)


def test_missing_detector_is_reported_before_any_model_loads(project):
    from alchemy_engine.insertion import InsertionSession

    fresh = InsertionSession()
    request = InsertRequest(project="Rex", model="demo", scene_prompt="a dog on a beach",
                            locate=LocateOptions(sam="demo"), steps=3, seed=1)
    with pytest.raises(ModelError, match="needs a text detector"):
        run(request, session=fresh)
    assert fresh.loads == 0  # no SDXL load, no scene generated first


def test_scene_job_makes_a_scene_with_the_lora_off(project, session):
    from alchemy_engine.insertion import SceneRequest, make_scene

    request = SceneRequest(project="Rex", prompt="a dog on a beach", model="demo", width=64, height=64,
                           steps=2, seed=3)
    first = make_scene(request, session=session)
    again = make_scene(request, session=session)
    assert first.path.parent == project.scenes_dir and first.path != again.path
    assert first.image.size == (64, 64)
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))  # same seed, same scene
    assert REQUEST_KEY in read_png_text(first.path)
    with pytest.raises(InvalidRequest):
        make_scene(dataclasses.replace(request, steps=0), session=session)


def test_a_scene_being_made_holds_its_project(project, session):
    """A rename or delete while the scene is generated would lose it: both are refused meanwhile."""
    from alchemy_engine.errors import ProjectError
    from alchemy_engine.insertion import SceneRequest, make_scene
    from alchemy_engine.project import delete_project, rename_project

    refused = []

    def try_rename_and_delete(event):
        if event.stage == "scene" and not refused:
            for change in (lambda: rename_project(project, "Other"), lambda: delete_project(project)):
                with pytest.raises(ProjectError, match="in use by a scene being made"):
                    change()
            refused.append(True)

    result = make_scene(SceneRequest(project="Rex", prompt="a dog on a beach", model="demo", width=64, height=64,
                                     steps=2, seed=3), try_rename_and_delete, session=session)
    assert refused and result.path.is_file()
