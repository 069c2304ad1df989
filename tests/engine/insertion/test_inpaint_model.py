"""Insertion with a 9-channel SDXL inpainting UNet (`--inpaint-model`), on the tiny demo models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from insert_helpers import TINY_WORK, noisy_scene, read_rgb, write_mask
from PIL import Image

from alchemy_engine.cli import main
from alchemy_engine.errors import ModelError
from alchemy_engine.insertion import InsertRequest, LocateOptions, run


def _request(scene, mask, **changes) -> InsertRequest:
    base = dict(project="Rex", model="demo", scene=scene, locate=LocateOptions(mask=mask, grow=3, feather=4.0),
                steps=3, seed=7, work_pixels=TINY_WORK, strength=0.9, inpaint_model="demo")
    return InsertRequest(**{**base, **changes})


def test_insert_with_the_demo_inpainting_model_end_to_end(tmp_path, project, capsys):
    scene = noisy_scene(tmp_path / "scene.png", (96, 64))
    mask = write_mask(tmp_path / "m.png", (96, 64), (10, 10, 40, 40))
    code = main(["insert", "Rex", "--scene", str(scene), "--mask", str(mask), "--model", "demo",
                 "--inpaint-model", "demo", "--steps", "2", "--seed", "5", "--work-size", "128",
                 "--out", str(tmp_path / "out"), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert any("every UNet layer of the LoRA found its attention layer" in n for n in result["notes"])
    before, after = read_rgb(scene), read_rgb(result["outputs"][0])
    alpha = np.asarray(Image.open(result["mask"]))
    assert np.array_equal(after[alpha == 0], before[alpha == 0])
    assert (after[alpha == 255] != before[alpha == 255]).any()


def test_the_nine_channel_unet_repaints_with_the_masked_image_and_carries_the_lora(tmp_path, project, session):
    scene = noisy_scene(tmp_path / "scene.png", (96, 96))
    mask = write_mask(tmp_path / "mask.png", (96, 96), (20, 20, 70, 70))
    loaded = session.sdxl("demo")
    model = session.inpaint_model(loaded, "demo")
    seen, base_calls = [], []
    hooks = [model.unet.conv_in.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1])),
             loaded.base.unet.conv_in.register_forward_hook(lambda m, args, out: base_calls.append(1))]
    try:
        full = run(_request(scene, mask), session=session)
        off = run(_request(scene, mask, lora_scale=0.0), session=session)
    finally:
        for hook in hooks:
            hook.remove()
    assert seen and set(seen) == {9} and not base_calls  # noisy latents + mask + masked-image latents
    assert session.inpaint_model(loaded, "demo") is model  # loaded once, kept by the session
    inside = np.asarray(Image.open(mask)) > 0
    a, b = read_rgb(full.project_outputs[0]), read_rgb(off.project_outputs[0])
    assert np.abs(a[inside].astype(int) - b[inside]).mean() > 1.0  # the LoRA acts on the inpainting UNet
    plain = run(_request(scene, mask, inpaint_model=None), session=session)
    assert not np.array_equal(read_rgb(plain.project_outputs[0])[inside], a[inside])


def test_an_inpainting_file_is_named_by_the_probe_and_refused_as_a_base_model(tmp_path, capsys):
    from alchemy_engine.models.demo import demo_sdxl_inpaint_file
    from alchemy_engine.models.probe import probe_checkpoint, require_sdxl_checkpoint
    from alchemy_engine.project import create_project
    from alchemy_engine.training.request import TrainRequest
    from alchemy_engine.training.setup import prepare

    path = demo_sdxl_inpaint_file()
    assert main(["models", "check", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["kind"] == "inpaint_model"
    info = probe_checkpoint(path)
    assert info.family == "sdxl_inpaint" and "insert --inpaint-model FILE" in info.description
    with pytest.raises(ModelError, match="training and scenes need an SDXL base model"):
        require_sdxl_checkpoint(path)
    photo = noisy_scene(tmp_path / "p.png", (256, 256))
    proj = create_project("Inp", class_noun="dog", images=[photo])
    with pytest.raises(ModelError, match="inpainting checkpoint"):
        prepare(TrainRequest(project=str(proj.root), model=str(path), resolution=64))


def test_a_folder_inpainting_unet_loads_and_a_base_model_is_refused(tmp_path, session):
    from diffusers import UNet2DConditionModel

    from alchemy_engine.models.demo import demo_sdxl_dir
    from alchemy_engine.models.inventory import resolve_inpaint_model

    loaded = session.sdxl("demo")
    folder = tmp_path / "sdxl-inpainting-0.1"
    UNet2DConditionModel.from_config({**loaded.base.unet.config, "in_channels": 9}).save_pretrained(folder / "unet")
    source = resolve_inpaint_model(str(folder))
    assert source.kind == "diffusers"
    from alchemy_engine.models.inpaint_unet import load_inpaint_unet

    unet = load_inpaint_unet(source, loaded.policy, loaded.base.unet)
    assert unet.config.in_channels == 9
    with pytest.raises(ModelError, match="4 input channels"):
        resolve_inpaint_model(str(demo_sdxl_dir()))
    with pytest.raises(ModelError, match="not found"):
        resolve_inpaint_model(str(tmp_path / "nothing.safetensors"))


def test_reference_guidance_with_an_inpainting_model_is_refused_before_any_model_loads(tmp_path, project):
    """The adapter would go on the base UNet while the inpainting UNet repaints: refused, not ignored."""
    from alchemy_engine.errors import InvalidRequest

    scene = noisy_scene(tmp_path / "scene.png")
    mask = write_mask(tmp_path / "scene.mask.png", (160, 96), (40, 20, 120, 80))
    with pytest.raises(InvalidRequest, match="does not work with an insertion model"):
        _request(scene, mask, inpaint_model="demo", ip_adapter="demo").validate()
    _request(scene, mask, inpaint_model="demo", ip_adapter="demo", ip_scale=0.0).validate()  # guidance off
