"""Insertion and scenes with a chosen sampler and on a v-prediction model (tiny demo SDXL)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from insert_helpers import TINY_WORK, noisy_scene, read_rgb, write_mask
from PIL import Image

from alchemy_engine.cli import main
from alchemy_engine.errors import InvalidRequest
from alchemy_engine.insertion import InsertRequest, LocateOptions, run
from alchemy_engine.insertion.metadata import REQUEST_KEY, parse_parameters, read_png_text


def _request(scene, mask, **changes) -> InsertRequest:
    base = dict(project="Rex", model="demo", scene=scene, locate=LocateOptions(mask=mask, grow=3, feather=4.0),
                steps=3, seed=7, work_pixels=TINY_WORK, strength=0.9)
    return InsertRequest(**{**base, **changes})


def test_insert_cli_writes_the_sampler_into_the_png_and_reuse_reads_it_back(tmp_path, project, capsys):
    scene = noisy_scene(tmp_path / "scene.png", (96, 64))
    mask = write_mask(tmp_path / "m.png", (96, 64), (10, 10, 40, 40))
    code = main(["insert", "Rex", "--scene", str(scene), "--mask", str(mask), "--model", "demo",
                 "--steps", "2", "--seed", "5", "--work-size", "128", "--sampler", "DPM++ 2M Karras", "--json",
                 "--out", str(tmp_path / "out")])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    text = read_png_text(result["outputs"][0])
    assert "Sampler: DPM++ 2M Karras," in text["parameters"]
    assert parse_parameters(text["parameters"])["Sampler"] == "DPM++ 2M Karras"
    assert "CFG Rescale" not in text["parameters"]  # an epsilon model: no rescale
    assert InsertRequest.from_json(text[REQUEST_KEY]).sampler == "DPM++ 2M Karras"  # what Reuse parameters reads


def test_the_sampler_changes_the_repaint_and_the_pipeline_keeps_its_own_scheduler(tmp_path, project, session):
    scene = noisy_scene(tmp_path / "scene.png", (96, 96))
    mask = write_mask(tmp_path / "mask.png", (96, 96), (20, 20, 70, 70))
    euler = run(_request(scene, mask), session=session)
    loaded = session.sdxl("demo")
    own = (loaded.base.scheduler, loaded.inpaint.scheduler)
    ancestral = run(_request(scene, mask, sampler="Euler a"), session=session)
    assert (loaded.base.scheduler, loaded.inpaint.scheduler) == own
    a, b = read_rgb(euler.project_outputs[0]), read_rgb(ancestral.project_outputs[0])
    inside = np.asarray(Image.open(mask)) > 0
    assert not np.array_equal(a[inside], b[inside])
    outside = np.asarray(Image.open(euler.mask)) == 0
    assert np.array_equal(a[outside], b[outside])
    assert parse_parameters(read_png_text(ancestral.outputs[0])["parameters"])["Sampler"] == "Euler a"


def test_a_v_prediction_model_inserts_with_cfg_rescale_and_says_so(tmp_path, project, session):
    scene = noisy_scene(tmp_path / "scene.png", (96, 64))
    mask = write_mask(tmp_path / "mask.png", (96, 64), (10, 10, 50, 50))
    result = run(_request(scene, mask, model="demo:vpred", sampler="DPM++ 2M SDE Karras"), session=session)
    assert any("predicts v-prediction, zero-terminal-SNR" in note and "CFG rescale 0.7" in note
               for note in result.notes)
    params = parse_parameters(read_png_text(result.outputs[0])["parameters"])
    assert params["CFG Rescale"] == "0.7" and params["Sampler"] == "DPM++ 2M SDE Karras"
    before, after = read_rgb(scene), read_rgb(result.outputs[0])
    alpha = np.asarray(Image.open(result.mask))
    assert np.array_equal(after[alpha == 0], before[alpha == 0])
    assert session.sdxl("demo:vpred").inpaint.scheduler.config.prediction_type == "v_prediction"


def test_a_scene_is_made_with_the_asked_sampler(project, capsys):
    code = main(["scene", "Rex", "--model", "demo", "--prompt", "a dog on a beach", "--size", "64x64",
                 "--steps", "2", "--sampler", "UniPC", "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert parse_parameters(read_png_text(result["scene"])["parameters"])["Sampler"] == "UniPC"


def test_a_bad_sampler_is_refused_before_any_model_loads(tmp_path, project, capsys):
    scene = noisy_scene(tmp_path / "scene.png", (64, 64))
    with pytest.raises(SystemExit):
        main(["insert", "Rex", "--scene", str(scene), "--model", "demo", "--sampler", "dpm++ 2m karras",
              "--out", str(tmp_path)])
    assert "invalid choice: 'dpm++ 2m karras'" in capsys.readouterr().err
    with pytest.raises(InvalidRequest, match="did you mean 'DPM\\+\\+ 2M Karras'"):
        _request(scene, None, sampler="dpm++ 2m karras").validate()


def test_a_foreign_a1111_png_gives_back_its_sampler_in_either_spelling(tmp_path):
    from PIL import PngImagePlugin

    from alchemy_engine.insertion.outputs import read_output_parameters

    for line, expected in (("Sampler: DPM++ 2M Karras, CFG Rescale: 0.7", "DPM++ 2M Karras"),
                           ("Sampler: DPM++ 2M, Schedule type: Karras", "DPM++ 2M Karras"),
                           ("Sampler: Euler a, Schedule type: Automatic", "Euler a"),
                           ("Sampler: Restart", None)):
        chunks = PngImagePlugin.PngInfo()
        chunks.add_text("parameters", f"a dog\nNegative prompt: \nSteps: 20, {line}, Seed: 3")
        path = tmp_path / "a1111.png"
        Image.new("RGB", (8, 8)).save(path, pnginfo=chunks)
        params = read_output_parameters(path)
        assert params.get("sampler") == expected and params["seed"] == 3
    assert params.get("guidance_rescale") is None


def test_a_preset_may_set_the_sampler_but_not_a_wrong_one():
    from alchemy_engine import api

    assert api.check_preset_values("insert", {"sampler": "DPM++ 2M Karras"})["sampler"] == "DPM++ 2M Karras"
    with pytest.raises(InvalidRequest, match="sampler"):
        api.check_preset_values("insert", {"sampler": "Heun++"})
