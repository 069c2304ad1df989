"""What a model predicts, read from its file or folder: markers as ComfyUI reads them, modelspec
metadata, a diffusers scheduler config; the override; the loaded scheduler; `models check`."""

from __future__ import annotations

import json
import shutil

import pytest
from ldm_layout import write_fake_safetensors
from test_models_probe import SDXL_BASE

from alchemy_engine.cli import main as cli_main
from alchemy_engine.errors import ModelError
from alchemy_engine.models import prediction
from alchemy_engine.models.prediction import NoiseSchedule
from alchemy_engine.models.probe import probe_checkpoint
from alchemy_engine.models.sources import SdxlSource


def _file(tmp_path, markers=(), metadata=None, name="model.safetensors"):
    shapes = {**SDXL_BASE, **{m: [0] for m in markers}}
    return write_fake_safetensors(tmp_path / name, shapes, metadata)


def _source(path):
    return SdxlSource("single_file", path, path.stem)


@pytest.mark.parametrize(("markers", "metadata", "expected"), [
    (("v_pred",), None, ("v_prediction", False)),
    (("v_pred", "ztsnr"), None, ("v_prediction", True)),
    (("ztsnr",), None, ("epsilon", False)),  # ComfyUI reads ztsnr only beside v_pred
    ((), {"modelspec.prediction_type": "v"}, ("v_prediction", False)),
    ((), {"modelspec.prediction_type": "v", "ss_zero_terminal_snr": "True"}, ("v_prediction", True)),
    ((), {"modelspec.prediction_type": "epsilon"}, ("epsilon", False)),
    ((), None, ("epsilon", False)),
])
def test_a_single_file_says_what_it_predicts_through_its_markers(tmp_path, markers, metadata, expected):
    schedule = prediction.detect(_source(_file(tmp_path, markers, metadata)))
    assert (schedule.prediction_type, schedule.zero_terminal_snr) == expected
    assert schedule.trailing == expected[1]  # zero-terminal SNR is sampled with trailing spacing


def test_an_unmarked_file_is_epsilon_and_the_probe_says_so(tmp_path):
    path = _file(tmp_path)
    assert prediction.detect(_source(path)) == NoiseSchedule()
    info = probe_checkpoint(path)
    assert info.prediction.startswith("epsilon") and info.to_dict()["prediction"] == info.prediction
    marked = probe_checkpoint(_file(tmp_path, ("v_pred", "ztsnr"), name="vpred.safetensors"))
    assert marked.is_sdxl_base and marked.prediction.startswith("v-prediction, zero-terminal-SNR")


def test_a_folder_is_read_from_its_scheduler_config(tmp_path):
    folder = tmp_path / "noob-vpred"
    (folder / "scheduler").mkdir(parents=True)
    config = {"_class_name": "EulerDiscreteScheduler", "prediction_type": "v_prediction",
              "rescale_betas_zero_snr": True, "timestep_spacing": "trailing"}
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(config))
    schedule = prediction.detect(SdxlSource("diffusers", folder, "noob-vpred"))
    assert (schedule.prediction_type, schedule.zero_terminal_snr, schedule.trailing) == ("v_prediction", True, True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps({"prediction_type": "sample"}))
    with pytest.raises(ModelError, match="epsilon and v_prediction models only"):
        prediction.detect(SdxlSource("diffusers", folder, "noob-vpred"))


def test_the_override_applies_to_unmarked_files_and_says_when_it_contradicts_a_marker(tmp_path):
    plain, marked = _source(_file(tmp_path)), _source(_file(tmp_path, ("v_pred",), name="v.safetensors"))
    forced = prediction.resolve(plain, "v")
    assert forced.prediction_type == "v_prediction" and not forced.zero_terminal_snr
    assert "--prediction-type v" in forced.found_in and prediction.conflict_note(plain, "v") == ""
    assert prediction.resolve(marked, "v") == prediction.detect(marked)
    assert prediction.resolve(marked, "epsilon").prediction_type == "epsilon"
    assert "overrides v-prediction" in prediction.conflict_note(marked, "epsilon")
    with pytest.raises(ModelError, match="auto, epsilon, v"):
        prediction.resolve(plain, "x0")


def test_cfg_rescale_defaults_to_0_7_for_zero_snr_only():
    assert prediction.cfg_rescale(None, {"rescale_betas_zero_snr": True}) == 0.7
    assert prediction.cfg_rescale(None, {"rescale_betas_zero_snr": False}) == 0.0
    assert prediction.cfg_rescale(0.3, {"rescale_betas_zero_snr": True}) == 0.3


def test_the_vpred_demo_file_loads_with_a_v_prediction_zero_snr_scheduler():
    import torch

    from alchemy_engine.models.device import DevicePolicy
    from alchemy_engine.models.inventory import resolve_sdxl
    from alchemy_engine.models.sdxl import load_sdxl_pipeline

    source = resolve_sdxl("demo:vpred")
    assert source.kind == "single_file" and prediction.detect(source).found_in.endswith("ztsnr marker keys")
    cpu = DevicePolicy("cpu", torch.float32, torch.float32)
    config = load_sdxl_pipeline(source, cpu, without=("text_encoder", "text_encoder_2", "vae")).scheduler.config
    assert (config.prediction_type, config.rescale_betas_zero_snr, config.timestep_spacing) == \
        ("v_prediction", True, "trailing")
    plain = load_sdxl_pipeline("demo", cpu, without=("text_encoder", "text_encoder_2", "vae")).scheduler
    bundled = type(plain).from_pretrained(source.config_dir / "scheduler")
    assert dict(plain.config) == dict(bundled.config)  # an epsilon model's scheduler is left as it was


def test_models_check_names_a_v_prediction_file_and_folder(capsys, tmp_path):
    path = _file(tmp_path, ("v_pred", "ztsnr"))
    assert cli_main(["models", "check", str(path)]) == 0
    assert "predicts v-prediction, zero-terminal-SNR (the file's v_pred and ztsnr marker keys)" in \
        capsys.readouterr().out
    from alchemy_engine.models.demo import demo_sdxl_dir

    folder = tmp_path / "folder"
    shutil.copytree(demo_sdxl_dir(), folder)
    config_file = folder / "scheduler" / "scheduler_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "prediction_type": "v_prediction"}))
    assert cli_main(["models", "check", "--json", str(folder)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["prediction"]["prediction_type"] == "v_prediction"
